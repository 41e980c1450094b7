package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// Workers claiming the same target at once never share a job: a claim is
// one UPDATE in the single writer's transaction.
func TestSQLiteConcurrentClaimsTakeEachJobOnce(t *testing.T) {
	ctx := context.Background()
	db := storetest.NewSQLite(t, SQLiteSchema)
	o, err := OpenSQLite(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const jobs, workers = 300, 8
	var items []Item
	for i := range jobs {
		items = append(items, Item{Event: testEvent(i), Targets: []string{"a"}})
	}
	if err := o.EnqueueBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	claimed := map[string]string{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprint("w", w)
			for {
				batch, err := o.ClaimBatch(ctx, "a", owner, 1+w%3)
				if errors.Is(err, ErrNoJob) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, j := range batch {
					if prev, ok := claimed[j.ID]; ok {
						t.Errorf("job %s claimed by %s and %s", j.ID, prev, owner)
					}
					claimed[j.ID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != jobs {
		t.Fatalf("%d of %d jobs claimed", len(claimed), jobs)
	}
}

// The jobs EnqueueTx stores commit or roll back with the caller's Write.
func TestSQLiteEnqueueTxIsPartOfTheCallersWrite(t *testing.T) {
	ctx := context.Background()
	db := storetest.NewSQLite(t, SQLiteSchema)
	o, err := OpenSQLite(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TABLE marks (event_id TEXT PRIMARY KEY) STRICT`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	store := func(ev int, fail bool) (func(), error) {
		var wake func()
		err := db.Write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.Exec(`INSERT INTO marks (event_id) VALUES (?)`, testEvent(ev).ID); err != nil {
				return err
			}
			var err error
			if wake, err = o.EnqueueTx(tx, []Item{{Event: testEvent(ev), Targets: []string{"a", "b"}}}); err != nil {
				return err
			}
			if fail {
				return errors.New("a later statement failed")
			}
			return nil
		})
		return wake, err
	}
	if _, err := store(1, true); err == nil {
		t.Fatal("failing write succeeded")
	}
	var marks int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM marks`).Scan(&marks); err != nil {
		t.Fatal(err)
	}
	if p, err := o.List(ctx, Filter{}, "", 10); err != nil || len(p.Jobs) != 0 || marks != 0 {
		t.Fatalf("after a rolled-back write: %d marks, jobs %v (%v)", marks, p, err)
	}

	wakeA, unsubscribe := o.subscribe("a")
	defer unsubscribe()
	wake, err := store(2, false)
	if err != nil {
		t.Fatal(err)
	}
	wake()
	select {
	case <-wakeA:
	default:
		t.Fatal("wake did not nudge target a's dispatcher")
	}
	for _, target := range []string{"a", "b"} {
		if j, err := o.Claim(ctx, target, "w"); err != nil || j.EventID != testEvent(2).ID {
			t.Fatalf("claim %s after the write: %+v, %v", target, j, err)
		}
	}

	// Enqueueing inside a transaction needs the transaction's engine.
	mo := open(t, storetest.NewDatabase(t), Options{})
	if _, err := mo.EnqueueTx(nil, nil); !errors.Is(err, ErrNoTx) {
		t.Fatalf("EnqueueTx on MongoDB: %v, want ErrNoTx", err)
	}
}

// Every query the SQLite backend runs is answered from an index: no scan of
// outbox_jobs, and no sort where the API pages.
func TestSQLiteQueriesUseIndexes(t *testing.T) {
	db := storetest.NewSQLite(t, SQLiteSchema)
	now := time.Now()
	list := func(f Filter, after bool) (string, []any) {
		id := ""
		if after {
			id = "x|a"
		}
		return listQuery(f, now, id, 51)
	}
	tests := []struct {
		name  string
		query string
		args  []any
		index string
	}{
		{"claim", claimSQL, []any{"w", "c", 1, 1, "a", 10}, "outbox_jobs_due"},
		{"ordered claim", claimOrderedSQL, []any{"w", "c", 1, 1, "a", 10}, "outbox_jobs_due"},
		{"ordered claim's chat check", claimOrderedSQL, []any{"w", "c", 1, 1, "a", 10}, "outbox_jobs_chat_live"},
		{"list", "", nil, "outbox_jobs_created"},
		{"list after a cursor", "", nil, "outbox_jobs_created"},
		{"list by state", "", nil, "outbox_jobs_state_created"},
		{"list by target", "", nil, "outbox_jobs_target_created"},
		{"list by account since", "", nil, "outbox_jobs_account_created"},
		{"list by event", "", nil, "outbox_jobs_event"},
		{"stats", statsSQL, nil, "outbox_jobs_state_target"},
		{"oldest pending", oldestPendingSQL, nil, "outbox_jobs_state_created"},
		{"purge", purgeSQL, []any{1, 1000}, "outbox_jobs_state_created"},
	}
	filters := map[string]struct {
		f     Filter
		after bool
	}{
		"list":                  {Filter{}, false},
		"list after a cursor":   {Filter{}, true},
		"list by state":         {Filter{State: StateDeadLetter}, true},
		"list by target":        {Filter{Target: "webhook:x"}, true},
		"list by account since": {Filter{AccountID: "acct", Since: now}, true},
		"list by event":         {Filter{EventID: "acct:M1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, args := tt.query, tt.args
			if q == "" {
				f := filters[tt.name]
				q, args = list(f.f, f.after)
			}
			plan := explain(t, db.Reader(), q, args)
			if !strings.Contains(plan, "INDEX "+tt.index+" ") && !strings.HasSuffix(plan, "INDEX "+tt.index) {
				t.Errorf("plan does not use %s:\n%s", tt.index, plan)
			}
			for _, bad := range []string{"SCAN outbox_jobs\n", "USE TEMP B-TREE"} {
				if strings.Contains(plan+"\n", bad) {
					t.Errorf("plan has %q:\n%s", strings.TrimSpace(bad), plan)
				}
			}
		})
	}
}

func explain(t *testing.T, db *sql.DB, q string, args []any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// EnsureIndexes creates the indexes of the MongoDB backend's queries, the
// claim's included; Open in shared mode needs no server.
func TestMongoEnsureIndexes(t *testing.T) {
	ctx := context.Background()
	db := storetest.NewDatabase(t)
	o := open(t, db, Options{})
	for range 2 { // idempotent
		if err := o.EnsureIndexes(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := db.Collection("outbox").Indexes().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var specs []bson.M
	if err := cur.All(ctx, &specs); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, fmt.Sprint(s["name"]))
	}
	for _, ix := range mongoIndexes {
		if !slices.Contains(names, ix.name) {
			t.Errorf("index %s missing; have %v", ix.name, names)
		}
	}
}

// Migration 0002 applies to a database with jobs: they keep everything,
// carry no chat key (and are claimed without order), and jobs enqueued
// after it carry theirs.
func TestSQLiteChatOrderMigrationKeepsJobs(t *testing.T) {
	ctx := context.Background()
	v1, err := fs.ReadFile(schemaFiles, "schema/0001_outbox.sql")
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/wildcat.db"
	old, err := sqlite.Open(ctx, sqlite.Options{Path: path, Schemas: []sqlite.Schema{
		{Domain: "outbox", FS: fstest.MapFS{"0001_outbox.sql": {Data: v1}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, state := range []string{"pending", "pending", "done"} {
		ev, err := json.Marshal(chatEvent("a", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO outbox_jobs (id, event_id, target, account_id, state, run_at, created_at, updated_at, payload)
				VALUES (?, ?, 'o', 'acct', ?, 1000, 1000, 1000, ?)`, JobID(chatEvent("a", i).ID, "o"), chatEvent("a", i).ID, state, string(ev))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sqlite.Open(ctx, sqlite.Options{Path: path, Schemas: []sqlite.Schema{SQLiteSchema}})
	if err != nil {
		t.Fatalf("migrating: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	o, err := OpenSQLite(db, Options{Clock: newClock()})
	if err != nil {
		t.Fatal(err)
	}
	done := mustGet(t, o, JobID(chatEvent("a", 2).ID, "o"))
	if done.State != StateDone || done.ChatKey != "" || done.Seq != 0 || done.Event.ID != chatEvent("a", 2).ID {
		t.Fatalf("migrated job: %+v", done)
	}
	if got := claimedIDs(t, o, "o", true); len(got) != 2 {
		t.Fatalf("ordered claim took %d of the 2 pending jobs stored before the migration, want both", len(got))
	}
	o.setOrdered("o", true)
	mustEnqueue(t, o, chatEvent("a", 3), "o")
	if j := mustGet(t, o, JobID(chatEvent("a", 3).ID, "o")); j.ChatKey != ChatKey(chatEvent("a", 3)) || j.Seq == 0 {
		t.Fatalf("job enqueued after the migration: chat key %q, seq %d", j.ChatKey, j.Seq)
	}
}
