package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

// BenchmarkEnqueueDeliver measures jobs/s through the outbox — enqueue in
// batches of 100, claim, deliver to a no-op sink, complete — and, in the
// same run against the same database, the raw driver inserting the same
// rows (documents), so the outbox's overhead reads as a ratio. On SQLite and
// on MongoDB in exclusive mode (the embedded FerretDB's mode: shared mode
// there pays a scan per claim and is meant for a real MongoDB).
//
//	go test -run '^$' -bench EnqueueDeliver -benchtime 2000x ./core/outbox/
func BenchmarkEnqueueDeliver(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		db := storetest.NewSQLite(b, SQLiteSchema)
		o, err := OpenSQLite(db, Options{})
		if err != nil {
			b.Fatal(err)
		}
		items := benchDeliver(b, o, "sqlite")
		// The same rows, raw: one prepared INSERT per row, 100 rows a
		// transaction, into a table without the outbox's indexes.
		ctx := context.Background()
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`CREATE TABLE raw_insert_bench (id TEXT PRIMARY KEY, payload TEXT NOT NULL) STRICT`)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		enc, err := encodeJobs(benchJobs(items))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < len(enc); i += 100 {
			chunk := enc[i:min(i+100, len(enc))]
			if err := db.Write(ctx, func(tx *sql.Tx) error {
				st, err := tx.Prepare(`INSERT INTO raw_insert_bench (id, payload) VALUES (?, ?)`)
				if err != nil {
					return err
				}
				defer st.Close()
				for _, e := range chunk {
					if _, err := st.Exec(e.job.ID, string(e.payload)); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(enc))/time.Since(start).Seconds(), "raw-inserts/s")
	})
	b.Run("mongodb-exclusive", func(b *testing.B) {
		db := storetest.NewDatabase(b)
		o := open(b, db, Options{Exclusive: true})
		items := benchDeliver(b, o, "mongodb")
		raw := db.Collection("raw_insert_bench")
		jobs := benchJobs(items)
		docs := make([]any, len(jobs))
		for i, j := range jobs {
			docs[i] = j
		}
		ctx := context.Background()
		start := time.Now()
		for i := 0; i < len(docs); i += 100 {
			if _, err := raw.InsertMany(ctx, docs[i:min(i+100, len(docs))]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(docs))/time.Since(start).Seconds(), "raw-inserts/s")
	})
}

// benchDeliver runs b.N jobs through o and a dispatcher and reports jobs/s;
// it returns the items it enqueued.
func benchDeliver(b *testing.B, o *Outbox, name string) []Item {
	ctx := context.Background()
	var delivered atomic.Int64
	d := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond})
	d.Handle("bench", SinkFunc(func(ctx context.Context, j *Job) Result {
		delivered.Add(1)
		return OK()
	}), 8)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(rctx) }()
	defer func() { cancel(); <-done }()

	const batch = 100
	n := b.N
	items := make([]Item, n)
	for i := range items {
		ev := testEvent(i)
		ev.ID = fmt.Sprintf("bench:%s:%d", name, i)
		items[i] = Item{Event: ev, Targets: []string{"bench"}}
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i += batch {
		if err := o.EnqueueBatch(ctx, items[i:min(i+batch, n)]); err != nil {
			b.Fatal(err)
		}
	}
	for delivered.Load() < int64(n) {
		time.Sleep(time.Millisecond) // waiting for the dispatcher, not synchronising a test
	}
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/took.Seconds(), "jobs/s")
	return items
}

// benchJobs are the jobs of items as Enqueue would store them.
func benchJobs(items []Item) []*Job {
	now := time.Now().UTC()
	jobs := make([]*Job, len(items))
	for i, it := range items {
		jobs[i] = &Job{ID: JobID(it.Event.ID, "bench"), EventID: it.Event.ID, Target: "bench", AccountID: it.Event.AccountID,
			State: StatePending, RunAt: now, CreatedAt: now, UpdatedAt: now, Log: []Attempt{}, Event: it.Event}
	}
	return jobs
}
