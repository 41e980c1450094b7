package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// reversingSealer "seals" an event's text by reversing it, so a test sees
// whether a sink was handed the stored form or the event as given.
type reversingSealer struct{}

func reverse(s string) string {
	r := []rune(s)
	for i, k := 0, len(r)-1; i < k; i, k = i+1, k-1 {
		r[i], r[k] = r[k], r[i]
	}
	return string(r)
}

func (reversingSealer) SealEvent(ev *event.Event) (*event.Event, error) {
	c := *ev
	m := *ev.Message
	m.Text = "sealed:" + reverse(m.Text)
	c.Message = &m
	return &c, nil
}

func (reversingSealer) OpenEvent(ev *event.Event) (*event.Event, error) {
	c := *ev
	m := *ev.Message
	t, ok := strings.CutPrefix(m.Text, "sealed:")
	if !ok {
		return nil, fmt.Errorf("event %s is not sealed", ev.ID)
	}
	m.Text = reverse(t)
	c.Message = &m
	return &c, nil
}

// textSink records the text of each event it is handed, and each job's
// attempt number and claim.
type textSink struct {
	mu    sync.Mutex
	texts map[string]string
	jobs  map[string]Job
}

func newTextSink() *textSink { return &textSink{texts: map[string]string{}, jobs: map[string]Job{}} }

func (s *textSink) Deliver(ctx context.Context, j *Job) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.texts[j.EventID] = j.Event.Message.Text
	s.jobs[j.EventID] = *j
	return OK()
}

func (s *textSink) got(eventID string) (string, Job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.texts[eventID]
	return t, s.jobs[eventID], ok
}

// handoffOutbox is an SQLite outbox whose claims are counted.
func handoffOutbox(t *testing.T, opts Options) (*Outbox, *sqlite.DB, *countingBackend) {
	t.Helper()
	db := storetest.NewSQLite(t, SQLiteSchema)
	o, err := OpenSQLite(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	cb := &countingBackend{Backend: o.b}
	o.b = cb
	return o, db, cb
}

// storeTx is what the pipeline's done mark does: prepare, store in one
// Write, then Wake (or Abort when the Write failed).
func storeTx(t *testing.T, o *Outbox, db *sqlite.DB, evs []*event.Event, targets ...string) {
	t.Helper()
	var items []Item
	for _, ev := range evs {
		items = append(items, Item{Event: ev, Targets: targets})
	}
	jobs, err := o.PrepareTx(items)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(context.Background(), func(tx *sql.Tx) error { return jobs.Insert(tx) }); err != nil {
		jobs.Abort()
		t.Fatal(err)
	}
	jobs.Wake()
}

// waitIdle waits until target's dispatcher loop runs and has a free slot
// (its first claim, which holds every slot, has returned).
func waitIdle(t *testing.T, o *Outbox, target string) {
	t.Helper()
	poll.Until(t, waitLimit, func() error {
		tk := o.takerOf(target)
		if tk == nil {
			return errors.New("dispatcher loop not started")
		}
		if tk.reserve(1) == 0 {
			return errors.New("no free slot")
		}
		tk.unreserve(1)
		return nil
	})
}

func claimedJobs(cb *countingBackend) int {
	claims, _ := cb.sizes()
	n := 0
	for _, k := range claims {
		n += k
	}
	return n
}

// A job stored while its target's dispatcher has a free slot is stored
// claimed by it and handed over after the commit: it is delivered with no
// claim, as given (not in its sealed, stored form), and completed.
func TestHandoffDeliversWithoutAClaim(t *testing.T) {
	o, db, cb := handoffOutbox(t, Options{Payload: reversingSealer{}})
	sink := newTextSink()
	d := NewDispatcher(o, DispatcherOptions{PollInterval: time.Hour})
	d.Handle("a", sink, 8)
	run(t, d)
	waitIdle(t, o, "a")
	const n = 5
	var evs []*event.Event
	for i := range n {
		evs = append(evs, testEvent(i))
	}
	storeTx(t, o, db, evs, "a")
	poll.Until(t, waitLimit, func() error {
		if got := countState(t, o, "a", StateDone); got != n {
			return fmt.Errorf("%d of %d done", got, n)
		}
		return nil
	})
	for _, ev := range evs {
		text, job, ok := sink.got(ev.ID)
		if !ok || text != ev.Message.Text {
			t.Fatalf("sink got %q for %s, want %q", text, ev.ID, ev.Message.Text)
		}
		if job.Attempts != 1 || job.ClaimID == "" || job.Owner != d.Owner() || job.State != StateProcessing {
			t.Fatalf("handed job %s: attempts %d, claim %q, owner %q, state %s", job.ID, job.Attempts, job.ClaimID, job.Owner, job.State)
		}
		stored := mustGet(t, o, job.ID)
		if len(stored.Log) != 1 || stored.Log[0].Result != OutcomeOK || stored.Log[0].Owner != d.Owner() {
			t.Fatalf("stored job %s: log %+v", stored.ID, stored.Log)
		}
	}
	if got := claimedJobs(cb); got != 0 {
		t.Fatalf("%d jobs were claimed; every one should have been handed over", got)
	}
}

// Without a free slot a job is stored pending and claimed as before; a
// slot reserved for a transaction that did not commit is given back.
func TestHandoffFallsBackToClaims(t *testing.T) {
	o, db, cb := handoffOutbox(t, Options{})
	gate := make(chan struct{})
	sink := SinkFunc(func(ctx context.Context, j *Job) Result {
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return OK()
	})
	d := NewDispatcher(o, DispatcherOptions{PollInterval: time.Hour})
	d.Handle("a", sink, 1)
	run(t, d)
	waitIdle(t, o, "a")

	// A rolled-back transaction: its reservation comes back.
	failed, err := o.PrepareTx([]Item{{Event: testEvent(0), Targets: []string{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed.hand) != 1 {
		t.Fatalf("%d jobs reserved, want 1 (the slot is free)", len(failed.hand))
	}
	err = db.Write(context.Background(), func(tx *sql.Tx) error {
		if err := failed.Insert(tx); err != nil {
			return err
		}
		return errors.New("a later statement failed")
	})
	if err == nil {
		t.Fatal("failing write succeeded")
	}
	failed.Abort()

	// Job 1 takes the only slot (handed over) and blocks in the sink; job
	// 2 finds no slot, is stored pending and claimed once the slot frees.
	storeTx(t, o, db, []*event.Event{testEvent(1)}, "a")
	poll.Until(t, waitLimit, func() error {
		if got := countState(t, o, "a", StateProcessing); got != 1 {
			return fmt.Errorf("%d processing, want 1", got)
		}
		return nil
	})
	storeTx(t, o, db, []*event.Event{testEvent(2)}, "a")
	if j := mustGet(t, o, JobID(testEvent(2).ID, "a")); j.State != StatePending {
		t.Fatalf("job 2 with no free slot is %s, want pending", j.State)
	}
	close(gate)
	poll.Until(t, waitLimit, func() error {
		if got := countState(t, o, "a", StateDone); got != 2 {
			return fmt.Errorf("%d of 2 done", got)
		}
		return nil
	})
	if got := claimedJobs(cb); got != 1 {
		t.Fatalf("%d jobs claimed, want 1 (job 2)", got)
	}
	if _, err := o.Get(context.Background(), JobID(testEvent(0).ID, "a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the rolled-back job is stored: %v", err)
	}
}

// A job whose id is already stored is left as it is and not handed over:
// the event's delivery is not repeated.
func TestHandoffSkipsAJobAlreadyStored(t *testing.T) {
	o, db, _ := handoffOutbox(t, Options{})
	rec := newRecorder()
	d := NewDispatcher(o, DispatcherOptions{PollInterval: time.Hour})
	d.Handle("a", rec, 4)
	run(t, d)
	waitIdle(t, o, "a")
	storeTx(t, o, db, []*event.Event{testEvent(1)}, "a")
	poll.Until(t, waitLimit, func() error {
		if got := countState(t, o, "a", StateDone); got != 1 {
			return fmt.Errorf("%d of 1 done", got)
		}
		return nil
	})
	// The same event again (a replay after a crash), then a new one: once
	// the new one is delivered, the old one was not delivered again.
	storeTx(t, o, db, []*event.Event{testEvent(1)}, "a")
	storeTx(t, o, db, []*event.Event{testEvent(2)}, "a")
	poll.Until(t, waitLimit, func() error {
		if got := countState(t, o, "a", StateDone); got != 2 {
			return fmt.Errorf("%d of 2 done", got)
		}
		return nil
	})
	if events, deliveries := rec.count(); events != 2 || deliveries != 2 {
		t.Fatalf("%d events in %d deliveries, want 2 in 2", events, deliveries)
	}
	if j := mustGet(t, o, JobID(testEvent(1).ID, "a")); len(j.Log) != 1 {
		t.Fatalf("job 1 has %d attempts logged, want 1", len(j.Log))
	}
}

// Jobs reserved by a loop that stops before the commit are handed back,
// due now, and the next loop delivers them; jobs stored claimed by a
// process that died before handing them over are delivered once their
// lease ends.
func TestHandoffSurvivesAStoppedLoopAndACrash(t *testing.T) {
	clock := newClock()
	o, db, _ := handoffOutbox(t, Options{Clock: clock, Lease: time.Minute})
	rec := newRecorder()
	d := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond})
	d.Handle("a", rec, 4)
	stop := run(t, d)
	waitIdle(t, o, "a")

	// Stopped between reservation and commit.
	jobs, err := o.PrepareTx([]Item{{Event: testEvent(1), Targets: []string{"a"}}})
	if err != nil || len(jobs.hand) != 1 {
		t.Fatalf("prepare: %d reserved, %v", len(jobs.hand), err)
	}
	stop()
	poll.Until(t, waitLimit, func() error {
		if o.takerOf("a") != nil {
			return errors.New("the stopped loop is still registered")
		}
		return nil
	})
	if err := db.Write(context.Background(), func(tx *sql.Tx) error { return jobs.Insert(tx) }); err != nil {
		t.Fatal(err)
	}
	jobs.Wake()
	j := mustGet(t, o, JobID(testEvent(1).ID, "a"))
	if j.State != StatePending || !j.RunAt.Equal(clock.Now().UTC().Truncate(time.Millisecond)) {
		t.Fatalf("job reserved by a stopped loop: %s due %s, want pending due now", j.State, j.RunAt)
	}

	// Stored claimed for a loop of a process that died before the commit
	// returned: never handed over.
	unregister := o.registerTaker("a", newLoopTaker("dead-process", newSlotPool(1)))
	crashed, err := o.PrepareTx([]Item{{Event: testEvent(2), Targets: []string{"a"}}})
	unregister()
	if err != nil || len(crashed.hand) != 1 {
		t.Fatalf("prepare for the dead process: %d reserved, %v", len(crashed.hand), err)
	}
	if err := db.Write(context.Background(), func(tx *sql.Tx) error { return crashed.Insert(tx) }); err != nil {
		t.Fatal(err)
	}
	// No Wake: the process is gone.

	d2 := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond})
	d2.Handle("a", rec, 4)
	run(t, d2)
	poll.Until(t, waitLimit, func() error {
		if got := countState(t, o, "a", StateDone); got != 1 {
			return fmt.Errorf("%d done, want 1 (the handed-back job)", got)
		}
		return nil
	})
	if j := mustGet(t, o, JobID(testEvent(2).ID, "a")); j.State != StateProcessing || j.Owner != "dead-process" {
		t.Fatalf("the dead process's job before its lease ended: %s, owner %q", j.State, j.Owner)
	}
	clock.Add(time.Minute + time.Second)
	poll.Until(t, waitLimit, func() error {
		if got := countState(t, o, "a", StateDone); got != 2 {
			return fmt.Errorf("%d done, want 2", got)
		}
		return nil
	})
	if events, deliveries := rec.count(); events != 2 || deliveries != 2 {
		t.Fatalf("%d events in %d deliveries, want 2 in 2", events, deliveries)
	}
}

// A loop woken by jobs made pending in this process claims only as many as
// were made pending, and keeps count of those it had no slot for: with
// polling out of the picture, every one is still delivered.
func TestClaimsOwedToWakesAreAllTaken(t *testing.T) {
	o, _, cb := handoffOutbox(t, Options{})
	rec := newRecorder()
	d := NewDispatcher(o, DispatcherOptions{PollInterval: time.Hour})
	d.Handle("a", rec, 2)
	run(t, d)
	waitIdle(t, o, "a")
	const n = 10
	var items []Item
	for i := range n {
		items = append(items, Item{Event: testEvent(i), Targets: []string{"a"}})
	}
	if err := o.EnqueueBatch(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, waitLimit, func() error {
		if events, _ := rec.count(); events != n {
			return fmt.Errorf("%d of %d delivered", events, n)
		}
		return nil
	})
	claims, _ := cb.sizes()
	for _, k := range claims {
		if k > 2 {
			t.Fatalf("a claim took %d jobs with 2 slots: %v", k, claims)
		}
	}
}

// Handed-over jobs wait only behind an attempt under way: with none
// running a job starts at once, however long the batch window; while one
// runs, the jobs handed over meanwhile go together when it ends.
func TestHandoffWaitsOnlyBehindARunningAttempt(t *testing.T) {
	o, db, cb := handoffOutbox(t, Options{})
	sink := &gatedBatch{open: make(chan struct{})}
	d := NewDispatcher(o, DispatcherOptions{PollInterval: time.Hour, BatchWindow: time.Hour})
	d.Handle("a", sink, 8)
	run(t, d)
	waitIdle(t, o, "a")
	sizes := func() []int {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return slices.Clone(sink.sizes)
	}
	storeTx(t, o, db, []*event.Event{testEvent(0)}, "a")
	poll.Until(t, waitLimit, func() error {
		if got := sizes(); len(got) != 1 {
			return fmt.Errorf("batches %v: the first job is not under way", got)
		}
		return nil
	})
	for i := 1; i <= 3; i++ { // each its own commit and wake
		storeTx(t, o, db, []*event.Event{testEvent(i)}, "a")
	}
	close(sink.open)
	poll.Until(t, waitLimit, func() error {
		if got := countState(t, o, "a", StateDone); got != 4 {
			return fmt.Errorf("%d of 4 done", got)
		}
		return nil
	})
	if got := sizes(); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("batches %v, want [1 3]", got)
	}
	if got := claimedJobs(cb); got != 0 {
		t.Fatalf("%d jobs were claimed; every one should have been handed over", got)
	}
}
