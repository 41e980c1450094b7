package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
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

// Store is a KV that persists: the daemon's, on its storage engine
// (MongoKV or SQLiteKV). Expired entries stay stored until Sweep removes
// them; reads ignore them meanwhile.
type Store interface {
	KV
	// Sweep deletes the rules' expired entries and returns how many.
	Sweep(ctx context.Context) (int64, error)
}

// Limits on what a rule may store: kv is for counters and small state, not
// a database.
const (
	MaxKVKey   = 512
	MaxKVValue = 64 << 10
)

// KVID is the _id of a rule's key in MongoDB's kv collection (shared with
// the plugins' "plugin:…" namespace).
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

// numberValue keeps integers integers in the database, so a counter reads
// 3, not 3.0.
func numberValue(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return int64(f)
	}
	return f
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
