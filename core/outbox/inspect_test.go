package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Paging with a cursor returns every job that existed when paging began
// exactly once, while other jobs are enqueued concurrently.
func TestListPaginationIsStableUnderEnqueue(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk})
		want := map[string]bool{}
		for i := range 40 {
			if i%3 == 0 {
				clk.Add(time.Millisecond) // several jobs share a createdAt
			}
			ev := testEvent(i)
			mustEnqueue(t, o, ev, "a")
			want[JobID(ev.ID, "a")] = true
		}

		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1000; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				clk.Add(time.Millisecond)
				if err := o.Enqueue(ctx, testEvent(i), "a"); err != nil {
					t.Error(err)
					return
				}
			}
		}()

		got := map[string]bool{}
		cursor := ""
		var first *Page
		for pages := 0; ; pages++ {
			p, err := o.List(ctx, Filter{Target: "a"}, cursor, 7)
			if err != nil {
				t.Fatal(err)
			}
			if pages == 0 {
				first = p
			}
			for _, j := range p.Jobs {
				if got[j.ID] {
					t.Fatalf("job %s listed twice", j.ID)
				}
				got[j.ID] = true
			}
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		close(stop)
		wg.Wait()
		// The first page may already hold jobs enqueued while paging; every
		// job that existed before must be there exactly once.
		for id := range want {
			if !got[id] {
				t.Fatalf("job %s skipped (first page %d jobs)", id, len(first.Jobs))
			}
		}
		if _, err := o.List(ctx, Filter{}, "not a cursor", 5); !errors.Is(err, ErrBadCursor) {
			t.Fatalf("bad cursor: %v", err)
		}
	})
}

func TestListFilters(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk})
		mustEnqueue(t, o, testEvent(1), "a", "b")
		since := clk.Add(time.Hour)
		ev := testEvent(2)
		ev.AccountID = "other"
		mustEnqueue(t, o, ev, "a")
		j, err := o.Claim(ctx, "b", "w")
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Complete(ctx, j, Fail(errors.New("no")), 0); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			f    Filter
			want int
		}{
			{Filter{}, 3},
			{Filter{Target: "a"}, 2},
			{Filter{State: StateDeadLetter}, 1},
			{Filter{EventID: testEvent(1).ID}, 2},
			{Filter{AccountID: "other"}, 1},
			{Filter{Since: since}, 1},
			{Filter{Target: "b", State: StatePending}, 0},
		}
		for _, tt := range tests {
			p, err := o.List(ctx, tt.f, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Jobs) != tt.want {
				t.Errorf("List(%+v) = %d jobs, want %d", tt.f, len(p.Jobs), tt.want)
			}
		}
	})
}

func TestRetryAndReplay(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk})
		// Events 0–5 to a and b; all fail permanently. 0–2 are enqueued an
		// hour before 3–5.
		fail := func(target string) {
			for {
				j, err := o.Claim(ctx, target, "w")
				if errors.Is(err, ErrNoJob) {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := o.Complete(ctx, j, Fail(errors.New("400")), 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i := range 6 {
			if i == 3 {
				clk.Add(time.Hour)
			}
			mustEnqueue(t, o, testEvent(i), "a", "b")
		}
		since := clk.Now()
		fail("a")
		fail("b")

		id := JobID(testEvent(0).ID, "a")
		j, err := o.Retry(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != StatePending || j.Attempts != 0 || j.FirstAttemptAt != nil || len(j.Log) != 1 {
			t.Fatalf("retried job = %+v", j)
		}
		if _, err := o.Retry(ctx, id); !errors.Is(err, ErrNotRetryable) {
			t.Fatalf("retry of a pending job: %v, want ErrNotRetryable", err)
		}
		if _, err := o.Retry(ctx, "nope|a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("retry of a missing job: %v, want ErrNotFound", err)
		}
		if _, err := o.Replay(ctx, Filter{State: StatePending}); !errors.Is(err, ErrNotRetryable) {
			t.Fatalf("replay of pending jobs: %v, want ErrNotRetryable", err)
		}

		// All dead letters of a since T: events 3–5.
		n, err := o.Replay(ctx, Filter{Target: "a", Since: since})
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("replayed %d, want 3", n)
		}
		claimed := map[string]bool{}
		for {
			j, err := o.Claim(ctx, "a", "w")
			if errors.Is(err, ErrNoJob) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			claimed[j.EventID] = true
			if err := o.Complete(ctx, j, OK(), 0); err != nil {
				t.Fatal(err)
			}
		}
		want := fmt.Sprint(map[string]bool{testEvent(0).ID: true, testEvent(3).ID: true, testEvent(4).ID: true, testEvent(5).ID: true})
		if fmt.Sprint(claimed) != want {
			t.Fatalf("claimed after retry/replay %v, want %v", claimed, want)
		}
		if _, err := o.Claim(ctx, "b", "w"); !errors.Is(err, ErrNoJob) {
			t.Fatalf("target b was replayed too: %v", err)
		}
		st, err := o.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Depth[StateDone]["a"] != 4 || st.Depth[StateDeadLetter]["a"] != 2 || st.Depth[StateDeadLetter]["b"] != 6 {
			t.Fatalf("depth = %v", st.Depth)
		}

		// Done jobs can be replayed too, and purged.
		if n, err := o.Replay(ctx, Filter{State: StateDone, Target: "a"}); err != nil || n != 4 {
			t.Fatalf("replay done: %d, %v", n, err)
		}
	})
}

func TestStatsOldestPending(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk})
		st, err := o.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.OldestPending.IsZero() || len(st.Depth) != 0 {
			t.Fatalf("empty outbox stats = %+v", st)
		}
		mustEnqueue(t, o, testEvent(1), "a")
		clk.Add(time.Minute)
		mustEnqueue(t, o, testEvent(2), "b")
		clk.Add(time.Minute)
		st, err = o.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if age := st.OldestPendingAge(clk.Now()); age != 2*time.Minute {
			t.Fatalf("oldest pending age %s, want 2m", age)
		}
		if st.Depth[StatePending]["a"] != 1 || st.Depth[StatePending]["b"] != 1 {
			t.Fatalf("depth = %v", st.Depth)
		}
	})
}

func TestPurgeRemovesOldDoneJobs(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk})
		mustEnqueue(t, o, testEvent(1), "a")
		mustEnqueue(t, o, testEvent(2), "a")
		j, err := o.Claim(ctx, "a", "w")
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Complete(ctx, j, OK(), 0); err != nil {
			t.Fatal(err)
		}
		n, err := o.Purge(ctx, clk.Now().Add(time.Second))
		if err != nil || n != 1 {
			t.Fatalf("purged %d, %v; want 1", n, err)
		}
		if _, err := o.Get(ctx, j.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("purged job still there: %v", err)
		}
	})
}
