// Package outbox is the durable delivery queue between the pipeline and its
// sinks (webhook endpoints, the media archive, any async plugin). Each
// (event, target) pair is one job, so delivery survives a crash or kill -9:
// everything a worker needs is stored, and a restarted daemon picks up
// pending jobs and jobs whose lease expired.
//
//   - Job ids are deterministic ({eventId}|{target}); enqueueing twice hits the
//     same id and is a no-op.
//   - A claim is one atomic step that takes jobs of one target that are due
//     (pending and runAt ≤ now, or processing with an expired lease), so
//     several workers — or daemons sharing MongoDB — need no lock.
//   - Every claim carries a fresh claimId; heartbeats and completions match on
//     it, so a worker whose lease was taken over cannot overwrite the new
//     owner's result.
//   - Done jobs are removed by an explicit Purge.
//   - A target handled in per-chat order (HandleOptions.PerChatOrder) has
//     its jobs stored with their chat (ChatKey) and enqueue order (Seq), and
//     its claims take only a job that no live job of its chat precedes: one
//     job per chat at a time, in order; a failing one holds back its chat.
//
// The Outbox holds the logic (schedules, attempt logs, outcomes); a Backend
// stores it. Two exist:
//
// SQLite (OpenSQLite; the embedded engine): the table outbox_jobs, one row
// per job with a column for every filter and sort. A claim is one
// UPDATE … WHERE id IN (SELECT … ORDER BY due LIMIT n) RETURNING through the
// group-committing writer, answered from the partial index of live jobs by
// (target, due), where due is runAt while pending and leaseUntil while
// processing; completions are UPDATEs guarded by claim_id.
//
// MongoDB (Open): the outbox collection. Shared mode (Options.Exclusive
// false; several daemons, and the only mode the daemon uses) claims each
// job with one findOneAndUpdate matching {target, $or: [{state: pending,
// runAt ≤ now}, {state: processing, leaseUntil ≤ now}]} sorted by runAt,
// until the claim has its jobs or none is due, and guards heartbeats and
// completions with {_id, claimId, state: processing}. Open does no I/O in
// this mode: EnsureIndexes, which the daemon runs once the server is
// reachable, creates the indexes these queries use (target_state_run_at
// and the listing ones, mongoIndexes in mongo.go).
//
// Exclusive mode exists only for FerretDB v1, which answers any filter other
// than a lone {_id: string} by decoding documents one by one and applies
// findAndModify/update as read-then-write without a compare-and-set
// (measured with 5,000 queued jobs: a sorted claim took 2.3 s, a write by
// _id about 1 ms). There the process keeps the schedule of its live jobs in
// memory (memqueue.go), rebuilt by one scan in Open, checks every claim and
// completion against it and writes jobs by _id under one mutex. It is only
// correct while one process uses the collection. The daemon never selects
// it (its embedded engine is SQLite); only tests, of this package and of
// webhooks, do. The documents, their states and the crash semantics are
// the same in every mode.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/sqlite"
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
	// ChatKey is {accountId}\x00{chatId} of the job's event (ChatKey), and
	// Seq its place in the order its process enqueued jobs: a target
	// handled with per-chat order delivers a chat's jobs one at a time by
	// (Seq, ID). Only jobs of such targets get them (the others skip the
	// index that orders them); jobs enqueued before their target was
	// ordered have neither and are delivered without order.
	ChatKey string `bson:"chatKey,omitempty" json:"-"`
	Seq     int64  `bson:"seq,omitempty" json:"-"`
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

func (j *Job) order() jobOrder { return jobOrder{chat: j.ChatKey, seq: j.Seq} }

// ChatKey is the key per-chat order goes by: the event's account and chat
// (its message's chat when the event names none), so events without a
// chat are ordered per account. The pipeline keys its chats the same way.
func ChatKey(ev *event.Event) string {
	chat := ev.ChatID
	if chat == "" && ev.Message != nil {
		chat = ev.Message.ChatID
	}
	return ev.AccountID + "\x00" + chat
}

// Clock tells the time. Tests inject a fake one to run retry schedules
// without waiting.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Options configures an Outbox. Zero values mean the documented defaults.
type Options struct {
	// Collection name on MongoDB; default store.Outbox.
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
	// Payload, when set, seals the events of the jobs at rest.
	Payload PayloadSealer
	// Exclusive (MongoDB only) selects the in-memory schedule, for a
	// process that is the only user of a FerretDB v1 collection; the
	// daemon never sets it. See the package doc.
	Exclusive bool
}

// Outbox is the delivery queue on one Backend.
type Outbox struct {
	b        Backend
	sql      *sqliteBackend // b on SQLite, for EnqueueTx; nil on MongoDB
	sched    Schedule
	lease    time.Duration
	logSize  int
	respSize int
	clock    Clock
	rand     func() float64
	log      *slog.Logger
	payload  PayloadSealer

	// wake lets Enqueue in this process nudge its dispatchers, so a new job
	// is claimed at once instead of at the next poll.
	wakeMu sync.Mutex
	wake   map[string][]chan struct{}

	// takers are the dispatcher loops of this process that take a
	// target's new jobs straight from PrepareTx (handoff.go).
	takerMu sync.Mutex
	takers  map[string]taker
	// hints counts, per target, the jobs made pending in this process
	// since its loop last claimed: how many its next claim needs slots for.
	hints map[string]int

	// seq is the last Job.Seq given out (nextSeq); ordered holds the
	// targets handled in per-chat order (Dispatcher.HandleWith), whose jobs
	// get a ChatKey and a Seq.
	seqMu   sync.Mutex
	seq     int64
	ordered map[string]bool
}

// setOrdered records whether target's jobs are enqueued for per-chat
// order from now on.
func (o *Outbox) setOrdered(target string, on bool) {
	o.seqMu.Lock()
	defer o.seqMu.Unlock()
	if on {
		o.ordered[target] = true
	} else {
		delete(o.ordered, target)
	}
}

// order returns the ChatKey and Seq of a new job of target for ev: none
// unless target is in per-chat order.
func (o *Outbox) order(target string, ev *event.Event) (string, int64) {
	o.seqMu.Lock()
	defer o.seqMu.Unlock()
	if !o.ordered[target] {
		return "", 0
	}
	o.seq = max(o.clock.Now().UnixNano(), o.seq+1)
	return ChatKey(ev), o.seq
}

// A Seq is the clock in nanoseconds, made strictly increasing in this
// process, so jobs enqueued in one millisecond (one group commit) keep the
// order they were enqueued in.

// Open returns an Outbox on MongoDB database db; call EnsureIndexes once
// the server is reachable. Shared mode does no I/O here. Exclusive mode
// loads the schedule of every pending and processing job (one scan); a job
// that was processing when the previous process died becomes due when its
// lease expires.
func Open(ctx context.Context, db *mongo.Database, opts Options) (*Outbox, error) {
	if opts.Collection == "" {
		opts.Collection = store.Outbox
	}
	b, err := openMongo(ctx, db.Collection(opts.Collection), opts.Exclusive)
	if err != nil {
		return nil, err
	}
	return New(b, opts)
}

// OpenSQLite returns an Outbox on the embedded engine's database, which
// must have been opened with SQLiteSchema.
func OpenSQLite(db *sqlite.DB, opts Options) (*Outbox, error) {
	b := &sqliteBackend{db: db}
	o, err := New(b, opts)
	if err != nil {
		return nil, err
	}
	o.sql = b
	return o, nil
}

// New returns an Outbox on b. Open and OpenSQLite are the usual ways in.
func New(b Backend, opts Options) (*Outbox, error) {
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
	if opts.Payload != nil {
		b = &openingBackend{Backend: b, p: opts.Payload}
	}
	return &Outbox{
		payload:  opts.Payload,
		b:        b,
		sched:    sched,
		lease:    opts.Lease,
		logSize:  opts.LogSize,
		respSize: opts.ResponseLimit,
		clock:    opts.Clock,
		rand:     opts.Rand,
		log:      opts.Logger,
		wake:     map[string][]chan struct{}{},
		takers:   map[string]taker{},
		hints:    map[string]int{},
		ordered:  map[string]bool{},
	}, nil
}

// EnsureIndexes creates the indexes the outbox's queries use on MongoDB
// (target_state_run_at for claims, one per List filter). It is idempotent,
// so a daemon runs it at every start; on SQLite the migrations made them
// and it does nothing.
func (o *Outbox) EnsureIndexes(ctx context.Context) error {
	if ix, ok := o.b.(interface{ ensureIndexes(context.Context) error }); ok {
		return ix.ensureIndexes(ctx)
	}
	return nil
}

// Lease is the claim duration.
func (o *Outbox) Lease() time.Duration { return o.lease }

// now is the clock's time at storage precision (milliseconds), so a value
// read back compares equal to the one written — List cursors depend on it.
func (o *Outbox) now() time.Time { return o.clock.Now().UTC().Truncate(time.Millisecond) }

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

// EnqueueBatch is Enqueue for many events in one write: one transaction on
// SQLite, one unordered insertMany on MongoDB.
func (o *Outbox) EnqueueBatch(ctx context.Context, items []Item) error {
	jobs, err := o.jobs(items)
	if err != nil || len(jobs) == 0 {
		return err
	}
	if err := o.b.Insert(ctx, jobs); err != nil {
		return fmt.Errorf("enqueue %d outbox jobs: %w", len(jobs), err)
	}
	o.notifyJobs(jobs)
	return nil
}

// jobs builds the pending jobs of items, each (event, target) once.
func (o *Outbox) jobs(items []Item) ([]*Job, error) {
	jobs, _, err := o.jobsOf(items)
	return jobs, err
}

// jobsOf is jobs, with each job's event as given (not sealed) beside it.
func (o *Outbox) jobsOf(items []Item) ([]*Job, []*event.Event, error) {
	now := o.now()
	var jobs []*Job
	var plain []*event.Event
	seen := map[string]bool{}
	for _, it := range items {
		if it.Event == nil || it.Event.ID == "" {
			return nil, nil, fmt.Errorf("enqueue: event without id")
		}
		stored, err := o.sealPayload(it.Event)
		if err != nil {
			return nil, nil, err
		}
		for _, t := range it.Targets {
			if t == "" {
				return nil, nil, fmt.Errorf("enqueue event %q: empty target", it.Event.ID)
			}
			id := JobID(it.Event.ID, t)
			if seen[id] {
				continue
			}
			seen[id] = true
			chat, seq := o.order(t, it.Event)
			jobs = append(jobs, &Job{
				ID: id, EventID: it.Event.ID, Target: t, AccountID: it.Event.AccountID,
				ChatKey: chat, Seq: seq, State: StatePending, RunAt: now, CreatedAt: now, UpdatedAt: now,
				Log: []Attempt{}, Event: stored,
			})
			plain = append(plain, it.Event)
		}
	}
	return jobs, plain, nil
}

// notifyJobs wakes the dispatchers of the targets of jobs just stored.
func (o *Outbox) notifyJobs(jobs []*Job) {
	if len(jobs) == 0 {
		return
	}
	count := map[string]int{}
	for _, j := range jobs {
		count[j.Target]++
	}
	o.wakeMu.Lock()
	for t, n := range count {
		o.hints[t] += n
	}
	o.wakeMu.Unlock()
	for t := range count {
		o.notify(t)
	}
}

// takeHint returns how many jobs of target were made pending in this
// process since the last takeHint, and starts counting again.
func (o *Outbox) takeHint(target string) int {
	o.wakeMu.Lock()
	defer o.wakeMu.Unlock()
	n := o.hints[target]
	delete(o.hints, target)
	return n
}

// Bury stores a job for ev and target directly as a dead letter, for work
// that failed outside a delivery (a pipeline stage with onError: deadletter).
// It shows up in List and can be retried once a sink handles target. A job
// already stored for the pair is left as it is.
func (o *Outbox) Bury(ctx context.Context, ev *event.Event, target, reason string) error {
	now := o.now()
	stored, err := o.sealPayload(ev)
	if err != nil {
		return err
	}
	chat, seq := o.order(target, ev)
	j := &Job{
		ID: JobID(ev.ID, target), EventID: ev.ID, Target: target, AccountID: ev.AccountID,
		ChatKey: chat, Seq: seq, State: StateDeadLetter, RunAt: now, CreatedAt: now, UpdatedAt: now, LastError: reason,
		Log: []Attempt{{At: now, Result: OutcomeFail, Error: reason}}, Event: stored,
	}
	if err := o.b.Insert(ctx, []*Job{j}); err != nil {
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

// notifyAll wakes every target for a full claim: jobs were made pending
// in numbers nobody counted (RequeueMatching).
func (o *Outbox) notifyAll() {
	o.wakeMu.Lock()
	targets := make([]string, 0, len(o.wake))
	for t := range o.wake {
		targets = append(targets, t)
		o.hints[t] += maxClaim
	}
	o.wakeMu.Unlock()
	for _, t := range targets {
		o.notify(t)
	}
}
