package rules

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// SQLiteSchema is the rules' tables on the embedded engine (rule_kv).
var SQLiteSchema = sqlite.SchemaIn("rules", schemaFS, "schema")

// SQLiteKV keeps rule state in the rule_kv table of the embedded engine,
// one row per (rule, key) with the value as JSON text.
//
// The embedded engine has one process writing it, so the rows a rule
// touches are kept in memory too (kvCache, one per database): a read of a
// kept key costs no query, and a write updates the kept row and queues its
// statement in the group commit without waiting for it (sqlite.WriteAfter).
// A rule's kv writes then commit no later than the event's done mark, which
// the pipeline queues after the rule ran (groups commit in order): no crash
// leaves an event marked done without them, as when each write waited for
// its commit — which cost every event a commit wait before its mark.
// Statements write whole values (never "add 1"), so one that failed is
// made good by the key's next write.
type SQLiteKV struct {
	db    *sqlite.DB
	now   func() time.Time
	cache *kvCache
}

// NewSQLiteKV returns the store on db (migrated with SQLiteSchema); now nil
// means time.Now.
func NewSQLiteKV(db *sqlite.DB, now func() time.Time) *SQLiteKV {
	if now == nil {
		now = time.Now
	}
	cache := db.Shared(kvCacheKey{}, func() any { return newKVCache() }).(*kvCache)
	return &SQLiteKV{db: db, now: now, cache: cache}
}

var _ Store = (*SQLiteKV)(nil)

// kvCacheKey is the database's kvCache in sqlite.DB.Shared: every
// SQLiteKV on one database shares it, or one would read past another's
// queued writes.
type kvCacheKey struct{}

// kvCache holds rows of rule_kv as this process last wrote or read them.
// A key with queued writes (pending > 0) is never dropped, so a key that is
// not held has no write in flight and reads from the database are current.
type kvCache struct {
	shards [kvShards]kvShard
}

const (
	kvShards = 32
	// kvShardKeys bounds a shard: past it, keys without queued writes are
	// dropped (expired ones first).
	kvShardKeys = 4096
)

type kvShard struct {
	mu   sync.Mutex
	rows map[kvKey]*kvRow
}

type kvKey struct{ rule, key string }

type kvRow struct {
	kvState
	// pending counts queued writes not yet answered; atomic, as their
	// answers come on the committer's goroutine, which must never wait for
	// a shard's lock (its holder may be waiting to queue).
	pending atomic.Int32
}

// kvState is a row's value: what a write changes, and puts back when it
// could not be queued.
type kvState struct {
	absent  bool   // no row (deleted, or never stored)
	value   string // JSON text as stored
	expires int64  // unix ms; 0: never
}

// live reports whether the row holds a value at now (unix ms).
func (r *kvRow) live(now int64) bool { return !r.absent && (r.expires == 0 || r.expires > now) }

func newKVCache() *kvCache {
	c := &kvCache{}
	for i := range c.shards {
		c.shards[i].rows = map[kvKey]*kvRow{}
	}
	return c
}

func (c *kvCache) shard(k kvKey) *kvShard {
	h := fnv.New32a()
	h.Write([]byte(k.rule))
	h.Write([]byte{0})
	h.Write([]byte(k.key))
	return &c.shards[h.Sum32()%kvShards]
}

// lockRow locks the shard of (rule, key) and returns it with the key's
// row; the caller unlocks s.mu.
func (k *SQLiteKV) lockRow(ctx context.Context, rule, key string, now int64) (*kvShard, *kvRow, error) {
	kk := kvKey{rule, key}
	s := k.cache.shard(kk)
	s.mu.Lock()
	r, err := k.row(ctx, s, kk, now)
	if err != nil {
		s.mu.Unlock()
		return nil, nil, err
	}
	return s, r, nil
}

// row is k's kept row, read from the database when not kept; s.mu held.
func (k *SQLiteKV) row(ctx context.Context, s *kvShard, key kvKey, now int64) (*kvRow, error) {
	if r, ok := s.rows[key]; ok {
		return r, nil
	}
	r := &kvRow{}
	var exp sql.NullInt64
	err := k.db.ReadRow(ctx, `SELECT value, expires_at FROM rule_kv WHERE rule = ? AND key = ?`, key.rule, key.key).Scan(&r.value, &exp)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		r.absent = true
	case err != nil:
		return nil, err
	}
	r.expires = exp.Int64
	s.keep(key, r, now)
	return r, nil
}

// keep adds r as key's kept row, trimming the shard first when full.
func (s *kvShard) keep(key kvKey, r *kvRow, now int64) {
	if len(s.rows) >= kvShardKeys {
		s.trim(now)
	}
	s.rows[key] = r
}

// trim drops kept rows without queued writes, expired ones first, until
// the shard is at half its bound.
func (s *kvShard) trim(now int64) {
	for _, expiredOnly := range []bool{true, false} {
		for key, r := range s.rows {
			if len(s.rows) <= kvShardKeys/2 {
				return
			}
			if r.pending.Load() == 0 && (!expiredOnly || !r.live(now)) {
				delete(s.rows, key)
			}
		}
	}
}

// write queues stmt for the kept row r (s.mu held, r already updated). A
// failed statement is left to the next write of the key, which writes the
// whole kept value again.
func (k *SQLiteKV) write(ctx context.Context, r *kvRow, stmt string, args ...any) error {
	r.pending.Add(1)
	bg := context.WithoutCancel(ctx) // it runs after the rule's call ended
	err := k.db.WriteAfter(ctx, func(tx *sql.Tx) error {
		_, err := k.db.Exec(bg, tx, stmt, args...)
		return err
	}, func(error) { r.pending.Add(-1) })
	if err != nil {
		r.pending.Add(-1)
	}
	return err
}

const upsertSQL = `INSERT INTO rule_kv (rule, key, value, updated_at, expires_at) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (rule, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at`

func nullMillis(ms int64) any {
	if ms == 0 {
		return nil
	}
	return ms
}

// Get implements KV.
func (k *SQLiteKV) Get(ctx context.Context, rule, key string) (json.RawMessage, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	now := k.now().UnixMilli()
	s, r, err := k.lockRow(ctx, rule, key, now)
	if err != nil {
		return nil, false, fmt.Errorf("kv get %q: %w", key, err)
	}
	defer s.mu.Unlock()
	if !r.live(now) {
		return nil, false, nil
	}
	return json.RawMessage(r.value), true, nil
}

// Set implements KV.
func (k *SQLiteKV) Set(ctx context.Context, rule, key string, value json.RawMessage, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, value); err != nil {
		return fmt.Errorf("kv set %q: value is not JSON: %w", key, err)
	}
	now := k.now()
	kk := kvKey{rule, key}
	s := k.cache.shard(kk)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[kk]
	if !ok {
		r = &kvRow{}
		s.keep(kk, r, now.UnixMilli())
	}
	prev := r.kvState
	r.kvState = kvState{value: buf.String(), expires: expiryMillis(now, ttl)}
	if err := k.write(ctx, r, upsertSQL, rule, key, r.value, now.UnixMilli(), nullMillis(r.expires)); err != nil {
		if ok {
			r.kvState = prev
		} else {
			delete(s.rows, kk) // not queued: the database holds what is true
		}
		return fmt.Errorf("kv set %q: %w", key, err)
	}
	return nil
}

// expiryMillis is the expires_at of a write at now with ttl: 0 (never)
// unless ttl > 0.
func expiryMillis(now time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now.Add(ttl).UnixMilli()
}

// Incr implements KV: atomic however many handlers count the same key at
// once (the shard's lock), and it waits for no commit.
func (k *SQLiteKV) Incr(ctx context.Context, rule, key string, by float64, ttl time.Duration) (float64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	now := k.now()
	ms := now.UnixMilli()
	s, r, err := k.lockRow(ctx, rule, key, ms)
	if err != nil {
		return 0, fmt.Errorf("kv incr %q: %w", key, err)
	}
	defer s.mu.Unlock()
	sum := by
	expires := expiryMillis(now, ttl)
	if r.live(ms) {
		n, ok := jsonNumber(r.value)
		if !ok {
			return 0, fmt.Errorf("kv incr %q: value is not a number", key)
		}
		sum, expires = n+by, r.expires // the window started with the first increment
	}
	prev := r.kvState
	r.kvState = kvState{value: numberText(sum), expires: expires}
	if err := k.write(ctx, r, upsertSQL, rule, key, r.value, ms, nullMillis(expires)); err != nil {
		r.kvState = prev
		return 0, fmt.Errorf("kv incr %q: %w", key, err)
	}
	return strconv.ParseFloat(r.value, 64)
}

// jsonNumber reads a stored JSON value as a number.
func jsonNumber(v string) (float64, bool) {
	if v == "" || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0, false
	}
	n, err := strconv.ParseFloat(v, 64)
	return n, err == nil
}

// numberText writes a counter as the database did: an integer when it is
// one, otherwise SQLite's REAL text (15 significant digits).
func numberText(f float64) string {
	if v, ok := numberValue(f).(int64); ok {
		return strconv.FormatInt(v, 10)
	}
	return strconv.FormatFloat(f, 'g', 15, 64)
}

// Del implements KV.
func (k *SQLiteKV) Del(ctx context.Context, rule, key string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	ms := k.now().UnixMilli()
	s, r, err := k.lockRow(ctx, rule, key, ms)
	if err != nil {
		return false, fmt.Errorf("kv del %q: %w", key, err)
	}
	defer s.mu.Unlock()
	if r.absent {
		return false, nil
	}
	live := r.live(ms)
	prev := r.kvState
	r.kvState = kvState{absent: true}
	if err := k.write(ctx, r, `DELETE FROM rule_kv WHERE rule = ? AND key = ?`, rule, key); err != nil {
		r.kvState = prev
		return false, fmt.Errorf("kv del %q: %w", key, err)
	}
	return live, nil
}

// sweepBatch bounds one sweep transaction, so a large backlog of expired
// keys does not hold the group commit for long.
const sweepBatch = 1000

// Sweep implements Store.
func (k *SQLiteKV) Sweep(ctx context.Context) (int64, error) {
	now := k.now().UnixMilli()
	var total int64
	for {
		var n int64
		err := k.db.Write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM rule_kv WHERE (rule, key) IN (
				SELECT rule, key FROM rule_kv WHERE expires_at <= ? LIMIT ?)`, now, sweepBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sweep expired rule kv entries: %w", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}
