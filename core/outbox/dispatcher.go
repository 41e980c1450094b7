package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Sink delivers jobs of one target (a webhook endpoint, the media archive,
// an async plugin). Deliver must honour ctx (the attempt's deadline, a lost
// lease, shutdown) and report the outcome; it may be called concurrently up
// to the target's concurrency. The job is a copy the sink may keep.
// Delivery is at least once: a receiver recognises repeats by Job.EventID
// (or Job.ID, stable across attempts).
type Sink interface {
	Deliver(ctx context.Context, job *Job) Result
}

// BatchSink is a Sink that takes several jobs of its target in one call (a
// plugin speaking protocol version 2: one gRPC call for many deliveries).
// The dispatcher hands it the jobs of each claim in batches of up to
// DispatcherOptions.MaxBatch instead of one attempt per job. DeliverBatch
// answers one Result per job, in order; each is recorded for its job
// alone, so a batch that partly fails retries only the jobs that failed.
// ctx is the whole batch's (one attempt timeout for all of it).
type BatchSink interface {
	Sink
	DeliverBatch(ctx context.Context, jobs []*Job) []Result
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, job *Job) Result

// Deliver calls f.
func (f SinkFunc) Deliver(ctx context.Context, job *Job) Result { return f(ctx, job) }

// DispatcherOptions configures a Dispatcher. Zero values mean the defaults.
type DispatcherOptions struct {
	// Owner names this daemon in claims and attempt logs; default
	// hostname:pid:random.
	Owner string
	// PollInterval is how often an idle target looks for due jobs (retries
	// coming due, jobs enqueued by other daemons); default 1 s. Jobs
	// enqueued in this process wake their target at once.
	PollInterval time.Duration
	// Heartbeat is how often a running delivery extends its lease; default
	// half the outbox lease.
	Heartbeat time.Duration
	// Timeout bounds one attempt (for a BatchSink: one batch); default 30 s.
	Timeout time.Duration
	// MaxBatch bounds the jobs of one DeliverBatch call to a BatchSink;
	// default 64. A batch never holds more jobs than the target has slots.
	MaxBatch int
	// BatchWindow is how long a target whose last claim emptied its queue
	// waits before claiming again, so jobs arriving one by one under load
	// are claimed (and completed) together instead of a write each;
	// default 5 ms, negative for none. A target with a backlog claims
	// again at once.
	BatchWindow time.Duration
	// Retention is how long done jobs stay listable before Purge removes
	// them; default 7 days. Purging runs hourly.
	Retention time.Duration
	Logger    *slog.Logger
	Metrics   *Metrics
}

// Dispatcher runs the deliveries of this daemon. Per-target isolation: each
// target has its own claim loop with its own concurrency limit (a
// semaphore of N in-flight deliveries), so a slow or hung target uses up
// only its own slots and never delays another target's jobs. Within a
// target, jobs are claimed in due order.
type Dispatcher struct {
	o    *Outbox
	opts DispatcherOptions
	log  *slog.Logger

	mu      sync.Mutex
	targets map[string]*target
	runCtx  context.Context // set while Run runs
	wg      sync.WaitGroup
}

type target struct {
	name        string
	sink        Sink
	concurrency int
	ordered     bool
	stop        context.CancelFunc
}

// HandleOptions is how a target is handled (HandleWith).
type HandleOptions struct {
	// Concurrency bounds the attempts in flight; ≤ 0 means 1.
	Concurrency int
	// PerChatOrder delivers the jobs of one chat (Job.ChatKey) one at a
	// time, in the order they were enqueued — those enqueued in this
	// process since (every daemon handles the same targets alike): a job is claimed only once
	// every earlier job of its chat is delivered or dead-lettered, so a
	// failing job holds back the later jobs of its chat (and only of its
	// chat) through its retries. Other chats use the other slots, and a
	// BatchSink's batch never holds two jobs of one chat.
	PerChatOrder bool
}

// NewDispatcher returns a dispatcher for o's jobs; register targets with
// Handle, then Run.
func NewDispatcher(o *Outbox, opts DispatcherOptions) *Dispatcher {
	if opts.Owner == "" {
		host, _ := os.Hostname()
		opts.Owner = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = o.lease / 2
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 64
	}
	if opts.BatchWindow == 0 {
		opts.BatchWindow = 5 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{o: o, opts: opts, log: opts.Logger, targets: map[string]*target{}}
}

// Owner is the name this dispatcher claims jobs under.
func (d *Dispatcher) Owner() string { return d.opts.Owner }

// Handle delivers target's jobs through s with up to concurrency attempts
// in flight (≤ 0 means 1). It may be called before or during Run;
// handling a target again replaces its sink once in-flight attempts end.
func (d *Dispatcher) Handle(name string, s Sink, concurrency int) {
	d.HandleWith(name, s, HandleOptions{Concurrency: concurrency})
}

// HandleWith is Handle with the target's options.
func (d *Dispatcher) HandleWith(name string, s Sink, opts HandleOptions) {
	t := &target{name: name, sink: s, concurrency: max(opts.Concurrency, 1), ordered: opts.PerChatOrder}
	d.o.setOrdered(name, opts.PerChatOrder)
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.targets[name]; old != nil && old.stop != nil {
		old.stop()
	}
	d.targets[name] = t
	if d.runCtx != nil {
		d.start(t)
	}
}

// Remove stops claiming target's jobs; they stay queued.
func (d *Dispatcher) Remove(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.targets[name]; t != nil {
		if t.stop != nil {
			t.stop()
		}
		delete(d.targets, name)
	}
}

// start runs t's claim loop. Caller holds mu.
func (d *Dispatcher) start(t *target) {
	ctx, cancel := context.WithCancel(d.runCtx)
	t.stop = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.loop(ctx, t)
	}()
}

// Run claims and delivers until ctx ends. Attempts in flight then have
// their context cancelled and their jobs are handed back as due now, so
// another daemon (or the next start) takes them at once; Run returns when
// they have.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.runCtx != nil {
		d.mu.Unlock()
		return errors.New("outbox dispatcher is already running")
	}
	d.runCtx = ctx
	for _, t := range d.targets {
		d.start(t)
	}
	d.mu.Unlock()
	d.log.Info("outbox dispatcher started", slog.String("owner", d.opts.Owner))

	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-purge.C:
			n, err := d.o.Purge(ctx, d.o.now().Add(-d.opts.Retention))
			if err != nil && ctx.Err() == nil {
				d.log.Warn("purging delivered outbox jobs failed", slog.Any("error", err))
			} else if n > 0 {
				d.log.Debug("purged delivered outbox jobs", slog.Int64("count", n))
			}
		}
	}
	d.wg.Wait()
	d.mu.Lock()
	d.runCtx = nil
	d.mu.Unlock()
	d.log.Info("outbox dispatcher stopped")
	return nil
}

// maxClaim caps the jobs one claim takes: a target with many free slots
// still claims in bounded steps, so its leases start close to its attempts.
const maxClaim = 256

// loop claims t's due jobs in batches of up to its free slots (one
// statement per batch, not one per job), starts an attempt per job, and
// hands their outcomes to t's completer, which records whatever has
// finished in one write. One heartbeat per target extends the leases of
// the attempts still running.
func (d *Dispatcher) loop(ctx context.Context, t *target) {
	wake, unsubscribe := d.o.subscribe(t.name)
	defer unsubscribe()
	idle := time.NewTimer(d.opts.PollInterval)
	idle.Stop()
	defer idle.Stop()
	log := d.log.With(slog.String("target", t.name))
	slots := newSlotPool(t.concurrency)
	flight := newInflight()
	done := make(chan attemptDone, t.concurrency)
	var attempts sync.WaitGroup
	completerDone := make(chan struct{})
	go func() {
		defer close(completerDone)
		d.complete(ctx, t, done, log)
	}()
	hbDone := make(chan struct{})
	hbCtx, hbStop := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(hbDone)
		d.heartbeat(hbCtx, flight, log)
	}()
	// running counts the attempts (a batch's: one) under way; finished
	// tells the handoff below that one ended.
	var running atomic.Int64
	finished := make(chan struct{}, 1)
	ended := func() {
		running.Add(-1)
		select {
		case finished <- struct{}{}:
		default:
		}
	}
	// run starts the attempts of jobs this loop holds, each slot already
	// taken.
	run := func(jobs []*Job) {
		if bs, ok := t.sink.(BatchSink); ok {
			for batch := range slices.Chunk(jobs, d.opts.MaxBatch) {
				attempts.Add(1)
				running.Add(1)
				go func() {
					defer attempts.Done()
					defer ended()
					defer slots.release(len(batch))
					for _, f := range d.attemptBatch(ctx, t, bs, batch, flight) {
						done <- f
					}
				}()
			}
			return
		}
		for _, job := range jobs {
			attempts.Add(1)
			running.Add(1)
			go func() {
				defer attempts.Done()
				defer ended()
				defer slots.release(1)
				done <- d.attempt(ctx, t, job, flight)
			}()
		}
	}
	// New jobs this process stores while a slot is free come already
	// claimed for this loop (handoff.go). While an attempt is under way,
	// those that arrive until it ends (at most the window) go together, as
	// one batch and one completion; with none under way they start at
	// once, so a quiet target adds no wait to a job's latency. Not for a target in
	// per-chat order: a new job may have to wait for an earlier one of its
	// chat, which only a claim checks.
	tk := newLoopTaker(d.opts.Owner, slots)
	unregister := func() {}
	if !t.ordered {
		unregister = d.o.registerTaker(t.name, tk)
	}
	handDone := make(chan struct{})
	go func() {
		defer close(handDone)
		window := time.NewTimer(0)
		<-window.C
		defer window.Stop()
		for {
			select {
			case <-tk.wake:
			case <-ctx.Done():
				return
			}
			// Only an attempt that ends from now on may cut the window
			// short, not one that ended while this loop was idle.
			select {
			case <-finished:
			default:
			}
			if d.opts.BatchWindow > 0 && running.Load() > 0 {
				window.Reset(d.opts.BatchWindow)
				select {
				case <-window.C:
				case <-finished:
					window.Stop()
				case <-ctx.Done():
					return
				}
			}
			if jobs := tk.drain(); len(jobs) > 0 {
				run(jobs)
			}
		}
	}()
	defer func() {
		<-handDone
		unregister()
		if left := tk.close(); len(left) > 0 {
			d.o.handBack(left, "not started: dispatcher stopping")
		}
		attempts.Wait() // every attempt has handed its outcome over
		close(done)
		<-completerDone
		hbStop()
		<-hbDone
	}()
	window := time.NewTimer(0)
	<-window.C
	defer window.Stop()
	drained := false // the last claim took every due job
	// full: claim as many jobs as slots are free — at the start, at each
	// poll, and after a claim that filled them. Otherwise (woken by jobs
	// this process made pending) claim only as many as were made pending
	// and not claimed yet (owed): a claim holds its slots until it
	// returns, and jobs stored meanwhile find no free slot to be handed
	// over with.
	full, owed := true, 0
	for {
		if drained && d.opts.BatchWindow > 0 {
			window.Reset(d.opts.BatchWindow)
			select {
			case <-window.C:
			case <-ctx.Done():
				return
			}
		}
		owed += d.o.takeHint(t.name)
		want := maxClaim
		if !full {
			if owed == 0 {
				goto wait // nothing was made pending since the last claim
			}
			want = min(want, owed)
		}
		{
			n, ok := slots.takeFree(ctx, want)
			if !ok {
				return
			}
			jobs, err := d.o.claimBatch(ctx, t.name, d.opts.Owner, n, t.ordered)
			switch {
			case err == nil || errors.Is(err, ErrNoJob):
				drained = len(jobs) < n
				if drained {
					owed = 0 // every due job is claimed
				} else {
					owed = max(owed-len(jobs), 0)
				}
				full = !drained && want == maxClaim
			default:
				jobs, drained = nil, true
				if ctx.Err() == nil {
					log.Warn("claiming outbox jobs failed", slog.Any("error", err))
				}
			}
			slots.release(n - len(jobs))
			if len(jobs) > 0 {
				run(jobs)
				continue
			}
		}
	wait:
		if ctx.Err() != nil {
			return
		}
		idle.Reset(d.opts.PollInterval)
		select {
		case <-wake:
			idle.Stop() // Go ≥1.23 timers: no stale tick to drain
			full = false
		case <-idle.C:
			full = true
		case <-ctx.Done():
			return
		}
	}
}

// slotPool counts a target's free delivery slots. A finished batch gives
// all its slots back at once, so the next claim takes them all: with slots
// freed one by one, the loop woke at the first and claimed a job or two at
// a time, a write each.
type slotPool struct {
	mu   sync.Mutex
	free int
	wake chan struct{} // a release since the last wait
}

func newSlotPool(n int) *slotPool { return &slotPool{free: n, wake: make(chan struct{}, 1)} }

// takeFree waits for a free slot and takes every free one, at most max;
// false when ctx ended first.
func (p *slotPool) takeFree(ctx context.Context, max int) (int, bool) {
	for {
		p.mu.Lock()
		if n := min(p.free, max); n > 0 {
			p.free -= n
			p.mu.Unlock()
			return n, true
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-ctx.Done():
			return 0, false
		}
	}
}

// tryTake takes up to n free slots without waiting and returns how many.
func (p *slotPool) tryTake(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n = min(p.free, n)
	p.free -= n
	return n
}

// release gives n slots back.
func (p *slotPool) release(n int) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	p.free += n
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// attemptDone is one attempt's outcome on its way to the completer.
type attemptDone struct {
	job  *Job
	res  Result
	took time.Duration
	// lost: the heartbeat found the lease taken over; the new owner's
	// attempt stands and this one is dropped.
	lost bool
}

// attempt runs one delivery of job under the attempt timeout, registered
// with the target's heartbeat while it runs.
func (d *Dispatcher) attempt(ctx context.Context, t *target, job *Job, flight *inflight) attemptDone {
	actx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	lost := flight.add(job, cancel)
	view := *job
	view.Log = append([]Attempt(nil), job.Log...)
	start := time.Now()
	res := safeDeliver(actx, t.sink, &view)
	took := time.Since(start)
	wasLost := flight.remove(job, lost)
	d.opts.Metrics.observe(t.name, res.Outcome, took)
	return attemptDone{job: job, res: res, took: took, lost: wasLost}
}

// attemptBatch runs one DeliverBatch of jobs under the attempt timeout,
// each job registered with the target's heartbeat while it runs. A job
// whose lease is lost has its outcome dropped; the batch's call is
// cancelled only once every job in it has lost its lease.
func (d *Dispatcher) attemptBatch(ctx context.Context, t *target, s BatchSink, jobs []*Job, flight *inflight) []attemptDone {
	actx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	var lostN atomic.Int32
	regs := make([]*running, len(jobs))
	views := make([]*Job, len(jobs))
	for i, job := range jobs {
		var once sync.Once
		regs[i] = flight.add(job, func() {
			once.Do(func() {
				if int(lostN.Add(1)) == len(jobs) {
					cancel()
				}
			})
		})
		view := *job
		view.Log = append([]Attempt(nil), job.Log...)
		views[i] = &view
	}
	start := time.Now()
	res := safeDeliverBatch(actx, s, views)
	took := time.Since(start)
	out := make([]attemptDone, len(jobs))
	for i, job := range jobs {
		wasLost := flight.remove(job, regs[i])
		d.opts.Metrics.observe(t.name, res[i].Outcome, took)
		out[i] = attemptDone{job: job, res: res[i], took: took, lost: wasLost}
	}
	return out
}

// complete records finished attempts: everything that has finished by the
// time it gets to write goes in one CompleteBatch (one transaction on
// SQLite, one round trip per job on MongoDB as before). Attempts cut short
// by the dispatcher stopping are handed back, due at once.
func (d *Dispatcher) complete(ctx context.Context, t *target, done <-chan attemptDone, log *slog.Logger) {
	batch := make([]attemptDone, 0, maxClaim)
	for f := range done {
		batch = append(batch[:0], f)
	fill:
		for len(batch) < maxClaim {
			select {
			case f, ok := <-done:
				if !ok {
					break fill
				}
				batch = append(batch, f)
			default:
				break fill
			}
		}
		d.record(ctx, t, batch, log)
	}
}

// record writes one batch of outcomes and logs what became of each.
func (d *Dispatcher) record(ctx context.Context, t *target, batch []attemptDone, log *slog.Logger) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	cs := make([]Completion, 0, len(batch))
	kept := batch[:0:0]
	for _, f := range batch {
		switch {
		case f.lost:
			d.opts.Metrics.leaseLost(t.name)
			log.Warn("outbox lease lost during delivery; the new owner's attempt stands", slog.String("job_id", f.job.ID), slog.Int("attempt", f.job.Attempts))
		case ctx.Err() != nil && f.res.Outcome != OutcomeOK:
			if err := d.o.release(wctx, f.job, "interrupted: dispatcher stopping"); err != nil && !errors.Is(err, ErrLeaseLost) {
				log.Error("handing back an interrupted outbox job failed", slog.String("job_id", f.job.ID), slog.Any("error", err))
			}
		default:
			cs = append(cs, Completion{Job: f.job, Result: f.res, Took: f.took})
			kept = append(kept, f)
		}
	}
	if len(cs) == 0 {
		return
	}
	errs := d.o.CompleteBatch(wctx, cs)
	if t.ordered {
		// A finished job lets the next job of its chat be claimed: claim
		// again now rather than at the next poll.
		var finished []*Job
		for i, err := range errs {
			if err == nil && kept[i].job.State != StatePending {
				finished = append(finished, kept[i].job)
			}
		}
		d.o.notifyJobs(finished)
	}
	for i, err := range errs {
		job := kept[i].job
		jlog := log.With(slog.String("job_id", job.ID), slog.Int("attempt", job.Attempts))
		switch {
		case errors.Is(err, ErrLeaseLost):
			d.opts.Metrics.leaseLost(t.name)
			jlog.Warn("outbox lease lost before completion; the new owner's attempt stands")
		case err != nil:
			// The lease runs out and another attempt follows: at least once.
			jlog.Error("recording an outbox attempt failed", slog.Any("error", err))
		case job.State == StateDeadLetter:
			jlog.Warn("outbox job dead-lettered", slog.String("last_error", job.LastError))
		case kept[i].res.Outcome != OutcomeOK:
			jlog.Debug("outbox delivery failed; retry scheduled", slog.Time("run_at", job.RunAt), slog.String("last_error", job.LastError))
		}
	}
}

// inflight is a target's running attempts, for its heartbeat.
type inflight struct {
	mu   sync.Mutex
	jobs map[*Job]*running
}

type running struct {
	cancel context.CancelFunc
	lost   bool
}

func newInflight() *inflight { return &inflight{jobs: map[*Job]*running{}} }

func (f *inflight) add(j *Job, cancel context.CancelFunc) *running {
	r := &running{cancel: cancel}
	f.mu.Lock()
	f.jobs[j] = r
	f.mu.Unlock()
	return r
}

// remove ends j's attempt and reports whether its lease was lost while it
// ran.
func (f *inflight) remove(j *Job, r *running) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.jobs, j)
	return r.lost
}

// heartbeat extends, every Heartbeat, the lease of each attempt that is
// still running; an attempt whose job was taken over is cancelled and its
// outcome dropped. Extending is a write per running job, but only jobs
// that outlive a heartbeat need one, and most attempts take milliseconds.
func (d *Dispatcher) heartbeat(ctx context.Context, f *inflight, log *slog.Logger) {
	tick := time.NewTicker(d.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f.mu.Lock()
		jobs := make([]*Job, 0, len(f.jobs))
		for j := range f.jobs {
			jobs = append(jobs, j)
		}
		f.mu.Unlock()
		for _, j := range jobs {
			hctx, cancel := context.WithTimeout(ctx, d.opts.Heartbeat)
			err := d.o.extend(hctx, j)
			cancel()
			switch {
			case errors.Is(err, ErrLeaseLost):
				f.mu.Lock()
				if r := f.jobs[j]; r != nil {
					r.lost = true
					r.cancel()
				}
				f.mu.Unlock()
			case err != nil && ctx.Err() == nil:
				log.Warn("outbox heartbeat failed", slog.String("job_id", j.ID), slog.Any("error", err))
			}
		}
	}
}

// safeDeliverBatch is safeDeliver for a batch: a panic, or an answer of the
// wrong length, is a retry of every job left without a result.
func safeDeliverBatch(ctx context.Context, s BatchSink, jobs []*Job) (res []Result) {
	defer func() {
		if r := recover(); r != nil {
			res = nil
			for range jobs {
				res = append(res, Retry(fmt.Errorf("sink panicked: %v", r)))
			}
		}
	}()
	res = s.DeliverBatch(ctx, jobs)
	if len(res) > len(jobs) {
		res = res[:len(jobs)]
	}
	for len(res) < len(jobs) {
		res = append(res, Retry(fmt.Errorf("the sink answered %d results for a batch of %d", len(res), len(jobs))))
	}
	return res
}

// safeDeliver turns a panicking sink into a retry instead of a dead daemon.
func safeDeliver(ctx context.Context, s Sink, job *Job) (res Result) {
	defer func() {
		if r := recover(); r != nil {
			res = Retry(fmt.Errorf("sink panicked: %v", r))
		}
	}()
	return s.Deliver(ctx, job)
}
