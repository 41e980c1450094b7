package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
)

// countingBackend records the size of every Claim and Finish.
type countingBackend struct {
	Backend
	mu             sync.Mutex
	claims, finish []int
}

func (c *countingBackend) Claim(ctx context.Context, r ClaimRequest) ([]*Job, error) {
	jobs, err := c.Backend.Claim(ctx, r)
	c.mu.Lock()
	c.claims = append(c.claims, len(jobs))
	c.mu.Unlock()
	return jobs, err
}

func (c *countingBackend) Finish(ctx context.Context, s []Settlement) []error {
	c.mu.Lock()
	c.finish = append(c.finish, len(s))
	c.mu.Unlock()
	return c.Backend.Finish(ctx, s)
}

func (c *countingBackend) sizes() (claims, finish []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.claims...), append([]int(nil), c.finish...)
}

// A target with free slots claims as many due jobs as it has slots in one
// claim, not one claim per job.
func TestDispatcherClaimsAsManyAsItHasSlots(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		o := s.open(t, Options{})
		cb := &countingBackend{Backend: o.b}
		o.b = cb
		const slots, n = 16, 40
		var items []Item
		for i := range n {
			items = append(items, Item{Event: testEvent(i), Targets: []string{"a"}})
		}
		if err := o.EnqueueBatch(context.Background(), items); err != nil {
			t.Fatal(err)
		}
		var seen sync.Map
		sink := SinkFunc(func(ctx context.Context, j *Job) Result {
			if _, dup := seen.LoadOrStore(j.ID, true); dup {
				return Fail(fmt.Errorf("job %s delivered twice", j.ID))
			}
			return OK()
		})
		d := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond})
		d.Handle("a", sink, slots)
		run(t, d)
		poll.Until(t, waitLimit, func() error {
			if got := countState(t, o, "a", StateDone); got != n {
				return fmt.Errorf("%d of %d done", got, n)
			}
			return nil
		})
		claims, finish := cb.sizes()
		if claims[0] != slots {
			t.Fatalf("first claim took %d jobs, want %d (every slot was free): claims %v", claims[0], slots, claims)
		}
		total := 0
		for _, k := range finish {
			total += k
		}
		if total != n {
			t.Fatalf("completions carried %d settlements, want %d", total, n)
		}
	})
}

// The completer writes every outcome that has finished by the time it
// writes in one Finish.
func TestCompleterRecordsFinishedAttemptsTogether(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		o := s.open(t, Options{})
		cb := &countingBackend{Backend: o.b}
		o.b = cb
		const n = 10
		for i := range n {
			mustEnqueue(t, o, testEvent(i), "a")
		}
		jobs, err := o.ClaimBatch(ctx, "a", "me", n)
		if err != nil || len(jobs) != n {
			t.Fatalf("claimed %d, %v", len(jobs), err)
		}
		done := make(chan attemptDone, n)
		for i, j := range jobs {
			res := OK()
			if i == 3 {
				res = Retry(fmt.Errorf("receiver said 503"))
			}
			done <- attemptDone{job: j, res: res, took: time.Millisecond}
		}
		close(done)
		d := NewDispatcher(o, DispatcherOptions{})
		d.complete(ctx, &target{name: "a"}, done, slog.New(slog.DiscardHandler))
		if _, finish := cb.sizes(); len(finish) != 1 || finish[0] != n {
			t.Fatalf("finishes %v, want one of %d", finish, n)
		}
		if got := countState(t, o, "a", StateDone); got != n-1 {
			t.Fatalf("%d done, want %d", got, n-1)
		}
		if j := mustGet(t, o, jobs[3].ID); j.State != StatePending || j.LastError != "receiver said 503" {
			t.Fatalf("failed attempt left job %s %q", j.State, j.LastError)
		}
	})
}

// One heartbeat per target keeps a long attempt's lease; when another
// worker takes the job over anyway, the attempt is cancelled and its
// outcome dropped: the new owner's attempt stands.
func TestHeartbeatExtendsLeasesAndCancelsLostAttempts(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		if s.exclusive {
			t.Skip("exclusive mode: one process owns the schedule, so no other worker can take a job over")
		}
		ctx := context.Background()
		o := s.open(t, Options{Lease: time.Minute})
		// blocking starts an attempt that lasts until it is cancelled.
		blocking := func() (Sink, chan struct{}, chan struct{}) {
			started, cancelled := make(chan struct{}), make(chan struct{})
			return SinkFunc(func(ctx context.Context, j *Job) Result {
				close(started)
				<-ctx.Done()
				close(cancelled)
				return Retry(ctx.Err())
			}), started, cancelled
		}

		t.Run("extends", func(t *testing.T) {
			mustEnqueue(t, o, testEvent(1), "a")
			id := JobID(testEvent(1).ID, "a")
			sink, started, _ := blocking()
			d := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond, Heartbeat: 20 * time.Millisecond, Timeout: time.Hour})
			d.Handle("a", sink, 1)
			run(t, d)
			waitClosed(t, started, "the attempt to start")
			first := *mustGet(t, o, id).LeaseUntil
			poll.Until(t, waitLimit, func() error {
				if j := mustGet(t, o, id); !j.LeaseUntil.After(first) {
					return fmt.Errorf("lease still %v", j.LeaseUntil)
				}
				return nil
			})
		})

		t.Run("lost", func(t *testing.T) {
			mustEnqueue(t, o, testEvent(2), "b")
			id := JobID(testEvent(2).ID, "b")
			sink, started, cancelled := blocking()
			// The first heartbeat comes after the takeover below: FerretDB's
			// conditional updates are not atomic, so a heartbeat racing the
			// takeover could write the old claim back (MongoDB's cannot).
			d := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond, Heartbeat: 300 * time.Millisecond, Timeout: time.Hour})
			d.Handle("b", sink, 1)
			run(t, d)
			waitClosed(t, started, "the attempt to start")
			// Another daemon, whose clock is past the lease, takes the job.
			later := newClock()
			later.Set(time.Now().Add(2 * time.Minute))
			thief, err := s.open(t, Options{Clock: later, Lease: time.Minute}).Claim(ctx, "b", "thief")
			if err != nil {
				t.Fatal(err)
			}
			waitClosed(t, cancelled, "the lost attempt to be cancelled")
			// The dropped attempt never writes: the job stays the thief's.
			poll.Until(t, waitLimit, func() error {
				j := mustGet(t, o, id)
				if j.State != StateProcessing || j.ClaimID != thief.ClaimID || len(j.Log) != 0 {
					return fmt.Errorf("job %s claim %s log %v, want the thief's claim and no attempt logged", j.State, j.ClaimID, j.Log)
				}
				return nil
			})
		})
	})
}

func waitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	poll.Until(t, waitLimit, func() error {
		select {
		case <-c:
			return nil
		default:
			return fmt.Errorf("still waiting for %s", what)
		}
	})
}

// batchRecorder is a BatchSink whose jobs numbered by failEvery fail their
// first attempt; it records every call.
type batchRecorder struct {
	failEvery int
	mu        sync.Mutex
	sizes     []int
	delivered map[string]int // job id → successful attempts
	attempts  map[string]int
	single    int // Deliver calls: must stay 0 for a BatchSink
}

func (b *batchRecorder) Deliver(ctx context.Context, j *Job) Result {
	b.mu.Lock()
	b.single++
	b.mu.Unlock()
	return Fail(fmt.Errorf("Deliver called for %s: a BatchSink gets batches", j.ID))
}

func (b *batchRecorder) DeliverBatch(ctx context.Context, jobs []*Job) []Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sizes = append(b.sizes, len(jobs))
	out := make([]Result, len(jobs))
	for i, j := range jobs {
		b.attempts[j.ID]++
		var n int
		if _, err := fmt.Sscanf(j.EventID, "acct:MSG%05d", &n); err != nil {
			out[i] = Fail(err)
			continue
		}
		if n%b.failEvery == 0 && j.Attempts == 1 {
			out[i] = Retry(fmt.Errorf("receiver of %s said 503", j.ID))
			continue
		}
		b.delivered[j.ID]++
		out[i] = OK()
	}
	return out
}

// A BatchSink gets the claimed jobs in batches of at most MaxBatch, one
// call each, never Deliver; a batch that partly fails retries only the
// failed jobs, which are delivered on their next attempt: every job is
// delivered once, none lost.
func TestDispatcherHandsBatchesToABatchSink(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		fast := Schedule{Delays: []time.Duration{time.Millisecond}, Every: time.Millisecond, MaxAge: time.Hour, MinRetryAfter: time.Millisecond, MaxRetryAfter: time.Millisecond}
		// A long lease: on the in-process FerretDB under -race a backlog of
		// completions can outlast the default one, and a job whose lease ran
		// out is (rightly, at least once) claimed and delivered again.
		o := s.open(t, Options{Schedule: &fast, Lease: time.Hour})
		const slots, maxBatch, n = 16, 8, 40
		var items []Item
		for i := range n {
			items = append(items, Item{Event: testEvent(i), Targets: []string{"a"}})
		}
		if err := o.EnqueueBatch(context.Background(), items); err != nil {
			t.Fatal(err)
		}
		sink := &batchRecorder{failEvery: 3, delivered: map[string]int{}, attempts: map[string]int{}}
		d := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond, MaxBatch: maxBatch})
		d.Handle("a", sink, slots)
		run(t, d)
		poll.Until(t, waitLimit, func() error {
			if got := countState(t, o, "a", StateDone); got != n {
				return fmt.Errorf("%d of %d done", got, n)
			}
			return nil
		})
		sink.mu.Lock()
		defer sink.mu.Unlock()
		if sink.single != 0 {
			t.Fatalf("Deliver called %d times", sink.single)
		}
		if sink.sizes[0] != maxBatch {
			t.Fatalf("first batch had %d jobs, want %d (16 slots free, batches of %d): %v", sink.sizes[0], maxBatch, maxBatch, sink.sizes)
		}
		for _, k := range sink.sizes {
			if k > maxBatch {
				t.Fatalf("a batch of %d jobs exceeds MaxBatch %d: %v", k, maxBatch, sink.sizes)
			}
		}
		for i := range n {
			id := JobID(testEvent(i).ID, "a")
			wantAttempts := 1
			if i%3 == 0 {
				wantAttempts = 2
			}
			if sink.delivered[id] != 1 || sink.attempts[id] != wantAttempts {
				t.Errorf("job %d: delivered %d times in %d attempts, want once in %d", i, sink.delivered[id], sink.attempts[id], wantAttempts)
			}
			if j := mustGet(t, o, id); len(j.Log) != wantAttempts {
				t.Errorf("job %d: %d attempts logged, want %d", i, len(j.Log), wantAttempts)
			}
		}
	})
}

// blockingBatch is a BatchSink whose calls last until their context ends.
type blockingBatch struct {
	started, cancelled chan struct{}
}

func (b *blockingBatch) Deliver(ctx context.Context, j *Job) Result {
	return Fail(fmt.Errorf("Deliver called for %s", j.ID))
}

func (b *blockingBatch) DeliverBatch(ctx context.Context, jobs []*Job) []Result {
	close(b.started)
	<-ctx.Done()
	close(b.cancelled)
	out := make([]Result, len(jobs))
	for i := range out {
		out[i] = Retry(ctx.Err())
	}
	return out
}

// A batch whose jobs are taken over one by one keeps running for the jobs
// it still holds, and is cancelled once it holds none; the dropped
// outcomes never overwrite the new owner's claims.
func TestBatchCancelledOnlyWhenEveryLeaseIsLost(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		if s.exclusive {
			t.Skip("exclusive mode: one process owns the schedule, so no other worker can take a job over")
		}
		ctx := context.Background()
		o := s.open(t, Options{Lease: time.Minute})
		mustEnqueue(t, o, testEvent(1), "b")
		mustEnqueue(t, o, testEvent(2), "b")
		ids := []string{JobID(testEvent(1).ID, "b"), JobID(testEvent(2).ID, "b")}
		sink := &blockingBatch{started: make(chan struct{}), cancelled: make(chan struct{})}
		d := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond, Heartbeat: 300 * time.Millisecond, Timeout: time.Hour})
		d.Handle("b", sink, 2)
		run(t, d)
		waitClosed(t, sink.started, "the batch to start")
		poll.Until(t, waitLimit, func() error {
			for _, id := range ids {
				if j := mustGet(t, o, id); j.State != StateProcessing {
					return fmt.Errorf("job %s is %s", id, j.State)
				}
			}
			return nil
		})
		later := newClock()
		later.Set(time.Now().Add(2 * time.Minute))
		thief := s.open(t, Options{Clock: later, Lease: time.Minute})
		first, err := thief.Claim(ctx, "b", "thief")
		if err != nil {
			t.Fatal(err)
		}
		held := ids[0]
		if first.ID == ids[0] {
			held = ids[1]
		}
		// A whole heartbeat after the takeover has seen the lost lease (the
		// held job's lease moved three times); the batch still runs.
		for range 3 {
			lease := *mustGet(t, o, held).LeaseUntil
			poll.Until(t, waitLimit, func() error {
				if j := mustGet(t, o, held); !j.LeaseUntil.After(lease) {
					return fmt.Errorf("lease of %s still %v", held, j.LeaseUntil)
				}
				return nil
			})
		}
		select {
		case <-sink.cancelled:
			t.Fatal("the batch was cancelled while it still held a job")
		default:
		}
		if _, err := thief.Claim(ctx, "b", "thief"); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, sink.cancelled, "the batch to be cancelled once every job was lost")
		poll.Until(t, waitLimit, func() error {
			for _, id := range ids {
				if j := mustGet(t, o, id); j.State != StateProcessing || j.Owner != "thief" || len(j.Log) != 0 {
					return fmt.Errorf("job %s: %s by %s, log %v; want the thief's claim and no attempt logged", id, j.State, j.Owner, j.Log)
				}
			}
			return nil
		})
	})
}

// gatedBatch holds its first call until open is closed and records the
// size of every call.
type gatedBatch struct {
	open  chan struct{}
	first sync.Once
	mu    sync.Mutex
	sizes []int
}

func (g *gatedBatch) Deliver(ctx context.Context, j *Job) Result {
	return Fail(fmt.Errorf("Deliver called for %s", j.ID))
}

func (g *gatedBatch) DeliverBatch(ctx context.Context, jobs []*Job) []Result {
	g.mu.Lock()
	g.sizes = append(g.sizes, len(jobs))
	g.mu.Unlock()
	g.first.Do(func() { <-g.open })
	out := make([]Result, len(jobs))
	for i := range out {
		out[i] = OK()
	}
	return out
}

// When a batch finishes, all its slots come back at once and the next claim
// takes every due job they allow, in one batch — not a job or two per
// claim as slots trickle back.
func TestFinishedBatchFreesItsSlotsAtOnce(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		o := s.open(t, Options{Lease: time.Hour})
		const slots = 8 // the in-process FerretDB completes one job a round trip
		enqueue := func(from, to int) {
			var items []Item
			for i := from; i < to; i++ {
				items = append(items, Item{Event: testEvent(i), Targets: []string{"a"}})
			}
			if err := o.EnqueueBatch(context.Background(), items); err != nil {
				t.Fatal(err)
			}
		}
		enqueue(0, slots) // the first batch: every slot
		sink := &gatedBatch{open: make(chan struct{})}
		d := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond, MaxBatch: slots})
		d.Handle("a", sink, slots)
		run(t, d)
		poll.Until(t, waitLimit, func() error {
			sink.mu.Lock()
			defer sink.mu.Unlock()
			if len(sink.sizes) != 1 {
				return fmt.Errorf("%d batches started", len(sink.sizes))
			}
			return nil
		})
		enqueue(slots, 2*slots) // due while every slot is busy
		close(sink.open)
		poll.Until(t, waitLimit, func() error {
			if got := countState(t, o, "a", StateDone); got != 2*slots {
				return fmt.Errorf("%d of %d done", got, 2*slots)
			}
			return nil
		})
		sink.mu.Lock()
		defer sink.mu.Unlock()
		if len(sink.sizes) != 2 || sink.sizes[1] != slots {
			t.Fatalf("batches %v, want [%d %d]: the second claim should take every freed slot", sink.sizes, slots, slots)
		}
	})
}

// A slot pool hands out every free slot at once, up to the bound, and a
// release of n makes n free together.
func TestSlotPoolTakesEveryFreeSlot(t *testing.T) {
	p := newSlotPool(10)
	ctx := context.Background()
	if n, ok := p.takeFree(ctx, 4); !ok || n != 4 {
		t.Fatalf("take with 10 free, at most 4: %d %v", n, ok)
	}
	if n, _ := p.takeFree(ctx, 100); n != 6 {
		t.Fatalf("take of the rest: %d, want 6", n)
	}
	p.release(5)
	if n, _ := p.takeFree(ctx, 100); n != 5 {
		t.Fatalf("take after a release of 5: %d, want all 5", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := p.takeFree(cctx, 1); ok {
		t.Fatal("take with none free and the context ended returned a slot")
	}
}
