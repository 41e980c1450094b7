// Package pipeline runs every stored event through the configured stages:
// inline stages (rules, filter plugins, builtins) that return actions, and
// sink stages that hand the event to the durable outbox.
//
// Ordering: events of one chat (key accountId + chatId; events without a
// chat are keyed by account) run one at a time in arrival order; different
// chats run in parallel on a fixed pool of workers. Intake is bounded: Submit
// blocks while QueueSize events are queued or running, so a burst pushes
// back on the session (which has not acknowledged WhatsApp yet) instead of
// growing memory.
//
// Durability: the engine keeps nothing that is not also stored. The event
// is stored before Submit, and the event is recorded as done only once its
// sink stages' jobs are in the outbox: with a Progress that implements
// ProcessedWithJobs (the embedded engine), the jobs of every sink stage are
// collected while the stages run and stored with the done mark in one
// transaction after the last stage; otherwise each sink stage's job is in
// the outbox before the next stage runs and Progress.MarkProcessed records
// the event as done after the last stage. An event whose daemon died
// mid-pipeline is found again by the recovery query (see Recover) and
// re-run; enqueueing is idempotent, tags are sets, and replies carry
// deterministic message ids, so a re-run repeats no effect.
//
// Effects: a stage's call either fails as a whole (no action happens; the
// stage's onError decides) or returns actions, which are carried out each
// on its own: a reply that cannot be sent does not cost the stage its tags
// or its route. Failed actions are counted, recorded on the message
// (FailureRecorder), and then onError decides about the event. A failure
// caused by the stop (session.ErrClosed, the drain deadline) is neither:
// the event stays unprocessed for recovery.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// Sender sends a reply or send action through an account's session.
type Sender interface {
	Send(ctx context.Context, accountID string, req *session.SendRequest) error
}

// Annotator persists tags and annotations a stage added to a stored event
// (the message document), so the API and later webhooks see them. It must
// be idempotent: tags are added as a set, annotations set by key.
type Annotator interface {
	Annotate(ctx context.Context, ev *event.Event, tags []string, annotations map[string]string) error
}

// Enqueuer feeds sink stages: the outbox. Enqueue must be idempotent per
// (event id, target).
type Enqueuer interface {
	Enqueue(ctx context.Context, ev *event.Event, targets ...string) error
}

// DeadLetterer records an event a stage gave up on (onError deadletter, or
// retry exhausted) where an operator can see and replay it; the outbox's
// Bury stores it as a dead-lettered job of target "pipeline:<stage>".
type DeadLetterer interface {
	Bury(ctx context.Context, ev *event.Event, target, reason string) error
}

// ReadMarker carries out markRead actions: the read receipt of the event's
// message, through its account's session.
type ReadMarker interface {
	MarkRead(ctx context.Context, ev *event.Event) error
}

// ActionFailure is one action a stage returned that could not be carried
// out. The stage's other actions were carried out regardless.
type ActionFailure struct {
	Stage  string
	Action ActionType
	// Index is the action's position in what the stage returned; with the
	// stage it identifies the action across re-runs of the event.
	Index int
	// Origin is who in the stage asked for it (Action.Origin), if known.
	Origin string
	Err    error
	// Attempts is how often it was tried (onError retry tries again).
	Attempts int
	At       time.Time
}

// FailureRecorder records failed actions on the event's stored message,
// where the API shows them. It must be idempotent per (event, stage,
// index): a re-run that fails again replaces the earlier record.
type FailureRecorder interface {
	RecordFailures(ctx context.Context, ev *event.Event, failures []ActionFailure) error
}

// Progress records that an event has been through the whole pipeline.
type Progress interface {
	MarkProcessed(ctx context.Context, eventID string) error
}

// EnqueueRequest is what one sink stage hands the outbox for an event: the
// event as the stage saw it (tags and annotations of the stages before it)
// and the stage's outbox targets.
type EnqueueRequest struct {
	Event   *event.Event
	Targets []string
}

// ProcessedWithJobs is a Progress that can store an event's outbox jobs and
// its done mark together, in one transaction (the embedded engine). When
// Progress implements it, sink stages do not call the Enqueuer: each adds
// its request to the event's list, and after the last stage (or a stage
// that stopped the event: drop, dead letter) the engine calls
// MarkProcessedWithJobs once with the whole list, possibly empty. Either
// every job and the mark are stored, or none of them: the event then stays
// unprocessed and recovery runs it again. Jobs must be idempotent per
// (event id, target), as with Enqueuer, and the jobs' dispatchers woken
// once they are stored.
type ProcessedWithJobs interface {
	Progress
	MarkProcessedWithJobs(ctx context.Context, eventID string, jobs []EnqueueRequest) error
}

// ProcessedWithMarks is a ProcessedWithJobs that also stores the tags and
// annotations the event's stages added, in the same transaction as the
// done mark and the jobs. The stages' tags then cost no write (and no
// commit to wait for) of their own; they are still in ev for the stages
// after, and an event stopped before its mark runs again whole, tags and
// all, after the next start.
type ProcessedWithMarks interface {
	ProcessedWithJobs
	MarkProcessedWithMarks(ctx context.Context, ev *event.Event, tags []string, annotations map[string]string, jobs []EnqueueRequest) error
	// CheckAnnotations refuses annotations the store cannot keep, so the
	// action that made them fails at once, as an immediate write would.
	CheckAnnotations(annotations map[string]string) error
}

// Errors callers decide by.
var (
	// ErrClosed: the engine is shutting down; the event stays stored and
	// unprocessed, and recovery runs it after the next start.
	ErrClosed = errors.New("pipeline is closed")
	// ErrStageTimeout is the error of a stage call that outlived its
	// timeout; it is counted as a timeout and follows onError.
	ErrStageTimeout = errors.New("pipeline stage timed out")
)

// Options configures an Engine. Sender, ReadMarker, Annotator, Failures,
// Enqueuer, DeadLetters and Progress may be nil when no stage needs them
// (tests); an action that needs a missing one fails, and a sink stage
// without an Enqueuer fails its stage (unless Progress implements
// ProcessedWithJobs, which then stores the jobs).
type Options struct {
	Registry   *Registry
	Stages     []StageConfig
	Sender     Sender
	ReadMarker ReadMarker
	Annotator  Annotator
	// Failures records the actions that failed on the event's message;
	// without it they are only logged and counted.
	Failures    FailureRecorder
	Enqueuer    Enqueuer
	DeadLetters DeadLetterer
	Progress    Progress
	// Workers is how many chats are processed at once; default
	// max(64, 4×GOMAXPROCS): stages mostly wait — on a plugin, a send, the
	// commit of their marks — and the more events wait on one commit, the
	// more each group commit carries (8 workers held ingest to ~1,400
	// events/s on 2 cores; 64 let it reach ~5,000).
	Workers int
	// QueueSize bounds events queued or running; Submit blocks beyond it.
	// Default 1024.
	QueueSize int
	// RetryAttempts and RetryBackoff shape onError: retry — tries in all,
	// and the first wait (doubling); defaults 3 and 100 ms.
	RetryAttempts int
	RetryBackoff  time.Duration
	Logger        *slog.Logger
	Metrics       *Metrics
	// AwaitAccount, when set, runs before each event on the chat's worker
	// and may wait (until ctx ends at the latest) for what the event's
	// account needs: the daemon waits for a session that is still starting,
	// so message events recovered before it opened can send their replies.
	AwaitAccount func(ctx context.Context, ev *event.Event)
	// Observe sees each event once it has been through every stage, with
	// the tags and annotations the stages gave it (the live event stream).
	// It runs on the chat's worker and must not block.
	Observe func(ev *event.Event)
	// Trace collects each event's trace (trace.go) and hands it to the
	// Progress with the done mark (TraceFrom), which stores it in the same
	// write.
	Trace bool
}

// Engine runs the pipeline.
type Engine struct {
	reg   *Registry
	opts  Options
	log   *slog.Logger
	plan  atomic.Pointer[plan]
	stats *statsBook

	mu      sync.Mutex
	chats   map[string]*chatQueue
	closed  bool
	closing chan struct{} // closed by Close: intake has stopped

	ready    chan string   // keys of chats with queued events and no worker
	slots    chan struct{} // one per event queued or running
	inflight sync.WaitGroup
	ctx      context.Context // cancelled when Close gives up draining
	cancel   context.CancelFunc
	workers  sync.WaitGroup
	active   atomic.Int64 // chats being processed right now
}

type chatQueue struct {
	events []*event.Event
}

// plan is one compiled stage list; events hold on to the plan they started
// with, which is what makes Reload safe mid-flight.
type plan struct {
	gen    uint64
	stages []*stage
}

type stage struct {
	cfg     StageConfig
	kind    Kind
	mode    Mode
	target  string
	handler InlineHandler
	source  event.Source
	// loopGuard: the stage can cause events (a rule, builtin or plugin
	// replies, sends or announces), so by default it does not see events
	// of source rule or plugin (see Matches). A "sink:" stage only
	// delivers: it sees every source unless its match names some.
	loopGuard bool
	stats     *stageStats
}

func (st *stage) matches(ev *event.Event) bool {
	if st.loopGuard {
		return Matches(&st.cfg.Match, ev)
	}
	return MatchesEverySource(&st.cfg.Match, ev)
}

// New compiles opts.Stages and starts the workers.
func New(opts Options) (*Engine, error) {
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	if opts.Workers <= 0 {
		opts.Workers = max(64, 4*runtime.GOMAXPROCS(0))
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.RetryAttempts <= 0 {
		opts.RetryAttempts = 3
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		reg:     opts.Registry,
		opts:    opts,
		log:     opts.Logger,
		stats:   newStatsBook(opts.Metrics),
		chats:   map[string]*chatQueue{},
		ready:   make(chan string, opts.QueueSize),
		slots:   make(chan struct{}, opts.QueueSize),
		closing: make(chan struct{}),
	}
	p, err := e.compile(opts.Stages, 1)
	if err != nil {
		return nil, err
	}
	e.plan.Store(p)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	for range opts.Workers {
		e.workers.Add(1)
		go e.work()
	}
	return e, nil
}

// Compile validates stages against the registry and builds their handlers
// without touching a running engine: what a config check or a reload
// dry-run calls. Errors name the stage.
func Compile(stages []StageConfig, reg *Registry) error {
	e := &Engine{reg: reg, stats: newStatsBook(nil)}
	_, err := e.compile(stages, 0)
	return err
}

func (e *Engine) compile(stages []StageConfig, gen uint64) (*plan, error) {
	if err := Validate(stages, e.reg); err != nil {
		return nil, err
	}
	p := &plan{gen: gen}
	for i, cfg := range stages {
		st := &stage{cfg: cfg, kind: cfg.Kind(), mode: cfg.EffectiveMode(), stats: e.stats.stage(cfg.Name)}
		st.loopGuard = st.kind != KindSink
		st.source = event.SourceRule
		if st.kind == KindPlugin {
			st.source = event.SourcePlugin
		}
		if st.mode == ModeSink {
			st.target = cfg.Target()
		} else {
			h, err := e.reg.build(cfg)
			if err != nil {
				return nil, &StageError{Index: i, Name: cfg.Name, Problem: err.Error()}
			}
			st.handler = h
		}
		p.stages = append(p.stages, st)
	}
	return p, nil
}

// Reload swaps in a new stage list. Events already being processed finish
// with the list they started with; every later event uses the new one. An
// invalid list changes nothing and returns errors naming the stages.
func (e *Engine) Reload(stages []StageConfig) error {
	old := e.plan.Load()
	p, err := e.compile(stages, old.gen+1)
	if err != nil {
		return err
	}
	// One reload at a time: the generation must follow the plan it replaces.
	if !e.plan.CompareAndSwap(old, p) {
		return fmt.Errorf("pipeline reload raced with another reload; try again")
	}
	e.log.Info("pipeline reloaded", slog.Uint64("generation", p.gen), slog.Int("stages", len(p.stages)))
	return nil
}

// Stages returns the current stage list.
func (e *Engine) Stages() []StageConfig {
	p := e.plan.Load()
	out := make([]StageConfig, len(p.stages))
	for i, st := range p.stages {
		out[i] = st.cfg
	}
	return out
}

// chatKey orders events: per chat, or per account for chat-less events.
func chatKey(ev *event.Event) string {
	chat := ev.ChatID
	if chat == "" && ev.Message != nil {
		chat = ev.Message.ChatID
	}
	return ev.AccountID + "\x00" + chat
}

// Submit queues a stored event. It blocks while the queue is full and
// returns ctx's error if ctx ends first, or ErrClosed after Close; the event
// then stays unprocessed for recovery. Events of one chat are processed in
// the order of their Submit calls.
func (e *Engine) Submit(ctx context.Context, ev *event.Event) error {
	if ev == nil || ev.ID == "" {
		return fmt.Errorf("submit: event without id")
	}
	// Once closing, refuse at once, even with the queue full: the caller
	// may be a stage of the drain itself (a reply's message.sent event).
	select {
	case <-e.closing:
		return ErrClosed
	default:
	}
	select {
	case e.slots <- struct{}{}:
	case <-e.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		<-e.slots
		return ErrClosed
	}
	e.inflight.Add(1)
	key := chatKey(ev)
	q := e.chats[key]
	if q == nil {
		q = &chatQueue{}
		e.chats[key] = q
		// Never blocks: ready holds at most one entry per chat with queued
		// events, and slots bounds those to QueueSize.
		e.ready <- key
	}
	q.events = append(q.events, ev)
	return nil
}

// work processes chats handed over on ready: one event, then the chat goes
// to the back of the line if it has more, so a busy chat cannot starve the
// others.
func (e *Engine) work() {
	defer e.workers.Done()
	for {
		var key string
		select {
		case key = <-e.ready:
		case <-e.ctx.Done():
			return
		}
		if e.ctx.Err() != nil {
			return // gave up draining: what is still queued stays for recovery
		}
		e.mu.Lock()
		q := e.chats[key]
		ev := q.events[0]
		q.events = q.events[1:]
		e.mu.Unlock()

		e.active.Add(1)
		if e.opts.AwaitAccount != nil {
			e.opts.AwaitAccount(e.ctx, ev)
		}
		e.process(e.ctx, ev)
		e.active.Add(-1)

		e.mu.Lock()
		if len(q.events) == 0 {
			delete(e.chats, key)
		} else {
			e.ready <- key
		}
		e.mu.Unlock()
		<-e.slots
		e.inflight.Done()
	}
}

// Close stops intake and waits until every queued event has been processed
// or ctx ends; then it stops the workers. Events not processed by then stay
// stored and unprocessed, for recovery.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.closing)
	}
	e.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		e.inflight.Wait()
		close(drained)
	}()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = fmt.Errorf("pipeline: %d events left for recovery: %w", len(e.slots), ctx.Err())
	}
	e.cancel()
	e.workers.Wait()
	return err
}

// process runs ev through the plan current when it starts.
func (e *Engine) process(ctx context.Context, in *event.Event) {
	p := e.plan.Load()
	ev := cloneEvent(in)
	log := e.log.With(slog.String("event_id", ev.ID))
	var jobs *sinkJobs // the sink stages' jobs, stored with the done mark
	if _, ok := e.opts.Progress.(ProcessedWithJobs); ok {
		jobs = &sinkJobs{}
		_, jobs.deferMarks = e.opts.Progress.(ProcessedWithMarks)
	}
	var routed []string // nil: every matching sink stage
	var tr *Trace
	if e.opts.Trace {
		tr = newTrace(ev)
	}
	deadAt := ""
	for _, st := range p.stages {
		if !st.matches(ev) {
			tr.skip(st, "match")
			continue
		}
		var only []string // a routed fan-out: its targets named by the route
		if st.mode == ModeSink && routed != nil && !slices.Contains(routed, st.cfg.Name) && !slices.Contains(routed, st.target) {
			if !e.reg.isFanout(st.target) {
				tr.skip(st, "route")
				continue
			}
			only = routed
		}
		st.stats.in.Add(1)
		start := time.Now()
		sctx, rec := tr.begin(ctx, st, start)
		out, err := e.runStage(sctx, st, ev, only, jobs)
		e.stats.observe(st, time.Since(start))
		rec.end(time.Since(start), out, err)
		if err != nil {
			if stopped(ctx, err) {
				// The stop, not the event, failed the stage: leave the
				// event unprocessed (no done mark, no dead letter, none of
				// the jobs collected so far), and recovery runs it again
				// after the next start.
				log.Debug("pipeline stopped mid-event; left for recovery", slog.String("stage", st.cfg.Name), slog.Any("error", err))
				return
			}
			log.Warn("pipeline stage failed", slog.String("stage", st.cfg.Name),
				slog.String("on_error", string(st.onError())), slog.Any("error", err))
			if st.onError() == OnErrorSkip {
				continue
			}
			deadAt = st.cfg.Name
			e.deadLetter(ctx, st, ev, err, log)
			break
		}
		// The stage's other actions happened; the failed ones are recorded
		// on the message and onError decides about the event: skip goes on
		// (with the stage's route and drop), retry (the failed actions
		// were tried again already) and deadletter stop it here.
		if len(out.failed) > 0 {
			e.recordFailures(ctx, st, ev, out.failed, log)
			if st.onError() != OnErrorSkip {
				deadAt = st.cfg.Name
				e.deadLetter(ctx, st, ev, failuresError(out.failed), log)
				break
			}
		}
		if out.route != nil {
			if routed == nil {
				routed = []string{} // an empty route routes nowhere
			}
			routed = append(routed, out.route...)
		}
		if out.drop {
			st.stats.dropped.Add(1)
			break
		}
	}
	if tr != nil {
		tr.finish(deadAt)
		ctx = context.WithValue(ctx, traceKey{}, tr)
	}
	if jobs != nil {
		e.markWithJobs(ctx, ev, jobs, log)
	} else if e.opts.Progress != nil {
		if err := e.opts.Progress.MarkProcessed(ctx, ev.ID); err != nil {
			// Harmless beyond a re-run after the next restart.
			log.Warn("marking event processed failed", slog.Any("error", err))
		}
	}
	if e.opts.Observe != nil {
		e.opts.Observe(ev)
	}
}

// sinkJobs are the outbox jobs an event's sink stages asked for, kept until
// they are stored with the event's done mark (ProcessedWithJobs).
type sinkJobs struct {
	reqs   []EnqueueRequest
	stages []*stage // the stage of each request, for its enqueued count

	// deferMarks: the tags and annotations stages add are stored with the
	// done mark (ProcessedWithMarks), not each on its own.
	deferMarks bool
	tags       []string
	ann        map[string]string
}

// mark keeps tags and annotations for the done mark's write.
func (j *sinkJobs) mark(tags []string, ann map[string]string) {
	j.tags = append(j.tags, tags...)
	for k, v := range ann {
		if j.ann == nil {
			j.ann = map[string]string{}
		}
		j.ann[k] = v
	}
}

func (j *sinkJobs) add(st *stage, ev *event.Event, targets []string) {
	// The stage's view: later stages may tag ev before the jobs are stored.
	j.reqs = append(j.reqs, EnqueueRequest{Event: cloneEvent(ev), Targets: targets})
	j.stages = append(j.stages, st)
}

// markWithJobs stores the collected jobs and the done mark in one call,
// tried as often as onError retry would (the stages' work is done; only
// the write is repeated). An engine that is stopping stores nothing: the
// event stays unprocessed, with none of its jobs, for recovery — exactly
// as if it had been stopped at a stage. A write that fails every try
// leaves it the same way (logged, and counted as an error of each sink
// stage whose jobs it held).
func (e *Engine) markWithJobs(ctx context.Context, ev *event.Event, jobs *sinkJobs, log *slog.Logger) {
	p := e.opts.Progress.(ProcessedWithJobs)
	wait := e.opts.RetryBackoff
	for try := 1; ; try++ {
		if ctx.Err() != nil {
			log.Debug("pipeline stopped before the event was marked; left for recovery", slog.Int("jobs", len(jobs.reqs)))
			return
		}
		var err error
		if pm, ok := p.(ProcessedWithMarks); ok && jobs.deferMarks {
			err = pm.MarkProcessedWithMarks(ctx, ev, jobs.tags, jobs.ann, jobs.reqs)
		} else {
			err = p.MarkProcessedWithJobs(ctx, ev.ID, jobs.reqs)
		}
		if err == nil {
			for _, st := range jobs.stages {
				st.stats.enqueued.Add(1)
			}
			return
		}
		if stopped(ctx, err) {
			log.Debug("pipeline stopped while the event was marked; left for recovery", slog.Any("error", err))
			return
		}
		if try >= e.opts.RetryAttempts {
			for _, st := range jobs.stages {
				st.stats.errors.Add(1)
			}
			log.Warn("storing the event's outbox jobs and done mark failed; left for recovery",
				slog.Int("jobs", len(jobs.reqs)), slog.Int("attempts", try), slog.Any("error", err))
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		wait *= 2
	}
}

// stopped reports whether a stage failed because the daemon is stopping —
// the engine gave up draining (ctx), or the sessions a reply needs closed
// under it — rather than because of the event: such a failure is not the
// stage's outcome and must not finish the event.
func stopped(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, session.ErrClosed) || errors.Is(err, ErrClosed)
}

func (st *stage) onError() OnError {
	if st.cfg.OnError == "" {
		return OnErrorSkip
	}
	return st.cfg.OnError
}

func (e *Engine) deadLetter(ctx context.Context, st *stage, ev *event.Event, cause error, log *slog.Logger) {
	st.stats.deadLetters.Add(1)
	if e.opts.DeadLetters == nil {
		log.Error("event dead-lettered at stage (no dead-letter store configured)", slog.String("stage", st.cfg.Name), slog.Any("error", cause))
		return
	}
	if err := e.opts.DeadLetters.Bury(ctx, ev, "pipeline:"+st.cfg.Name, cause.Error()); err != nil {
		log.Error("recording a dead letter failed", slog.String("stage", st.cfg.Name), slog.Any("error", err))
	}
}

// recordFailures counts, logs and stores the actions of st that failed.
func (e *Engine) recordFailures(ctx context.Context, st *stage, ev *event.Event, failed []ActionFailure, log *slog.Logger) {
	for _, f := range failed {
		st.stats.actionFailed(f.Action)
		log.Warn("pipeline action failed", slog.String("stage", st.cfg.Name), slog.String("action", string(f.Action)),
			slog.Int("index", f.Index), slog.String("origin", f.Origin), slog.Int("attempts", f.Attempts),
			slog.String("on_error", string(st.onError())), slog.Any("error", f.Err))
	}
	if e.opts.Failures == nil {
		return
	}
	if err := e.opts.Failures.RecordFailures(ctx, ev, failed); err != nil {
		log.Error("recording failed actions on the message failed", slog.String("stage", st.cfg.Name), slog.Any("error", err))
	}
}

// failuresError is what a dead letter of failed actions says.
func failuresError(failed []ActionFailure) error {
	errs := make([]error, len(failed))
	for i, f := range failed {
		errs[i] = fmt.Errorf("action %d (%s): %w", f.Index, f.Action, f.Err)
	}
	return errors.Join(errs...)
}

// stageOutcome is what a stage decided about the rest of the pipeline, and
// which of its actions could not be carried out.
type stageOutcome struct {
	drop   bool
	route  []string
	failed []ActionFailure
}

// runStage calls st (with its retry policy) and carries out its actions,
// each on its own: an action that fails does not undo or prevent the
// others. With onError retry, the failed actions alone are tried again
// (the stage is not called again: its decision stands). An error means the
// call failed (no action happened), or an action failed because the
// daemon is stopping.
func (e *Engine) runStage(ctx context.Context, st *stage, ev *event.Event, only []string, jobs *sinkJobs) (stageOutcome, error) {
	if st.mode == ModeSink {
		if jobs != nil {
			// Collected, stored with the done mark (markWithJobs).
			if targets := e.sinkTargets(st, ev, only); len(targets) > 0 {
				jobs.add(st, ev, targets)
				StageTraceFrom(ctx).targets(targets)
			}
			return stageOutcome{}, nil
		}
		return stageOutcome{}, e.retry(ctx, st, func(cctx context.Context) error { return e.enqueue(cctx, st, ev, only) })
	}
	var acts []Action
	err := e.retry(ctx, st, func(cctx context.Context) error {
		var err error
		acts, err = e.call(cctx, st, ev)
		return err
	})
	if err != nil {
		return stageOutcome{}, err
	}
	StageTraceFrom(ctx).actions(acts)
	pending := make([]int, len(acts))
	for i, a := range acts {
		st.stats.action(a.Type)
		pending[i] = i
	}
	var out stageOutcome
	wait := e.opts.RetryBackoff
	for try := 1; ; try++ {
		o, failed := e.apply(ctx, st, ev, acts, pending, try, jobs)
		if try == 1 {
			out.drop, out.route = o.drop, o.route
		}
		if len(failed) == 0 {
			return out, nil
		}
		for _, f := range failed {
			if stopped(ctx, f.Err) {
				return stageOutcome{}, f.Err
			}
		}
		if st.onError() != OnErrorRetry || try >= e.opts.RetryAttempts {
			out.failed = failed
			return out, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return stageOutcome{}, ctx.Err()
		}
		wait *= 2
		pending = pending[:0]
		for _, f := range failed {
			pending = append(pending, f.Index)
		}
	}
}

// retry runs f, each try within the stage's timeout, as often as the
// stage's onError allows, counting failed tries as the stage's errors.
func (e *Engine) retry(ctx context.Context, st *stage, f func(cctx context.Context) error) error {
	tries := 1
	if st.onError() == OnErrorRetry {
		tries = e.opts.RetryAttempts
	}
	wait := e.opts.RetryBackoff
	for try := 1; ; try++ {
		cctx, cancel := context.WithTimeout(ctx, stageTimeout(&st.cfg))
		err := f(cctx)
		cancel()
		if err == nil {
			return nil
		}
		st.stats.errors.Add(1)
		if errors.Is(err, ErrStageTimeout) {
			st.stats.timeouts.Add(1)
		}
		if try >= tries || stopped(ctx, err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		wait *= 2
	}
}

// sinkTargets are the outbox targets of a sink stage for ev: the stage's
// target, or a fan-out's targets. only, when set, restricts a fan-out sink
// stage to the targets a route named: by target ("webhook:billing") or by
// the part after the colon (the endpoint id, "billing").
func (e *Engine) sinkTargets(st *stage, ev *event.Event, only []string) []string {
	targets := e.reg.targets(st.target, ev)
	if only != nil {
		targets = slices.DeleteFunc(targets, func(t string) bool {
			_, id, _ := strings.Cut(t, ":")
			return !slices.Contains(only, t) && !slices.Contains(only, id)
		})
	}
	return targets
}

// enqueue puts ev into the outbox for a sink stage (sinkTargets).
func (e *Engine) enqueue(ctx context.Context, st *stage, ev *event.Event, only []string) error {
	if e.opts.Enqueuer == nil {
		return fmt.Errorf("sink stage %q: no outbox configured", st.cfg.Name)
	}
	targets := e.sinkTargets(st, ev, only)
	if len(targets) == 0 {
		return nil // a fan-out with no matching target
	}
	if err := e.opts.Enqueuer.Enqueue(ctx, ev, targets...); err != nil {
		return timeoutOr(ctx, fmt.Errorf("enqueue for %s: %w", st.target, err))
	}
	StageTraceFrom(ctx).targets(targets)
	st.stats.enqueued.Add(1)
	return nil
}

// call runs the handler on its own copy of ev and gives up at the deadline
// even if the handler does not: a stuck handler must not hold its chat.
func (e *Engine) call(ctx context.Context, st *stage, ev *event.Event) ([]Action, error) {
	type result struct {
		acts []Action
		err  error
	}
	done := make(chan result, 1)
	view := cloneEvent(ev)
	stageRunners.run(func() {
		defer func() {
			if r := recover(); r != nil {
				done <- result{err: fmt.Errorf("stage panicked: %v", r)}
			}
		}()
		acts, err := st.handler.Handle(ctx, view)
		done <- result{acts, err}
	})
	select {
	case r := <-done:
		if r.err != nil {
			return nil, timeoutOr(ctx, r.err)
		}
		return r.acts, nil
	case <-ctx.Done():
		return nil, timeoutOr(ctx, ctx.Err())
	}
}

// timeoutOr reports err as ErrStageTimeout when the stage's own deadline
// passed (not when the engine is shutting down).
func timeoutOr(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", ErrStageTimeout, err)
	}
	return err
}

// apply carries out the actions of acts at the indices idx, each on its
// own, and returns those that failed. Messages and receipts go out first,
// in order, within the stage's timeout; then the tags and annotations are
// persisted (within a timeout of their own, so a slow send cannot cost
// them) and change ev for the stages after this one. route and drop only
// shape the outcome and cannot fail.
func (e *Engine) apply(ctx context.Context, st *stage, ev *event.Event, acts []Action, idx []int, attempt int, jobs *sinkJobs) (stageOutcome, []ActionFailure) {
	var (
		out    stageOutcome
		failed []ActionFailure
	)
	fail := func(i int, err error) {
		failed = append(failed, ActionFailure{Stage: st.cfg.Name, Action: acts[i].Type, Index: i, Origin: acts[i].Origin,
			Err: err, Attempts: attempt, At: time.Now().UTC()})
	}
	cctx, cancel := context.WithTimeout(ctx, stageTimeout(&st.cfg))
	defer cancel()
	for _, i := range idx {
		if a := acts[i]; a.external() {
			if err := e.act(cctx, st, ev, i, a); err != nil {
				fail(i, timeoutOr(cctx, err))
			}
		}
	}

	work := cloneEvent(ev)
	var (
		newTags []string
		newAnn  map[string]string
		persist []int // the actions whose tags or annotations are new
	)
	for _, i := range idx {
		a := acts[i]
		switch a.Type {
		case ActionDrop:
			out.drop = true
		case ActionRoute:
			out.route = append(out.route, a.Sinks...)
			if out.route == nil {
				out.route = []string{} // route to nothing
			}
		case ActionTag:
			added := false
			for _, t := range a.Tags {
				if t != "" && !slices.Contains(work.Tags, t) {
					work.Tags = append(work.Tags, t)
					newTags = append(newTags, t)
					added = true
				}
			}
			if added {
				persist = append(persist, i)
			}
		case ActionAnnotate:
			added := false
			for k, v := range a.Annotations {
				if old, ok := work.Annotations[k]; ok && old == v {
					continue
				}
				if work.Annotations == nil {
					work.Annotations = map[string]string{}
				}
				if newAnn == nil {
					newAnn = map[string]string{}
				}
				work.Annotations[k] = v
				newAnn[k] = v
				added = true
			}
			if added {
				persist = append(persist, i)
			}
		}
	}
	if len(persist) > 0 && jobs != nil && jobs.deferMarks {
		if err := e.opts.Progress.(ProcessedWithMarks).CheckAnnotations(newAnn); err != nil {
			for _, i := range persist {
				fail(i, err)
			}
		} else {
			jobs.mark(newTags, newAnn)
			ev.Tags, ev.Annotations = work.Tags, work.Annotations
		}
	} else if len(persist) > 0 {
		pctx, cancel := context.WithTimeout(ctx, stageTimeout(&st.cfg))
		defer cancel()
		var err error
		if e.opts.Annotator == nil {
			err = fmt.Errorf("no annotator configured")
		} else if err = e.opts.Annotator.Annotate(pctx, work, newTags, newAnn); err != nil {
			err = timeoutOr(pctx, fmt.Errorf("persist: %w", err))
		}
		if err != nil {
			// Not stored, so not seen by later stages either.
			for _, i := range persist {
				fail(i, err)
			}
		} else {
			ev.Tags, ev.Annotations = work.Tags, work.Annotations
		}
	}
	slices.SortFunc(failed, func(a, b ActionFailure) int { return a.Index - b.Index })
	return out, failed
}

// act carries out one action on the world: a message or a read receipt.
func (e *Engine) act(ctx context.Context, st *stage, ev *event.Event, i int, a Action) error {
	switch a.Type {
	case ActionReply, ActionSend, ActionReact:
		if e.opts.Sender == nil {
			return fmt.Errorf("no sender configured")
		}
		account, req, err := sendRequest(ev, st.cfg.Name, i, a, st.source)
		if err != nil {
			return err
		}
		if err := e.opts.Sender.Send(ctx, account, req); err != nil {
			return fmt.Errorf("%s to %s: %w", a.Type, req.To, err)
		}
		return nil
	case ActionMarkRead:
		if e.opts.ReadMarker == nil {
			return fmt.Errorf("no read marker configured")
		}
		return e.opts.ReadMarker.MarkRead(ctx, ev)
	}
	return fmt.Errorf("unknown action %q", a.Type)
}

// cloneEvent copies what stages may change (tags, annotations); payloads
// are shared and never modified.
func cloneEvent(ev *event.Event) *event.Event {
	c := *ev
	c.Tags = slices.Clone(ev.Tags)
	if ev.Annotations != nil {
		c.Annotations = make(map[string]string, len(ev.Annotations))
		for k, v := range ev.Annotations {
			c.Annotations[k] = v
		}
	}
	return &c
}
