package outbox

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestTwoDispatchersOnOneDatabaseDeliverEachJobOnce runs two daemons'
// dispatchers on one MongoDB database whose conditional updates are atomic
// (checked first): while a claim's lease is live, no job is delivered by
// both, and together they deliver every job.
func TestTwoDispatchersOnOneDatabaseDeliverEachJobOnce(t *testing.T) {
	ctx := context.Background()
	db := storetest.NewAtomicDatabase(t)
	if err := storetest.ProbeAtomicUpdates(ctx, db, storetest.ProbeOptions{}); err != nil {
		t.Fatalf("the test server's conditional updates are not atomic: %v", err)
	}
	const n = 120
	// A lease far longer than the test: a second delivery could only come
	// from two claims of one live lease.
	open := func() *Outbox {
		o, err := Open(ctx, db, Options{Lease: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.EnsureIndexes(ctx); err != nil {
			t.Fatal(err)
		}
		return o
	}
	a, b := open(), open()
	var items []Item
	for i := range n {
		items = append(items, Item{Event: testEvent(i), Targets: []string{"hook"}})
	}
	if err := a.EnqueueBatch(ctx, items); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	by := map[string][]string{} // event id → dispatchers that delivered it
	sink := func(name string) SinkFunc {
		return func(ctx context.Context, j *Job) Result {
			mu.Lock()
			by[j.EventID] = append(by[j.EventID], name)
			mu.Unlock()
			time.Sleep(time.Millisecond) // an attempt takes a little while: claims overlap
			return OK()
		}
	}
	da := NewDispatcher(a, DispatcherOptions{Owner: "a", PollInterval: 5 * time.Millisecond, BatchWindow: -1})
	db2 := NewDispatcher(b, DispatcherOptions{Owner: "b", PollInterval: 5 * time.Millisecond, BatchWindow: -1})
	da.Handle("hook", sink("a"), 4)
	db2.Handle("hook", sink("b"), 4)
	run(t, da)
	run(t, db2)
	poll.Until(t, waitLimit, func() error {
		if got := countState(t, a, "hook", StateDone); got != n {
			return fmt.Errorf("%d of %d done", got, n)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	perOwner := map[string]int{}
	for i := range n {
		id := testEvent(i).ID
		if len(by[id]) != 1 {
			t.Fatalf("job of %s delivered by %v, want exactly one dispatcher once", id, by[id])
		}
		perOwner[by[id][0]]++
	}
	if perOwner["a"] == 0 || perOwner["b"] == 0 {
		t.Fatalf("deliveries per dispatcher %v: both should have claimed jobs", perOwner)
	}
}
