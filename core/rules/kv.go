package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store"
)

// KV is the rules' key-value store behind ctx.kv. Every rule file has its
// own namespace (its name); values are JSON documents. Expired entries read
// as absent.
type KV interface {
	Get(ctx context.Context, rule, key string) (json.RawMessage, bool, error)
	// Set stores value; ttl > 0 makes it expire, 0 keeps it until deleted.
	Set(ctx context.Context, rule, key string, value json.RawMessage, ttl time.Duration) error
	// Incr adds by to a number (absent counts as 0) and returns the sum.
	// ttl applies when the counter is created, so a counter with a ttl is a
	// fixed window that starts at its first increment.
	Incr(ctx context.Context, rule, key string, by float64, ttl time.Duration) (float64, error)
	// Del removes key and reports whether it held a live value.
	Del(ctx context.Context, rule, key string) (bool, error)
}

// Limits on what a rule may store: kv is for counters and small state, not
// a database.
const (
	MaxKVKey   = 512
	MaxKVValue = 64 << 10
)

// KVID is the _id of a rule's key in the kv collection (shared with the
// plugins' "plugin:…" namespace).
func KVID(rule, key string) string { return "rule:" + rule + ":" + key }

const kvPrefix = "rule:"

func checkKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	if len(key) > MaxKVKey {
		return fmt.Errorf("key of %d bytes is longer than %d", len(key), MaxKVKey)
	}
	return nil
}

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
// daemon calls it periodically: the embedded engine has no TTL indexes.
func (k *MongoKV) Sweep(ctx context.Context) (int64, error) {
	res, err := k.coll.DeleteMany(ctx, bson.D{
		{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + kvPrefix}}},
		{Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: k.now().UTC()}}},
	})
	if err != nil {
		return 0, fmt.Errorf("sweep expired rule kv entries: %w", err)
	}
	return res.DeletedCount, nil
}

// numberValue keeps integers integers in the database, so a counter reads
// 3, not 3.0, in mongosh.
func numberValue(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return int64(f)
	}
	return f
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

// MemoryKV is a KV in memory, for `wildcatd rules test` and tests: the same
// semantics as MongoKV, nothing persisted.
type MemoryKV struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]memEntry
}

type memEntry struct {
	value   json.RawMessage
	expires time.Time // zero: never
}

// NewMemoryKV returns an empty store; now nil means time.Now.
func NewMemoryKV(now func() time.Time) *MemoryKV {
	if now == nil {
		now = time.Now
	}
	return &MemoryKV{now: now, m: map[string]memEntry{}}
}

func (k *MemoryKV) live(id string) (memEntry, bool) {
	e, ok := k.m[id]
	if ok && !e.expires.IsZero() && !k.now().Before(e.expires) {
		delete(k.m, id)
		return memEntry{}, false
	}
	return e, ok
}

// Get implements KV.
func (k *MemoryKV) Get(_ context.Context, rule, key string) (json.RawMessage, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.live(KVID(rule, key))
	return e.value, ok, nil
}

// Set implements KV.
func (k *MemoryKV) Set(_ context.Context, rule, key string, value json.RawMessage, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if !json.Valid(value) {
		return fmt.Errorf("kv set %q: value is not JSON", key)
	}
	e := memEntry{value: append(json.RawMessage(nil), value...)}
	if ttl > 0 {
		e.expires = k.now().Add(ttl)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[KVID(rule, key)] = e
	return nil
}

// Incr implements KV.
func (k *MemoryKV) Incr(_ context.Context, rule, key string, by float64, ttl time.Duration) (float64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	id := KVID(rule, key)
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.live(id)
	var n float64
	if ok {
		if err := json.Unmarshal(e.value, &n); err != nil {
			return 0, fmt.Errorf("kv incr %q: value is not a number", key)
		}
	} else if ttl > 0 {
		e.expires = k.now().Add(ttl)
	}
	n += by
	e.value, _ = json.Marshal(n)
	k.m[id] = e
	return n, nil
}

// Del implements KV.
func (k *MemoryKV) Del(_ context.Context, rule, key string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	id := KVID(rule, key)
	_, ok := k.live(id)
	delete(k.m, id)
	return ok, nil
}
