package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Outcome is the result of one delivery attempt.
type Outcome string

const (
	// OutcomeOK: delivered; the job is done.
	OutcomeOK Outcome = "ok"
	// OutcomeRetry: failed for now; try again on the schedule.
	OutcomeRetry Outcome = "retry"
	// OutcomeFail: failed for good (e.g. HTTP 4xx other than 408/429); the
	// job is dead-lettered without further attempts.
	OutcomeFail Outcome = "fail"
)

// Result is what a Sink reports for one attempt.
type Result struct {
	Outcome Outcome
	// RetryAfter, with OutcomeRetry, asks for the next attempt after this
	// long instead of the schedule's wait (clamped, see Schedule).
	RetryAfter time.Duration
	// Status is the response status (HTTP or the sink's own), 0 if none.
	Status int
	Err    error
	// Response is kept in the attempt log, truncated.
	Response string
}

// OK is a successful delivery.
func OK() Result { return Result{Outcome: OutcomeOK} }

// Retry is a temporary failure.
func Retry(err error) Result { return Result{Outcome: OutcomeRetry, Err: err} }

// RetryAfter is a temporary failure with the target's own idea of when to
// come back.
func RetryAfter(d time.Duration, err error) Result {
	return Result{Outcome: OutcomeRetry, RetryAfter: d, Err: err}
}

// Fail is a permanent failure.
func Fail(err error) Result { return Result{Outcome: OutcomeFail, Err: err} }

// Claim takes the due job of target with the earliest due time for owner
// and returns it with a fresh ClaimID and a lease of Lease(). It returns
// ErrNoJob when nothing is due.
func (o *Outbox) Claim(ctx context.Context, target, owner string) (*Job, error) {
	jobs, err := o.ClaimBatch(ctx, target, owner, 1)
	if err != nil {
		return nil, err
	}
	return jobs[0], nil
}

// ClaimBatch takes up to n due jobs of target for owner, earliest due
// first, in one atomic step, each with a lease of Lease() (heartbeat or
// complete each before it ends). It returns ErrNoJob when nothing is due.
func (o *Outbox) ClaimBatch(ctx context.Context, target, owner string, n int) ([]*Job, error) {
	return o.claimBatch(ctx, target, owner, n, false)
}

// ClaimOrdered is ClaimBatch in per-chat order: it takes only jobs that
// are the first live (pending or processing) job of their chat, so no two
// jobs of one chat are ever held at once (see ClaimRequest.Ordered).
func (o *Outbox) ClaimOrdered(ctx context.Context, target, owner string, n int) ([]*Job, error) {
	return o.claimBatch(ctx, target, owner, n, true)
}

func (o *Outbox) claimBatch(ctx context.Context, target, owner string, n int, ordered bool) ([]*Job, error) {
	now := o.now()
	jobs, err := o.b.Claim(ctx, ClaimRequest{
		Target: target, Owner: owner, ClaimID: uuid.NewString(),
		Now: now, LeaseUntil: now.Add(o.lease), Max: max(n, 1), Ordered: ordered,
	})
	if err != nil {
		return nil, fmt.Errorf("claim outbox jobs of %s: %w", target, err)
	}
	if len(jobs) == 0 {
		return nil, ErrNoJob
	}
	return jobs, nil
}

// Heartbeat extends the lease of a job this worker holds. ErrLeaseLost
// means another worker owns it now: stop delivering.
func (o *Outbox) Heartbeat(ctx context.Context, j *Job) error {
	lease := o.now().Add(o.lease)
	if err := o.b.Extend(ctx, j.ID, j.ClaimID, lease); err != nil {
		return fmt.Errorf("heartbeat %s: %w", j.ID, err)
	}
	j.LeaseUntil = &lease
	return nil
}

// extend is Heartbeat for the dispatcher's heartbeat, which runs beside
// the attempt: it leaves j as it is (the attempt's completer owns it).
func (o *Outbox) extend(ctx context.Context, j *Job) error {
	if err := o.b.Extend(ctx, j.ID, j.ClaimID, o.now().Add(o.lease)); err != nil {
		return fmt.Errorf("heartbeat %s: %w", j.ID, err)
	}
	return nil
}

// Complete records the attempt that started when j was claimed and moves
// the job on: done, pending at the next scheduled time, or dead letter.
// took is the attempt's duration. It returns ErrLeaseLost, changing
// nothing, when another worker has claimed the job since; on success j
// reflects the stored document.
func (o *Outbox) Complete(ctx context.Context, j *Job, res Result, took time.Duration) error {
	return o.CompleteBatch(ctx, []Completion{{Job: j, Result: res, Took: took}})[0]
}

// Completion is one attempt for CompleteBatch.
type Completion struct {
	Job    *Job
	Result Result
	Took   time.Duration
}

// CompleteBatch is Complete for several attempts in one write (one
// transaction on SQLite); errs[i] answers cs[i] as Complete would.
func (o *Outbox) CompleteBatch(ctx context.Context, cs []Completion) (errs []error) {
	now := o.now()
	settle := make([]Settlement, len(cs))
	for i, c := range cs {
		settle[i] = o.settle(c.Job, c.Result, c.Took, now)
	}
	return o.apply(ctx, cs, settle)
}

// settle decides what an attempt makes of j.
func (o *Outbox) settle(j *Job, res Result, took time.Duration, now time.Time) Settlement {
	a := Attempt{
		At:         now.Add(-took).Truncate(time.Millisecond),
		DurationMS: took.Milliseconds(),
		Result:     res.Outcome,
		Status:     res.Status,
		Response:   truncate(res.Response, o.respSize),
		Owner:      j.Owner,
	}
	if res.Err != nil {
		a.Error = truncate(res.Err.Error(), o.respSize)
	}
	if a.Result != OutcomeOK && a.Result != OutcomeFail {
		if a.Result != OutcomeRetry {
			a.Error = fmt.Sprintf("sink returned unknown outcome %q; retrying", res.Outcome)
		}
		a.Result = OutcomeRetry
	}
	if a.Result != OutcomeOK && a.Error == "" {
		a.Error = "failed without an error message"
	}
	s := Settlement{ID: j.ID, ClaimID: j.ClaimID, State: StateDone, RunAt: j.RunAt, Log: o.appendLog(j.Log, a), UpdatedAt: now}
	switch a.Result {
	case OutcomeRetry:
		first := now
		if j.FirstAttemptAt != nil {
			first = *j.FirstAttemptAt
		}
		next, ok := o.sched.next(j.Attempts, first, now, res.RetryAfter, o.rand())
		if ok {
			s.State, s.RunAt, s.LastError = StatePending, next.Truncate(time.Millisecond), a.Error
		} else {
			s.State, s.LastError = StateDeadLetter, fmt.Sprintf("retry schedule exhausted after %d attempts: %s", j.Attempts, a.Error)
		}
	case OutcomeFail:
		s.State, s.LastError = StateDeadLetter, a.Error
	}
	return s
}

func (o *Outbox) appendLog(log []Attempt, a Attempt) []Attempt {
	log = append(append([]Attempt(nil), log...), a)
	if len(log) > o.logSize {
		log = log[len(log)-o.logSize:]
	}
	return log
}

// release hands a job back without judging the attempt (the daemon is
// stopping): pending and due now, so another daemon takes it at once.
func (o *Outbox) release(ctx context.Context, j *Job, reason string) error {
	now := o.now()
	s := Settlement{
		ID: j.ID, ClaimID: j.ClaimID, State: StatePending, RunAt: now, LastError: reason, UpdatedAt: now,
		Log: o.appendLog(j.Log, Attempt{At: now, Result: OutcomeRetry, Error: reason, Owner: j.Owner}),
	}
	return o.apply(ctx, []Completion{{Job: j}}, []Settlement{s})[0]
}

// apply stores settlements and, for each that held, updates its job and
// wakes the target of a job that is pending again.
func (o *Outbox) apply(ctx context.Context, cs []Completion, settle []Settlement) []error {
	errs := o.b.Finish(ctx, settle)
	for i, c := range cs {
		s, j := settle[i], c.Job
		if errs[i] != nil {
			errs[i] = fmt.Errorf("complete %s: %w", j.ID, errs[i])
			continue
		}
		j.State, j.RunAt, j.LastError, j.Log, j.UpdatedAt, j.LeaseUntil = s.State, s.RunAt, s.LastError, s.Log, s.UpdatedAt, nil
		if s.State == StatePending {
			o.notifyJobs([]*Job{j})
		}
	}
	return errs
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the stored string stays valid UTF-8.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
