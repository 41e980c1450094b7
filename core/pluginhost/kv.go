package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store"
)

// KV is the plugins' key-value store: the kv collection, one document per
// key with _id "plugin:{name}:{key}", so every read and write is an _id
// point operation (the only indexed one on the embedded engine). Expired
// entries read as absent; removing them is the kv collection's sweep, which
// works on expiresAt.
type KV struct {
	coll *mongo.Collection
	now  func() time.Time
}

// MaxKVKey is the longest key a plugin may use, in bytes.
const MaxKVKey = 512

// NewKV returns the store on db's kv collection.
func NewKV(db *mongo.Database) *KV {
	return &KV{coll: db.Collection(store.KV), now: time.Now}
}

type kvDoc struct {
	ID        string     `bson:"_id"`
	NS        string     `bson:"ns"`
	Key       string     `bson:"key"`
	Value     []byte     `bson:"value"`
	UpdatedAt time.Time  `bson:"updatedAt"`
	ExpiresAt *time.Time `bson:"expiresAt,omitempty"`
}

// KVID is the _id of a plugin's key.
func KVID(plugin, key string) string { return "plugin:" + plugin + ":" + key }

func checkKey(key string) error {
	if key == "" {
		return errors.New("kv: empty key")
	}
	if len(key) > MaxKVKey {
		return fmt.Errorf("kv: key of %d bytes is longer than %d", len(key), MaxKVKey)
	}
	return nil
}

// Get reads a key of plugin's namespace.
func (k *KV) Get(ctx context.Context, plugin, key string) ([]byte, bool, error) {
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

// Set writes a key; ttl > 0 makes it expire.
func (k *KV) Set(ctx context.Context, plugin, key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	now := k.now().UTC()
	d := kvDoc{ID: KVID(plugin, key), NS: "plugin:" + plugin, Key: key, Value: value, UpdatedAt: now}
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

// Delete removes a key; an absent key is not an error.
func (k *KV) Delete(ctx context.Context, plugin, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if _, err := k.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: KVID(plugin, key)}}); err != nil {
		return fmt.Errorf("kv delete %q: %w", key, err)
	}
	return nil
}
