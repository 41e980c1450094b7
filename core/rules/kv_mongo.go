package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store"
)

// MongoKV keeps rule state in the kv collection, one document per key:
//
//	{_id: "rule:{rule}:{key}", ns: "rule:{rule}", key, value, updatedAt, expiresAt?}
//
// Every operation is an _id point operation, the only indexed kind on the
// embedded engine. The embedded engine has no TTL indexes, so expired
// documents stay until Sweep removes them; reads ignore them meanwhile.
//
// FerretDB runs $inc and findOneAndUpdate as read-modify-write without
// isolation, so writes to one key are serialised here, in process (one
// daemon owns an embedded engine). On a real MongoDB the $inc is atomic
// across daemons as well.
type MongoKV struct {
	coll  *mongo.Collection
	now   func() time.Time
	seed  maphash.Seed
	locks [64]sync.Mutex

	indexMu sync.Mutex
	indexed bool
}

// NewMongoKV returns the store on db's kv collection; now nil means
// time.Now.
func NewMongoKV(db *mongo.Database, now func() time.Time) *MongoKV {
	if now == nil {
		now = time.Now
	}
	return &MongoKV{coll: db.Collection(store.KV), now: now, seed: maphash.MakeSeed()}
}

func (k *MongoKV) lock(id string) func() {
	m := &k.locks[maphash.String(k.seed, id)%uint64(len(k.locks))]
	m.Lock()
	return m.Unlock
}

type kvDoc struct {
	ID        string        `bson:"_id"`
	NS        string        `bson:"ns"`
	Key       string        `bson:"key"`
	Value     bson.RawValue `bson:"value"`
	UpdatedAt time.Time     `bson:"updatedAt"`
	ExpiresAt *time.Time    `bson:"expiresAt,omitempty"`
}

func (d *kvDoc) live(now time.Time) bool { return d.ExpiresAt == nil || now.Before(*d.ExpiresAt) }

func (k *MongoKV) find(ctx context.Context, id string) (*kvDoc, error) {
	var d kvDoc
	err := k.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Get implements KV.
func (k *MongoKV) Get(ctx context.Context, rule, key string) (json.RawMessage, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	d, err := k.find(ctx, KVID(rule, key))
	if err != nil {
		return nil, false, fmt.Errorf("kv get %q: %w", key, err)
	}
	if d == nil || !d.live(k.now()) {
		return nil, false, nil
	}
	raw, err := bsonToJSON(d.Value)
	if err != nil {
		return nil, false, fmt.Errorf("kv get %q: %w", key, err)
	}
	return raw, true, nil
}

// Set implements KV.
func (k *MongoKV) Set(ctx context.Context, rule, key string, value json.RawMessage, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	v, err := jsonToBSON(value)
	if err != nil {
		return fmt.Errorf("kv set %q: %w", key, err)
	}
	id := KVID(rule, key)
	now := k.now().UTC()
	doc := bson.D{{Key: "_id", Value: id}, {Key: "ns", Value: kvPrefix + rule}, {Key: "key", Value: key},
		{Key: "value", Value: v}, {Key: "updatedAt", Value: now}}
	if ttl > 0 {
		doc = append(doc, bson.E{Key: "expiresAt", Value: now.Add(ttl)})
	}
	defer k.lock(id)()
	if _, err := k.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("kv set %q: %w", key, err)
	}
	return nil
}

// Incr implements KV.
func (k *MongoKV) Incr(ctx context.Context, rule, key string, by float64, ttl time.Duration) (float64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	id := KVID(rule, key)
	now := k.now().UTC()
	defer k.lock(id)()
	cur, err := k.find(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("kv incr %q: %w", key, err)
	}
	if cur != nil && !cur.live(now) {
		// An expired counter starts again; matching its expiry keeps us from
		// deleting one that another daemon (real MongoDB) just recreated.
		if _, err := k.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "expiresAt", Value: *cur.ExpiresAt}}); err != nil {
			return 0, fmt.Errorf("kv incr %q: drop expired value: %w", key, err)
		}
	}
	onInsert := bson.D{{Key: "ns", Value: kvPrefix + rule}, {Key: "key", Value: key}}
	if ttl > 0 {
		onInsert = append(onInsert, bson.E{Key: "expiresAt", Value: now.Add(ttl)})
	}
	update := bson.D{
		{Key: "$inc", Value: bson.D{{Key: "value", Value: numberValue(by)}}},
		{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}},
		{Key: "$setOnInsert", Value: onInsert},
	}
	var d kvDoc
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)
	for attempt := 0; ; attempt++ {
		err = k.coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}}, update, opts).Decode(&d)
		// Two daemons upserting the same new key on MongoDB: one loses
		// with a duplicate key and its retry finds the document.
		if err != nil && store.IsDuplicateKey(err) && attempt == 0 {
			continue
		}
		break
	}
	if err != nil {
		return 0, fmt.Errorf("kv incr %q: %w", key, err)
	}
	n, ok := rawNumber(d.Value)
	if !ok {
		return 0, fmt.Errorf("kv incr %q: value is not a number", key)
	}
	return n, nil
}

// Del implements KV.
func (k *MongoKV) Del(ctx context.Context, rule, key string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	id := KVID(rule, key)
	defer k.lock(id)()
	var d kvDoc
	err := k.coll.FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kv del %q: %w", key, err)
	}
	return d.live(k.now()), nil
}

// Sweep deletes the rules' expired entries and returns how many. The
// daemon calls it periodically (FerretDB, the tests' server, has no TTL
// indexes). The expiresAt index it needs is created on its first run.
func (k *MongoKV) Sweep(ctx context.Context) (int64, error) {
	if err := k.ensureIndex(ctx); err != nil {
		return 0, err
	}
	res, err := k.coll.DeleteMany(ctx, bson.D{
		{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + kvPrefix}}},
		{Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: k.now().UTC()}}},
	})
	if err != nil {
		return 0, fmt.Errorf("sweep expired rule kv entries: %w", err)
	}
	return res.DeletedCount, nil
}

func rawNumber(v bson.RawValue) (float64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return float64(v.Int32()), true
	case bson.TypeInt64:
		return float64(v.Int64()), true
	case bson.TypeDouble:
		return v.Double(), true
	}
	return 0, false
}

// jsonToBSON turns a JSON value into the Go value stored as BSON, with
// integral numbers as int64 (so $inc keeps them integral).
func jsonToBSON(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("value is not JSON: %w", err)
	}
	return fromJSON(v), nil
}

func fromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fromJSON(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = fromJSON(e)
		}
		return x
	}
	return v
}

func bsonToJSON(rv bson.RawValue) (json.RawMessage, error) {
	var v any
	if err := rv.Unmarshal(&v); err != nil {
		return nil, err
	}
	return json.Marshal(toJSON(v))
}

// toJSON undoes the driver's decoding into interface{} (bson.D, bson.A,
// int32) so the value renders as the JSON the rule stored.
func toJSON(v any) any {
	switch x := v.(type) {
	case bson.D:
		m := make(map[string]any, len(x))
		for _, e := range x {
			m[e.Key] = toJSON(e.Value)
		}
		return m
	case bson.M:
		for k, e := range x {
			x[k] = toJSON(e)
		}
		return map[string]any(x)
	case bson.A:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toJSON(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = toJSON(e)
		}
		return x
	case int32:
		return int64(x)
	case bson.DateTime:
		return x.Time().UTC().Format(time.RFC3339Nano)
	}
	return v
}

// ensureIndex creates the kv collection's expiresAt index (shared with the
// plugins' store, under the same name, so either may create it).
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
