package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store"
)

// MongoKV keeps the plugins' keys in the kv collection (shared with the
// rules' "rule:…" keys), one document per key with _id
// "plugin:{name}:{key}", so every read and write is an _id point
// operation.
type MongoKV struct {
	coll *mongo.Collection
	now  func() time.Time

	indexMu sync.Mutex
	indexed bool
}

// NewMongoKV returns the store on db's kv collection; now nil means
// time.Now.
func NewMongoKV(db *mongo.Database, now func() time.Time) *MongoKV {
	if now == nil {
		now = time.Now
	}
	return &MongoKV{coll: db.Collection(store.KV), now: now}
}

var _ KV = (*MongoKV)(nil)

type kvDoc struct {
	ID        string     `bson:"_id"`
	NS        string     `bson:"ns"`
	Key       string     `bson:"key"`
	Value     []byte     `bson:"value"`
	UpdatedAt time.Time  `bson:"updatedAt"`
	ExpiresAt *time.Time `bson:"expiresAt,omitempty"`
}

// kvPrefix starts the _id of every plugin key.
const kvPrefix = "plugin:"

// KVID is the _id of a plugin's key in the kv collection.
func KVID(plugin, key string) string { return kvPrefix + plugin + ":" + key }

// Get implements KV.
func (k *MongoKV) Get(ctx context.Context, plugin, key string) ([]byte, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	var d kvDoc
	err := k.coll.FindOne(ctx, bson.D{{Key: "_id", Value: KVID(plugin, key)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("kv get %q: %w", key, err)
	}
	if d.ExpiresAt != nil && !k.now().Before(*d.ExpiresAt) {
		return nil, false, nil
	}
	if d.Value == nil {
		d.Value = []byte{}
	}
	return d.Value, true, nil
}

// Set implements KV.
func (k *MongoKV) Set(ctx context.Context, plugin, key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	now := k.now().UTC()
	d := kvDoc{ID: KVID(plugin, key), NS: kvPrefix + plugin, Key: key, Value: value, UpdatedAt: now}
	if d.Value == nil {
		d.Value = []byte{}
	}
	if ttl > 0 {
		exp := now.Add(ttl)
		d.ExpiresAt = &exp
	}
	_, err := k.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("kv set %q: %w", key, err)
	}
	return nil
}

// Delete implements KV.
func (k *MongoKV) Delete(ctx context.Context, plugin, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if _, err := k.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: KVID(plugin, key)}}); err != nil {
		return fmt.Errorf("kv delete %q: %w", key, err)
	}
	return nil
}

// Sweep implements KV: the plugins' expired documents go, the rules' stay
// (their own sweep removes them). The expiresAt index it needs is created
// on its first run.
func (k *MongoKV) Sweep(ctx context.Context) (int64, error) {
	if err := k.ensureIndex(ctx); err != nil {
		return 0, err
	}
	res, err := k.coll.DeleteMany(ctx, bson.D{
		{Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: k.now().UTC()}}},
		{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + kvPrefix}}},
	})
	if err != nil {
		return 0, fmt.Errorf("sweep expired plugin kv entries: %w", err)
	}
	return res.DeletedCount, nil
}

// ensureIndex creates the kv collection's expiresAt index (the rules'
// store creates the same one under the same name).
func (k *MongoKV) ensureIndex(ctx context.Context) error {
	k.indexMu.Lock()
	defer k.indexMu.Unlock()
	if k.indexed {
		return nil
	}
	ix := mongo.IndexModel{Keys: bson.D{{Key: "expiresAt", Value: 1}}, Options: options.Index().SetName("expires_at")}
	if _, err := k.coll.Indexes().CreateOne(ctx, ix); err != nil {
		return fmt.Errorf("create kv index expires_at: %w", err)
	}
	k.indexed = true
	return nil
}
