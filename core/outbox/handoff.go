package outbox

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/wildcathub/wildcat/core/event"
)

// Handoff: on the embedded engine one daemon is the only claimer of its
// outbox, so a job that a dispatcher loop of this process has a free slot
// for is stored already claimed by that loop (processing, attempt 1, under
// a lease), in the transaction that creates it, and handed to the loop in
// memory once that transaction commits. Such a job costs no claim — no
// write and no read of its row — before its delivery. Nothing is lost if
// the process dies in between: the job is stored under a lease like any
// claimed job, and becomes due again when the lease ends.

// taker is a dispatcher loop that takes its target's new jobs this way.
type taker interface {
	owner() string
	// reserve takes up to n of the loop's free delivery slots without
	// waiting and returns how many it took.
	reserve(n int) int
	// unreserve gives back slots reserve took for jobs never handed over.
	unreserve(n int)
	// take queues jobs (stored claimed for this loop) for delivery; false
	// when the loop has stopped, and the caller then hands them back.
	take(jobs []*Job) bool
}

// registerTaker makes t the taker of target's new jobs until the returned
// function is called.
func (o *Outbox) registerTaker(target string, t taker) (unregister func()) {
	o.takerMu.Lock()
	o.takers[target] = t
	o.takerMu.Unlock()
	return func() {
		o.takerMu.Lock()
		if o.takers[target] == t {
			delete(o.takers, target)
		}
		o.takerMu.Unlock()
	}
}

func (o *Outbox) takerOf(target string) taker {
	o.takerMu.Lock()
	defer o.takerMu.Unlock()
	return o.takers[target]
}

// handed is one job PrepareTx stored claimed for a taker.
type handed struct {
	i    int // index in TxJobs.jobs
	to   taker
	view *Job // what the loop delivers: the job with its event as given, not sealed
	// inserted: the last Insert stored the row (an id already stored is
	// left as it is, and then not handed over).
	inserted bool
}

// claimForTakers stores each job whose target's taker has a free slot as
// claimed by that taker: state, attempt, lease and claim id as a claim
// would set them. plain[i] is jobs[i]'s event as given.
func (o *Outbox) claimForTakers(jobs []*Job, plain []*event.Event) []handed {
	var hand []handed
	var claimID string
	for i, j := range jobs {
		tk := o.takerOf(j.Target)
		if tk == nil || tk.reserve(1) == 0 {
			continue
		}
		if claimID == "" {
			claimID = uuid.NewString()
		}
		first, lease := j.CreatedAt, j.CreatedAt.Add(o.lease)
		j.State, j.Attempts, j.FirstAttemptAt, j.LeaseUntil = StateProcessing, 1, &first, &lease
		j.Owner, j.ClaimID = tk.owner(), claimID
		view := *j
		view.Event = plain[i]
		hand = append(hand, handed{i: i, to: tk, view: &view})
	}
	return hand
}

// handOver gives each taker the jobs stored for it and hands back, due now,
// those a stopped taker no longer takes. A job whose row was already
// stored frees its slot and wakes its target as any enqueued job does.
func (o *Outbox) handOver(hand []handed) {
	byTaker := map[taker][]*Job{}
	for _, h := range hand {
		if !h.inserted {
			h.to.unreserve(1)
			o.notifyJobs([]*Job{h.view})
			continue
		}
		byTaker[h.to] = append(byTaker[h.to], h.view)
	}
	for tk, jobs := range byTaker {
		if !tk.take(jobs) {
			o.handBack(jobs, "not started: the dispatcher stopped")
		}
	}
}

// handBack stores jobs that were claimed but never attempted as pending and
// due now, so whichever loop handles their target next takes them.
func (o *Outbox) handBack(jobs []*Job, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, j := range jobs {
		if err := o.release(ctx, j, reason); err != nil {
			// Still claimed under its lease: due again when the lease ends.
			o.log.Warn("handing back an outbox job failed; it is retried when its lease ends",
				slog.String("job_id", j.ID), slog.Any("error", err))
		}
	}
}

// loopTaker is a dispatcher loop's taker: the loop's slot pool, and a queue
// of handed-over jobs its handoff goroutine starts.
type loopTaker struct {
	own   string
	slots *slotPool
	wake  chan struct{} // a take since the last drain

	mu     sync.Mutex
	closed bool
	jobs   []*Job
}

func newLoopTaker(owner string, slots *slotPool) *loopTaker {
	return &loopTaker{own: owner, slots: slots, wake: make(chan struct{}, 1)}
}

func (k *loopTaker) owner() string { return k.own }

func (k *loopTaker) reserve(n int) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return 0
	}
	return k.slots.tryTake(n)
}

func (k *loopTaker) unreserve(n int) { k.slots.release(n) }

func (k *loopTaker) take(jobs []*Job) bool {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return false
	}
	k.jobs = append(k.jobs, jobs...)
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
	return true
}

// drain returns the jobs handed over since the last drain.
func (k *loopTaker) drain() []*Job {
	k.mu.Lock()
	defer k.mu.Unlock()
	jobs := k.jobs
	k.jobs = nil
	return jobs
}

// close stops taking and returns the jobs handed over but not started.
func (k *loopTaker) close() []*Job {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	jobs := k.jobs
	k.jobs = nil
	return jobs
}
