package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
)

// recorder is a sink that records the event ids it was given.
type recorder struct {
	mu   sync.Mutex
	seen map[string]int // event id → deliveries
}

func newRecorder() *recorder { return &recorder{seen: map[string]int{}} }

func (r *recorder) Deliver(ctx context.Context, j *Job) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j.Event == nil || j.Event.ID != j.EventID {
		return Fail(fmt.Errorf("job %s carries event %v", j.ID, j.Event))
	}
	r.seen[j.EventID]++
	return OK()
}

func (r *recorder) count() (events, deliveries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.seen {
		deliveries += n
	}
	return len(r.seen), deliveries
}

func run(t *testing.T, d *Dispatcher) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return cancel
}

func countState(t *testing.T, o *Outbox, target string, state State) int {
	t.Helper()
	st, err := o.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Depth[state][target]
}

func TestDispatcherDelivers(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		o := s.open(t, Options{})
		rec := newRecorder()
		d := NewDispatcher(o, DispatcherOptions{PollInterval: 20 * time.Millisecond})
		d.Handle("a", rec, 4)
		run(t, d)
		var items []Item
		for i := range 50 {
			items = append(items, Item{Event: testEvent(i), Targets: []string{"a"}})
		}
		if err := o.EnqueueBatch(context.Background(), items); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, waitLimit, func() error {
			if n := countState(t, o, "a", StateDone); n != 50 {
				return fmt.Errorf("%d of 50 done", n)
			}
			return nil
		})
		if ev, del := rec.count(); ev != 50 || del != 50 {
			t.Fatalf("%d events in %d deliveries, want 50 in 50", ev, del)
		}
	})
}

// A dispatcher "killed" mid-delivery leaves its jobs processing; a
// restarted daemon (a new outbox and dispatcher whose clock is past the
// lease) re-claims and delivers every one. Nothing is lost; duplicates carry
// the same event id; the dead worker's late completion changes nothing.
func TestCrashedWorkerJobsAreRedelivered(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		const n = 20
		clk := newClock()
		first := s.open(t, Options{Clock: clk, Lease: time.Minute})
		var items []Item
		for i := range n {
			items = append(items, Item{Event: testEvent(i), Targets: []string{"a"}})
		}
		if err := first.EnqueueBatch(ctx, items); err != nil {
			t.Fatal(err)
		}

		// The first daemon's sink takes every job and never answers; its
		// heartbeat is too slow to matter.
		var stuck sync.WaitGroup
		stuck.Add(n)
		release := make(chan struct{})
		blocked := SinkFunc(func(ctx context.Context, j *Job) Result {
			stuck.Done()
			<-release
			return OK()
		})
		d1 := NewDispatcher(first, DispatcherOptions{PollInterval: 10 * time.Millisecond, Heartbeat: time.Hour, Timeout: time.Hour})
		d1.Handle("a", blocked, n)
		if !s.exclusive {
			run(t, d1)
			stuck.Wait()
		} else {
			// In exclusive mode the process owns the schedule, so the
			// "killed" daemon is modelled by claims that are never
			// completed and an outbox object that is dropped.
			for range n {
				if _, err := first.Claim(ctx, "a", "dead"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := countState(t, first, "a", StateProcessing); got != n {
			t.Fatalf("%d processing before the crash, want %d", got, n)
		}

		later := newClock()
		later.Set(clk.Now().Add(time.Minute + time.Second))
		second := s.open(t, Options{Clock: later, Lease: time.Minute})
		rec := newRecorder()
		d2 := NewDispatcher(second, DispatcherOptions{PollInterval: 10 * time.Millisecond})
		d2.Handle("a", rec, 4)
		run(t, d2)
		poll.Until(t, waitLimit, func() error {
			if got := countState(t, second, "a", StateDone); got != n {
				return fmt.Errorf("%d of %d done after restart", got, n)
			}
			return nil
		})
		if ev, del := rec.count(); ev != n || del != n {
			t.Fatalf("restarted daemon delivered %d events in %d deliveries, want %d", ev, del, n)
		}
		for i := range n {
			j := mustGet(t, second, JobID(testEvent(i).ID, "a"))
			if j.Attempts != 2 || j.State != StateDone {
				t.Fatalf("job %s: %d attempts, %s", j.ID, j.Attempts, j.State)
			}
		}
		if !s.exclusive {
			// The old worker wakes up: its completions must not touch jobs
			// the new daemon owns.
			close(release)
			poll.Until(t, waitLimit, func() error {
				if got := countState(t, second, "a", StateDone); got != n {
					return fmt.Errorf("stale completions changed jobs: %d done", got)
				}
				for i := range n {
					if j := mustGet(t, second, JobID(testEvent(i).ID, "a")); len(j.Log) != 1 || j.Log[0].Owner != d2.Owner() {
						return fmt.Errorf("job %s log %+v", j.ID, j.Log)
					}
				}
				return nil
			})
		}
	})
}

// A target whose sink hangs uses up only its own slots: another target's
// jobs are all delivered meanwhile.
func TestTargetsAreIsolated(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		o := s.open(t, Options{})
		hung := make(chan struct{})
		slow := SinkFunc(func(ctx context.Context, j *Job) Result {
			select {
			case <-hung:
			case <-ctx.Done():
			}
			return Retry(ctx.Err())
		})
		t.Cleanup(func() { close(hung) })
		fast := newRecorder()
		d := NewDispatcher(o, DispatcherOptions{PollInterval: 20 * time.Millisecond, Timeout: time.Hour})
		d.Handle("slow", slow, 2)
		d.Handle("fast", fast, 2)
		run(t, d)
		var items []Item
		for i := range 30 {
			items = append(items, Item{Event: testEvent(i), Targets: []string{"slow", "fast"}})
		}
		if err := o.EnqueueBatch(context.Background(), items); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, waitLimit, func() error {
			if ev, _ := fast.count(); ev != 30 {
				return fmt.Errorf("fast target got %d of 30", ev)
			}
			return nil
		})
		st, err := o.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Depth[StateProcessing]["slow"] != 2 || st.Depth[StatePending]["slow"] != 28 {
			t.Fatalf("slow target depth = %v", st.Depth)
		}
	})
}

// Retries scheduled by the dispatcher follow the outbox clock; a panicking
// sink is a retry, not a crash.
func TestDispatcherRetriesOnSchedule(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		clk := newClock()
		o := s.open(t, Options{Clock: clk, Rand: fixedRand(0)})
		var mu sync.Mutex
		calls := 0
		sink := SinkFunc(func(ctx context.Context, j *Job) Result {
			mu.Lock()
			defer mu.Unlock()
			calls++
			switch calls {
			case 1:
				panic("boom")
			case 2:
				return RetryAfter(time.Minute, errors.New("429"))
			}
			return OK()
		})
		d := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond})
		d.Handle("a", sink, 1)
		run(t, d)
		mustEnqueue(t, o, testEvent(1), "a")
		id := JobID(testEvent(1).ID, "a")
		waitAttempts := func(n int, state State) *Job {
			var j *Job
			poll.Until(t, waitLimit, func() error {
				j = mustGet(t, o, id)
				if len(j.Log) != n || j.State != state {
					return fmt.Errorf("log %d entries, state %s; want %d, %s", len(j.Log), j.State, n, state)
				}
				return nil
			})
			return j
		}
		j := waitAttempts(1, StatePending)
		if j.RunAt.Sub(clk.Now()) != 5*time.Second || j.Log[0].Error != "sink panicked: boom" {
			t.Fatalf("after the panic: runAt +%s, log %+v", j.RunAt.Sub(clk.Now()), j.Log)
		}
		clk.Set(j.RunAt)
		j = waitAttempts(2, StatePending)
		if j.RunAt.Sub(clk.Now()) != time.Minute {
			t.Fatalf("retryAfter not honoured: runAt +%s", j.RunAt.Sub(clk.Now()))
		}
		clk.Set(j.RunAt)
		waitAttempts(3, StateDone)
	})
}
