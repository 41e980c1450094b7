package rules

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// clock is a settable time source for expiry.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// engineKV opens a fresh store on the engine; more opens another store on
// the same database (a restarted daemon).
func engineKV(t *testing.T, e storetest.Engine, now func() time.Time) (kv Store, more func() Store) {
	t.Helper()
	if e == storetest.SQLite {
		db := storetest.NewSQLite(t, SQLiteSchema)
		return NewSQLiteKV(db, now), func() Store { return NewSQLiteKV(db, now) }
	}
	db := storetest.NewDatabase(t)
	return NewMongoKV(db, now), func() Store { return NewMongoKV(db, now) }
}

// TestKVSemantics runs the same checks on every store.
func TestKVSemantics(t *testing.T) {
	for name, mk := range map[string]func(t *testing.T, now func() time.Time) KV{
		"sqlite": func(t *testing.T, now func() time.Time) KV { kv, _ := engineKV(t, storetest.SQLite, now); return kv },
		"mongodb": func(t *testing.T, now func() time.Time) KV {
			kv, _ := engineKV(t, storetest.MongoDB, now)
			return kv
		},
		"memory": func(t *testing.T, now func() time.Time) KV { return NewMemoryKV(now) },
		// The same semantics with encryption at rest on.
		"sqlite-sealed": func(t *testing.T, now func() time.Time) KV {
			kv, _ := engineKV(t, storetest.SQLite, now)
			return SealedKV(kv, sealtest.Ring(t, "", sealtest.Key(t, "k1")))
		},
		"mongodb-sealed": func(t *testing.T, now func() time.Time) KV {
			kv, _ := engineKV(t, storetest.MongoDB, now)
			return SealedKV(kv, sealtest.Ring(t, "", sealtest.Key(t, "k1")))
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			clk := newClock()
			kv := mk(t, clk.now)
			if _, ok, err := kv.Get(ctx, "r", "missing"); ok || err != nil {
				t.Fatalf("missing key: %v %v", ok, err)
			}
			doc := json.RawMessage(`{"a":[1,2.5,"x",true,null],"n":{"deep":1}}`)
			if err := kv.Set(ctx, "r", "doc", doc, 0); err != nil {
				t.Fatal(err)
			}
			got, ok, err := kv.Get(ctx, "r", "doc")
			if !ok || err != nil || !jsonEqual(got, doc) {
				t.Fatalf("get doc: %s %v %v", got, ok, err)
			}
			// Namespaces are separate.
			if _, ok, _ := kv.Get(ctx, "other", "doc"); ok {
				t.Fatal("namespaces leak")
			}

			// incr: absent counts as 0; ttl starts with the first increment.
			for i, want := range []float64{1, 3, 3.5} {
				by := []float64{1, 2, 0.5}[i]
				n, err := kv.Incr(ctx, "r", "n", by, time.Minute)
				if err != nil || n != want {
					t.Fatalf("incr %d: %v %v, want %v", i, n, err, want)
				}
				clk.advance(20 * time.Second)
			}
			clk.advance(time.Second) // 61 s after the first increment
			if _, ok, _ := kv.Get(ctx, "r", "n"); ok {
				t.Fatal("counter outlived its ttl")
			}
			if n, err := kv.Incr(ctx, "r", "n", 1, time.Minute); err != nil || n != 1 {
				t.Fatalf("incr after expiry: %v %v", n, err)
			}
			if raw, _, _ := kv.Get(ctx, "r", "n"); string(raw) != "1" {
				t.Fatalf("integral counter reads %s", raw)
			}
			if _, err := kv.Incr(ctx, "r", "doc", 1, 0); err == nil {
				t.Fatal("incr of an object succeeded")
			}
			// An expired value of any kind is a fresh counter; halves add up
			// to an integral number, read back as one.
			if err := kv.Set(ctx, "r", "obj", json.RawMessage(`{"a":1}`), time.Second); err != nil {
				t.Fatal(err)
			}
			clk.advance(time.Second)
			if n, err := kv.Incr(ctx, "r", "obj", 2, 0); err != nil || n != 2 {
				t.Fatalf("incr of an expired object: %v %v", n, err)
			}
			for _, want := range []float64{0.5, 1} {
				if n, err := kv.Incr(ctx, "r", "half", 0.5, 0); err != nil || n != want {
					t.Fatalf("incr by 0.5: %v %v, want %v", n, err, want)
				}
			}
			if raw, _, _ := kv.Get(ctx, "r", "half"); string(raw) != "1" {
				t.Fatalf("0.5 + 0.5 reads %s", raw)
			}

			// set with ttl, del.
			if err := kv.Set(ctx, "r", "tmp", json.RawMessage(`"v"`), 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := kv.Get(ctx, "r", "tmp"); !ok {
				t.Fatal("tmp missing before expiry")
			}
			clk.advance(10 * time.Second)
			if _, ok, _ := kv.Get(ctx, "r", "tmp"); ok {
				t.Fatal("tmp readable at expiry")
			}
			if ok, err := kv.Del(ctx, "r", "tmp"); ok || err != nil {
				t.Fatalf("del of an expired key: %v %v", ok, err)
			}
			if ok, err := kv.Del(ctx, "r", "doc"); !ok || err != nil {
				t.Fatalf("del: %v %v", ok, err)
			}
			if _, ok, _ := kv.Get(ctx, "r", "doc"); ok {
				t.Fatal("deleted key readable")
			}
		})
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	_ = json.Unmarshal(a, &x)
	_ = json.Unmarshal(b, &y)
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// TestKVSweep: the sweep deletes the rules' expired entries only.
func TestKVSweep(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		ctx := t.Context()
		clk := newClock()
		kv, _ := engineKV(t, e, clk.now)
		if err := kv.Set(ctx, "20-business-hours", "away:x", json.RawMessage(`true`), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := kv.Set(ctx, "20-business-hours", "keep", json.RawMessage(`1`), 0); err != nil {
			t.Fatal(err)
		}
		if err := kv.Set(ctx, "other", "later", json.RawMessage(`1`), 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Incr(ctx, "other", "window", 1, 30*time.Minute); err != nil {
			t.Fatal(err)
		}
		clk.advance(time.Hour)
		n, err := kv.Sweep(ctx)
		if err != nil || n != 2 {
			t.Fatalf("sweep: %d %v, want 2", n, err)
		}
		for _, k := range [][2]string{{"20-business-hours", "keep"}, {"other", "later"}} {
			if _, ok, _ := kv.Get(ctx, k[0], k[1]); !ok {
				t.Errorf("%s/%s swept", k[0], k[1])
			}
		}
		if n, err := kv.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("second sweep: %d %v", n, err)
		}
	})
}

// TestSQLiteKVSweepsInBatches: a backlog larger than one sweep transaction
// is removed by one Sweep call.
func TestSQLiteKVSweepsInBatches(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	kv := NewSQLiteKV(storetest.NewSQLite(t, SQLiteSchema), clk.now)
	const n = sweepBatch + 17
	for i := range n {
		if err := kv.Set(ctx, "r", fmt.Sprint(i), json.RawMessage(`1`), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(time.Minute)
	if got, err := kv.Sweep(ctx); err != nil || got != n {
		t.Fatalf("sweep: %d %v, want %d", got, err, n)
	}
}

// The MongoDB documents keep their shape ({_id: "rule:…"}, ns, key, value,
// expiresAt), and a plugin's expired entry in the shared collection is not
// the rules' sweep's to delete.
func TestMongoKVDocuments(t *testing.T) {
	ctx := t.Context()
	db := storetest.NewDatabase(t)
	clk := newClock()
	kv := NewMongoKV(db, clk.now)
	if err := kv.Set(ctx, "20-business-hours", "away:x", json.RawMessage(`true`), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection(store.KV).InsertOne(ctx, bson.D{{Key: "_id", Value: "plugin:p:k"}, {Key: "expiresAt", Value: clk.now().Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	var doc bson.M
	if err := db.Collection(store.KV).FindOne(ctx, bson.D{{Key: "_id", Value: "rule:20-business-hours:away:x"}}).Decode(&doc); err != nil {
		t.Fatalf("document by _id: %v", err)
	}
	if doc["ns"] != "rule:20-business-hours" || doc["key"] != "away:x" || doc["value"] != true || doc["expiresAt"] == nil {
		t.Fatalf("document %v", doc)
	}
	clk.advance(time.Hour)
	if n, err := kv.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if c, _ := db.Collection(store.KV).CountDocuments(ctx, bson.D{{Key: "_id", Value: "plugin:p:k"}}); c != 1 {
		t.Errorf("the rules' sweep deleted a plugin's key")
	}
}

// Concurrent increments of one key are exact: one UPSERT … RETURNING on
// SQLite; on MongoDB the in-process key lock covers FerretDB's $inc, which
// is not isolated.
func TestKVConcurrentIncr(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		kv, _ := engineKV(t, e, nil)
		const workers, each = 8, 10
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					if _, err := kv.Incr(context.Background(), "r", "hits", 1, time.Hour); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		raw, _, err := kv.Get(t.Context(), "r", "hits")
		if err != nil || string(raw) != fmt.Sprint(workers*each) {
			t.Fatalf("hits = %s (%v), want %d", raw, err, workers*each)
		}
	})
}

// The kv of a rule survives a daemon restart: a new engine on the same
// database reads what the old one wrote.
func TestKVPersistsAcrossEngineRestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testKVPersistsAcrossEngineRestart(t, e) })
}

func testKVPersistsAcrossEngineRestart(t *testing.T, e storetest.Engine) {
	kv, more := engineKV(t, e, nil)
	src := map[string]string{"count.js": `on("message.received", (msg, ctx) => {
  const n = ctx.kv.incr("seen");
  const first = ctx.kv.get("first") ?? msg.message.text;
  ctx.kv.set("first", first, {ttl: "1h"});
  ctx.kv.set("gone", 1);
  ctx.annotate("n", n);
  ctx.annotate("first", first);
  ctx.annotate("deleted", ctx.kv.del("gone"));
});`}
	// The deadline is generous: this test is about persistence, and the
	// embedded engine under the race detector takes tens of ms per call.
	e1, dir := newEngine(t, src, Options{KV: kv, Timeout: 10 * time.Second})
	mustHandle(t, e1, msgEvent("hello"))
	mustHandle(t, e1, msgEvent("again"))

	e2 := New(Options{Globs: []string{dir + "/*.js"}, KV: more(), Timeout: 10 * time.Second})
	if err := e2.Reload(); err != nil {
		t.Fatal(err)
	}
	got := effectsJSON(t, mustHandle(t, e2, msgEvent("after restart")))
	want := `[{"kind":"annotate","key":"n","value":"3"},{"kind":"annotate","key":"first","value":"hello"},{"kind":"annotate","key":"deleted","value":"true"}]`
	if got != want {
		t.Fatalf("after restart\n got %s\nwant %s", got, want)
	}
}

// A Go function honours the handler's deadline itself: Interrupt does not
// reach into it.
type slowKV struct{ KV }

func (s slowKV) Get(ctx context.Context, rule, key string) (json.RawMessage, bool, error) {
	<-ctx.Done()
	return nil, false, fmt.Errorf("kv get %q: %w", key, ctx.Err())
}

func TestKVHonoursTheDeadline(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"a.js": `on("message.received", (msg, ctx) => {
  try { ctx.kv.get("k"); } catch (e) { ctx.tag("caught: " + e.message); }
});`}, Options{KV: slowKV{NewMemoryKV(nil)}, Timeout: 20 * time.Millisecond})
	start := time.Now()
	_, err := handle(t, e, msgEvent("x"))
	t.Logf("kv call cut after %s", time.Since(start))
	// The rule caught the error, yet the call ran out of its time: it
	// counts as a timeout.
	var re *RuleError
	if !asRuleError(err, &re) || !re.Timeout {
		t.Fatalf("want a timeout, got %v", err)
	}
	if st := e.Status()[0]; st.Timeouts != 1 {
		t.Fatalf("status %+v", st)
	}
}

// On the embedded engine a kv write waits for no commit: it is queued in
// the group commit and read back from memory, and it is committed before
// any write queued after it — the event's done mark — is answered.
func TestSQLiteKVWritesWaitForNoCommit(t *testing.T) {
	db := storetest.NewSQLite(t, SQLiteSchema)
	kv := NewSQLiteKV(db, nil)
	ctx := context.Background()
	if _, err := kv.Incr(ctx, "r", "n", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := db.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	// Hold the next group in its before-commit hook.
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	db.BeforeCommit("hold", func(context.Context, *sql.Tx) error {
		once.Do(func() {
			close(held)
			<-release
		})
		return nil
	})
	var let sync.Once
	t.Cleanup(func() { let.Do(func() { close(release) }) })
	blocked := make(chan error, 1)
	go func() { blocked <- db.Write(ctx, func(*sql.Tx) error { return nil }) }()
	<-held

	done := make(chan error, 1)
	var got float64
	go func() {
		var err error
		got, err = kv.Incr(ctx, "r", "n", 1, time.Hour)
		if err == nil {
			err = kv.Set(ctx, "r", "s", json.RawMessage(`"x"`), 0)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil || got != 2 {
			t.Fatalf("Incr = %v, %v; want 2", got, err)
		}
	case <-time.After(time.Minute):
		t.Fatal("kv writes waited for the held commit")
	}
	if v, ok, err := kv.Get(ctx, "r", "s"); err != nil || !ok || string(v) != `"x"` {
		t.Fatalf("Get s = %s %v %v: a queued write is not read back", v, ok, err)
	}
	var stored string
	if err := db.Reader().QueryRow(`SELECT value FROM rule_kv WHERE rule = 'r' AND key = 'n'`).Scan(&stored); err != nil || stored != "1" {
		t.Fatalf("stored n = %q, %v while the group is held; want 1", stored, err)
	}

	let.Do(func() { close(release) })
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	// The done mark's stand-in: once it is answered, both writes are in.
	if err := db.Write(ctx, func(*sql.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var n, s string
	if err := db.Reader().QueryRow(`SELECT (SELECT value FROM rule_kv WHERE key = 'n'), (SELECT value FROM rule_kv WHERE key = 's')`).Scan(&n, &s); err != nil || n != "2" || s != `"x"` {
		t.Fatalf("stored n = %q, s = %q, %v; want 2 and \"x\"", n, s, err)
	}
	// Another store on the database (a reloaded engine) reads the same.
	if got, err := NewSQLiteKV(db, nil).Incr(ctx, "r", "n", 1, time.Hour); err != nil || got != 3 {
		t.Fatalf("second store's Incr = %v, %v; want 3", got, err)
	}
}
