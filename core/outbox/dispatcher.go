package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
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
	// Timeout bounds one attempt; default 30 s.
	Timeout time.Duration
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
	stop        context.CancelFunc
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
	t := &target{name: name, sink: s, concurrency: max(concurrency, 1)}
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

func (d *Dispatcher) loop(ctx context.Context, t *target) {
	wake, unsubscribe := d.o.subscribe(t.name)
	defer unsubscribe()
	idle := time.NewTimer(d.opts.PollInterval)
	idle.Stop()
	defer idle.Stop()
	slots := make(chan struct{}, t.concurrency)
	log := d.log.With(slog.String("target", t.name))
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		job, err := d.o.Claim(ctx, t.name, d.opts.Owner)
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, ErrNoJob) {
				log.Warn("claiming an outbox job failed", slog.Any("error", err))
			}
			idle.Reset(d.opts.PollInterval)
			select {
			case <-wake:
				idle.Stop() // Go ≥1.23 timers: no stale tick to drain
			case <-idle.C:
			case <-ctx.Done():
				return
			}
			continue
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer func() { <-slots }()
			d.deliver(ctx, t, job, log)
		}()
	}
}

// deliver runs one attempt of job under a heartbeat and records it.
func (d *Dispatcher) deliver(ctx context.Context, t *target, job *Job, log *slog.Logger) {
	log = log.With(slog.String("job_id", job.ID), slog.Int("attempt", job.Attempts))
	actx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()

	// The heartbeat owns job while the sink runs on a copy.
	lost := make(chan struct{})
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		tick := time.NewTicker(d.opts.Heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-actx.Done():
				return
			case <-tick.C:
			}
			hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.Heartbeat)
			err := d.o.Heartbeat(hctx, job)
			hcancel()
			if errors.Is(err, ErrLeaseLost) {
				close(lost)
				cancel()
				return
			}
			if err != nil {
				log.Warn("outbox heartbeat failed", slog.Any("error", err))
			}
		}
	}()

	view := *job
	view.Log = append([]Attempt(nil), job.Log...)
	start := time.Now()
	res := safeDeliver(actx, t.sink, &view)
	took := time.Since(start)
	cancel()
	<-hbDone
	d.opts.Metrics.observe(t.name, res.Outcome, took)

	select {
	case <-lost:
		d.opts.Metrics.leaseLost(t.name)
		log.Warn("outbox lease lost during delivery; the new owner's attempt stands")
		return
	default:
	}
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer wcancel()
	var err error
	if ctx.Err() != nil && res.Outcome != OutcomeOK {
		err = d.o.release(wctx, job, "interrupted: dispatcher stopping")
	} else {
		err = d.o.Complete(wctx, job, res, took)
	}
	switch {
	case errors.Is(err, ErrLeaseLost):
		d.opts.Metrics.leaseLost(t.name)
		log.Warn("outbox lease lost before completion; the new owner's attempt stands")
	case err != nil:
		// The lease runs out and another attempt follows: at least once.
		log.Error("recording an outbox attempt failed", slog.Any("error", err))
	case job.State == StateDeadLetter:
		log.Warn("outbox job dead-lettered", slog.String("last_error", job.LastError))
	case res.Outcome != OutcomeOK:
		log.Debug("outbox delivery failed; retry scheduled", slog.Time("run_at", job.RunAt), slog.String("last_error", job.LastError))
	}
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
