package outbox

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

// BenchmarkEnqueueDeliver measures jobs/s through the embedded store —
// enqueue in batches of 100, claim, deliver to a no-op sink, complete — and,
// in the same run against the same store, the raw insertMany rate of the
// same documents, so the outbox's overhead reads as a ratio. Exclusive mode
// only: it is the embedded engine's mode; shared mode there pays a scan per
// claim and is meant for MongoDB.
//
//	go test -run '^$' -bench EnqueueDeliver -benchtime 2000x ./core/outbox/
func BenchmarkEnqueueDeliver(b *testing.B) {
	for _, mode := range []struct {
		name      string
		exclusive bool
	}{{"exclusive", true}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.NewDatabase(b)
			o := open(b, db, Options{Exclusive: mode.exclusive})
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
				ev.ID = fmt.Sprintf("bench:%s:%d", mode.name, i)
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

			// The same documents, raw, into another collection of the same store.
			raw := db.Collection("raw_insert_bench")
			docs := make([]any, n)
			now := time.Now().UTC()
			for i, it := range items {
				docs[i] = &Job{ID: JobID(it.Event.ID, "bench"), EventID: it.Event.ID, Target: "bench", AccountID: it.Event.AccountID,
					State: StatePending, RunAt: now, CreatedAt: now, UpdatedAt: now, Log: []Attempt{}, Event: it.Event}
			}
			start = time.Now()
			for i := 0; i < n; i += batch {
				if _, err := raw.InsertMany(ctx, docs[i:min(i+batch, n)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "raw-inserts/s")
		})
	}
}
