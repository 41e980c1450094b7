// Package outbox is the durable delivery queue between the pipeline and its
// sinks (webhook endpoints, the media archive, any async plugin). Each
// (event, target) pair is one job document in the outbox collection, so
// delivery survives a crash or kill -9: everything a worker needs is in
// MongoDB, and a restarted daemon picks up pending jobs and jobs whose lease
// expired.
//
// The embedded engine has no transactions and answers only _id equality
// from an index, which shapes every operation here:
//
//   - Job ids are deterministic ({eventId}|{target}); enqueueing twice hits the
//     same _id and is a no-op.
//   - A job is claimed with one findOneAndUpdate that matches "due" (pending
//     and runAt ≤ now, or processing with an expired lease), so several
//     daemons can share the queue without a lock.
//   - Every claim carries a fresh claimId; heartbeats and completions match on
//     it, so a worker whose lease was taken over cannot overwrite the new
//     owner's result.
//   - Done jobs are removed by an explicit Purge (no TTL indexes).
//
// # Two claiming strategies, one document model
//
// Shared (Options.Exclusive false; MongoDB, several daemons): a claim is one
// findOneAndUpdate matching {target, $or: [{state: pending, runAt ≤ now},
// {state: processing, leaseUntil ≤ now}]} sorted by runAt, and heartbeats and
// completions are updates matching {_id, claimId, state: processing}. MongoDB
// answers these from the target_state_run_at index and applies each
// atomically, so any daemon can deliver any job.
//
// Exclusive (the daemon runs the embedded engine and is its only user):
// FerretDB v1 answers any filter other than a lone {_id: string} by decoding
// documents one by one in insertion order, sorts in memory after a full
// scan, and applies findAndModify/update as read-then-write without a
// compare-and-set. Measured with 5,000 queued jobs: a sorted claim took
// 2.3 s, a conditional update of a late document as long, while a write by
// _id alone took about 1 ms — and conditional filters would not make two
// processes safe anyway. So in this mode the process keeps the schedule of
// its live jobs (id, target, due time, current claim) in memory, rebuilt by
// one scan in Open; every claim and completion checks the claim in memory
// and writes the job by _id under one mutex. The documents, their states and
// the crash semantics are the same as in shared mode.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/store"
)

// State is where a job is in its life.
type State string

const (
	// StatePending: waiting for runAt, then for a worker.
	StatePending State = "pending"
	// StateProcessing: claimed by a worker until leaseUntil.
	StateProcessing State = "processing"
	// StateDone: delivered.
	StateDone State = "done"
	// StateDeadLetter: failed permanently or ran out of its retry schedule;
	// only Retry or Replay moves it again.
	StateDeadLetter State = "deadletter"
)

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateProcessing, StateDone, StateDeadLetter:
		return true
	}
	return false
}

// Errors callers decide by.
var (
	// ErrNotFound: no job with that id. Answer 404.
	ErrNotFound = errors.New("outbox job not found")
	// ErrNoJob: nothing is due for the target right now; wait and claim again.
	ErrNoJob = errors.New("no outbox job due")
	// ErrLeaseLost: the job was claimed by another worker after this one's
	// lease expired (or was retried over REST). Drop the result: the new
	// owner's outcome stands.
	ErrLeaseLost = errors.New("outbox lease lost to another worker")
	// ErrNotRetryable: Retry or Replay asked for jobs that are still pending
	// or processing; they will be attempted anyway. Answer 409.
	ErrNotRetryable = errors.New("outbox job is not done or dead-lettered")
)

// Job is one document of the outbox collection: one event to deliver to one
// target. Field names are the BSON names and the REST rendering.
type Job struct {
	// ID is {eventId}|{target} (see JobID).
	ID        string `bson:"_id" json:"id"`
	EventID   string `bson:"eventId" json:"eventId"`
	Target    string `bson:"target" json:"target"`
	AccountID string `bson:"accountId" json:"accountId"`
	State     State  `bson:"state" json:"state"`
	// Attempts counts claims, including ones whose worker died mid-delivery,
	// so a job that crashes its daemon still runs out of schedule.
	Attempts int       `bson:"attempts" json:"attempts"`
	RunAt    time.Time `bson:"runAt" json:"runAt"`
	// FirstAttemptAt starts the retry schedule's deadline; Retry and Replay
	// clear it.
	FirstAttemptAt *time.Time `bson:"firstAttemptAt,omitempty" json:"firstAttemptAt,omitempty"`
	LeaseUntil     *time.Time `bson:"leaseUntil,omitempty" json:"leaseUntil,omitempty"`
	Owner          string     `bson:"owner,omitempty" json:"owner,omitempty"`
	ClaimID        string     `bson:"claimId,omitempty" json:"-"`
	LastError      string     `bson:"lastError,omitempty" json:"lastError,omitempty"`
	CreatedAt      time.Time  `bson:"createdAt" json:"createdAt"`
	UpdatedAt      time.Time  `bson:"updatedAt" json:"updatedAt"`
	// Log holds the most recent attempts, oldest first (bounded, see
	// Options.LogSize).
	Log []Attempt `bson:"log" json:"log"`
	// Event is the payload, stored whole so a job is self-contained: the
	// sink gets exactly what the pipeline saw, tags included, even if the
	// message document changes later.
	Event *event.Event `bson:"event" json:"event,omitempty"`
}

// Attempt is one entry of a job's attempt log.
type Attempt struct {
	At         time.Time `bson:"at" json:"at"`
	DurationMS int64     `bson:"durationMs" json:"durationMs"`
	Result     Outcome   `bson:"result" json:"result"`
	// Status is the response status (HTTP, or a sink's own code); 0 if none.
	Status   int    `bson:"status,omitempty" json:"status,omitempty"`
	Error    string `bson:"error,omitempty" json:"error,omitempty"`
	Response string `bson:"response,omitempty" json:"response,omitempty"`
	Owner    string `bson:"owner,omitempty" json:"owner,omitempty"`
}

// JobID is the deterministic id of the job delivering eventID to target.
// '|' cannot occur in event ids (they join segments with ':'), so the pair
// is unambiguous.
func JobID(eventID, target string) string { return eventID + "|" + target }

// Clock tells the time. Tests inject a fake one to run retry schedules
// without waiting.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Options configures an Outbox. Zero values mean the documented defaults.
type Options struct {
	// Collection name; default store.Outbox.
	Collection string
	// Schedule is the retry schedule; default DefaultSchedule().
	Schedule *Schedule
	// Lease is how long a claim holds a job before another worker may take
	// it over; default 30 s. Heartbeats extend it while a delivery runs.
	Lease time.Duration
	// LogSize bounds each job's attempt log; default 20.
	LogSize int
	// ResponseLimit truncates the response kept per attempt; default 2 KiB.
	ResponseLimit int
	Clock         Clock
	// Rand returns a float in [0,1) for jitter; default math/rand/v2.
	Rand   func() float64
	Logger *slog.Logger
	// Exclusive selects the in-memory schedule for a daemon that is the
	// only user of its store (the embedded engine); see the package doc.
	Exclusive bool
}

// Outbox reads and writes the outbox collection.
type Outbox struct {
	c        *mongo.Collection
	sched    Schedule
	lease    time.Duration
	logSize  int
	respSize int
	clock    Clock
	rand     func() float64
	log      *slog.Logger

	// mem is the exclusive mode's schedule; nil in shared mode.
	mem *memQueue

	// wake lets Enqueue in this process nudge its dispatchers, so a new job
	// is claimed at once instead of at the next poll.
	wakeMu sync.Mutex
	wake   map[string][]chan struct{}
}

// Open returns an Outbox on db. In exclusive mode it loads the schedule of
// every pending and processing job (one scan); a job that was processing
// when the previous process died becomes due when its lease expires.
// EnsureIndexes is separate (the store's EnsureSchema covers the default
// collection).
func Open(ctx context.Context, db *mongo.Database, opts Options) (*Outbox, error) {
	if opts.Collection == "" {
		opts.Collection = store.Outbox
	}
	sched := DefaultSchedule()
	if opts.Schedule != nil {
		sched = *opts.Schedule
	}
	if err := sched.Validate(); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.LogSize <= 0 {
		opts.LogSize = 20
	}
	if opts.ResponseLimit <= 0 {
		opts.ResponseLimit = 2048
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	o := &Outbox{
		c:        db.Collection(opts.Collection),
		sched:    sched,
		lease:    opts.Lease,
		logSize:  opts.LogSize,
		respSize: opts.ResponseLimit,
		clock:    opts.Clock,
		rand:     opts.Rand,
		log:      opts.Logger,
		wake:     map[string][]chan struct{}{},
	}
	if opts.Exclusive {
		o.mem = newMemQueue()
		if err := o.loadSchedule(ctx); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Lease is the claim duration.
func (o *Outbox) Lease() time.Duration { return o.lease }

// now is the clock's time at BSON precision (milliseconds), so a value read
// back compares equal to the one written — List cursors depend on it.
func (o *Outbox) now() time.Time { return o.clock.Now().UTC().Truncate(time.Millisecond) }

// EnsureIndexes creates the indexes the outbox's queries use on MongoDB
// (the embedded engine accepts and ignores them). One index per command:
// FerretDB v1.24 panics on several at once.
func (o *Outbox) EnsureIndexes(ctx context.Context) error {
	for _, ix := range []mongo.IndexModel{
		{Keys: bson.D{{Key: "state", Value: 1}, {Key: "runAt", Value: 1}}, Options: options.Index().SetName("state_run_at")},
		{Keys: bson.D{{Key: "target", Value: 1}, {Key: "state", Value: 1}, {Key: "runAt", Value: 1}}, Options: options.Index().SetName("target_state_run_at")},
		{Keys: bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("created_at_id")},
	} {
		if _, err := o.c.Indexes().CreateOne(ctx, ix); err != nil {
			return fmt.Errorf("create outbox index: %w", err)
		}
	}
	return nil
}

// Enqueue queues ev for each target, due now. It is idempotent: a job that
// already exists (same event, same target) is left as it is, whatever its
// state. It returns once every job is stored.
func (o *Outbox) Enqueue(ctx context.Context, ev *event.Event, targets ...string) error {
	return o.EnqueueBatch(ctx, []Item{{Event: ev, Targets: targets}})
}

// Item is one event and the targets it goes to.
type Item struct {
	Event   *event.Event
	Targets []string
}

// EnqueueBatch is Enqueue for many events in one unordered insertMany — an
// order of magnitude faster than single inserts on the embedded engine.
func (o *Outbox) EnqueueBatch(ctx context.Context, items []Item) error {
	now := o.now()
	var jobs []*Job
	seen := map[string]bool{}
	for _, it := range items {
		if it.Event == nil || it.Event.ID == "" {
			return fmt.Errorf("enqueue: event without id")
		}
		for _, t := range it.Targets {
			if t == "" {
				return fmt.Errorf("enqueue event %q: empty target", it.Event.ID)
			}
			id := JobID(it.Event.ID, t)
			if seen[id] {
				continue
			}
			seen[id] = true
			jobs = append(jobs, &Job{
				ID: id, EventID: it.Event.ID, Target: t, AccountID: it.Event.AccountID,
				State: StatePending, RunAt: now, CreatedAt: now, UpdatedAt: now,
				Log: []Attempt{}, Event: it.Event,
			})
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	docs := make([]any, len(jobs))
	for i, j := range jobs {
		docs[i] = j
	}
	_, err := o.c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	dup, ok := duplicates(err)
	if !ok {
		return fmt.Errorf("enqueue %d outbox jobs: %w", len(docs), err)
	}
	if o.mem != nil {
		o.mem.mu.Lock()
		defer o.mem.mu.Unlock()
		for i, j := range jobs {
			switch {
			case !dup[i]:
				o.mem.put(j.ID, j.Target, StatePending, j.RunAt, j.CreatedAt, "")
			case o.mem.jobs[j.ID] == nil:
				// Already stored but unknown here: an earlier insert whose
				// reply was lost. Read its state rather than guess.
				if err := o.track(ctx, j.ID); err != nil {
					return fmt.Errorf("enqueue: %w", err)
				}
			}
		}
	}
	woken := map[string]bool{}
	for _, j := range jobs {
		if !woken[j.Target] {
			woken[j.Target] = true
			o.notify(j.Target)
		}
	}
	return nil
}

// duplicates returns the indexes of the documents an unordered insert
// rejected as duplicate keys — jobs that were already queued — and ok=false
// if any other error occurred.
func duplicates(err error) (dup map[int]bool, ok bool) {
	if err == nil {
		return nil, true
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, false
	}
	dup = map[int]bool{}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return nil, false
		}
		dup[we.Index] = true
	}
	return dup, true
}

// Bury stores a job for ev and target directly as a dead letter, for work
// that failed outside a delivery (a pipeline stage with onError: deadletter).
// It shows up in List and can be retried once a sink handles target.
func (o *Outbox) Bury(ctx context.Context, ev *event.Event, target, reason string) error {
	now := o.now()
	j := &Job{
		ID: JobID(ev.ID, target), EventID: ev.ID, Target: target, AccountID: ev.AccountID,
		State: StateDeadLetter, RunAt: now, CreatedAt: now, UpdatedAt: now, LastError: reason,
		Log: []Attempt{{At: now, Result: OutcomeFail, Error: reason}}, Event: ev,
	}
	if _, err := o.c.InsertOne(ctx, j); err != nil && !store.IsDuplicateKey(err) {
		return fmt.Errorf("bury %s: %w", j.ID, err)
	}
	return nil
}

// subscribe returns a channel that receives a value (coalesced) whenever a
// job for target is enqueued or re-queued in this process.
func (o *Outbox) subscribe(target string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	o.wakeMu.Lock()
	o.wake[target] = append(o.wake[target], ch)
	o.wakeMu.Unlock()
	return ch, func() {
		o.wakeMu.Lock()
		defer o.wakeMu.Unlock()
		subs := o.wake[target]
		for i, c := range subs {
			if c == ch {
				o.wake[target] = append(subs[:i:i], subs[i+1:]...)
				break
			}
		}
	}
}

func (o *Outbox) notify(target string) {
	o.wakeMu.Lock()
	defer o.wakeMu.Unlock()
	for _, ch := range o.wake[target] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (o *Outbox) notifyAll() {
	o.wakeMu.Lock()
	targets := make([]string, 0, len(o.wake))
	for t := range o.wake {
		targets = append(targets, t)
	}
	o.wakeMu.Unlock()
	for _, t := range targets {
		o.notify(t)
	}
}
