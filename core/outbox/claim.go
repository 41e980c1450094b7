package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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

// dueFilter matches jobs of target a worker may claim at now: pending and
// due, or processing under a lease that expired (its worker died).
func dueFilter(target string, now time.Time) bson.D {
	return bson.D{
		{Key: "target", Value: target},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "state", Value: StatePending}, {Key: "runAt", Value: bson.D{{Key: "$lte", Value: now}}}},
			bson.D{{Key: "state", Value: StateProcessing}, {Key: "leaseUntil", Value: bson.D{{Key: "$lte", Value: now}}}},
		}},
	}
}

// Claim takes the due job of target with the earliest due time for owner
// and returns it with a fresh ClaimID and a lease of Lease(). It returns
// ErrNoJob when nothing is due. In shared mode it is one findOneAndUpdate
// sorted by runAt; in exclusive mode the in-memory schedule picks the job
// and one write by _id claims it.
func (o *Outbox) Claim(ctx context.Context, target, owner string) (*Job, error) {
	now := o.now()
	if o.mem == nil {
		return o.claimWrite(ctx, dueFilter(target, now), true, owner, now)
	}
	o.mem.mu.Lock()
	defer o.mem.mu.Unlock()
	for {
		mj := o.mem.next(target, now)
		if mj == nil {
			return nil, ErrNoJob
		}
		j, err := o.claimWrite(ctx, bson.D{{Key: "_id", Value: mj.id}}, false, owner, now)
		if errors.Is(err, ErrNoJob) {
			o.mem.drop(mj.id) // purged or deleted behind our back
			continue
		}
		if err != nil {
			return nil, err
		}
		o.mem.put(j.ID, j.Target, StateProcessing, *j.LeaseUntil, j.CreatedAt, j.ClaimID)
		return j, nil
	}
}

func (o *Outbox) claimWrite(ctx context.Context, filter bson.D, sorted bool, owner string, now time.Time) (*Job, error) {
	lease := now.Add(o.lease)
	opts := options.FindOneAndUpdate().SetReturnDocument(options.After)
	if sorted {
		opts.SetSort(bson.D{{Key: "runAt", Value: 1}})
	}
	var j Job
	err := o.c.FindOneAndUpdate(ctx, filter,
		bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "state", Value: StateProcessing},
				{Key: "owner", Value: owner},
				{Key: "claimId", Value: uuid.NewString()},
				{Key: "leaseUntil", Value: lease},
				{Key: "updatedAt", Value: now},
			}},
			{Key: "$inc", Value: bson.D{{Key: "attempts", Value: 1}}},
			{Key: "$min", Value: bson.D{{Key: "firstAttemptAt", Value: now}}},
		}, opts,
	).Decode(&j)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNoJob
	}
	if err != nil {
		return nil, fmt.Errorf("claim outbox job: %w", err)
	}
	return &j, nil
}

// Heartbeat extends the lease of a job this worker holds. ErrLeaseLost
// means another worker owns it now: stop delivering.
func (o *Outbox) Heartbeat(ctx context.Context, j *Job) error {
	lease := o.now().Add(o.lease)
	err := o.guarded(ctx, j, bson.D{{Key: "$set", Value: bson.D{{Key: "leaseUntil", Value: lease}}}}, func() {
		o.mem.put(j.ID, j.Target, StateProcessing, lease, j.CreatedAt, j.ClaimID)
	})
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", j.ID, err)
	}
	j.LeaseUntil = &lease
	return nil
}

// guarded applies update to j only while the claim that returned j is the
// current one, and returns ErrLeaseLost otherwise. In exclusive mode the
// check is against the in-memory schedule and onMem runs, under its lock,
// after the write succeeded.
func (o *Outbox) guarded(ctx context.Context, j *Job, update bson.D, onMem func()) error {
	if o.mem == nil {
		filter := bson.D{{Key: "_id", Value: j.ID}, {Key: "claimId", Value: j.ClaimID}, {Key: "state", Value: StateProcessing}}
		res, err := o.c.UpdateOne(ctx, filter, update)
		if err != nil {
			return err
		}
		if res.MatchedCount == 0 {
			return ErrLeaseLost
		}
		return nil
	}
	o.mem.mu.Lock()
	defer o.mem.mu.Unlock()
	mj := o.mem.jobs[j.ID]
	if mj == nil || mj.state != StateProcessing || mj.claimID != j.ClaimID {
		return ErrLeaseLost
	}
	if _, err := o.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: j.ID}}, update); err != nil {
		return err
	}
	onMem()
	return nil
}

// Complete records the attempt that started when j was claimed and moves
// the job on: done, pending at the next scheduled time, or dead letter.
// took is the attempt's duration. It returns ErrLeaseLost, changing
// nothing, when another worker has claimed the job since; on success j
// reflects the stored document.
func (o *Outbox) Complete(ctx context.Context, j *Job, res Result, took time.Duration) error {
	now := o.now()
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
	log := append(append([]Attempt(nil), j.Log...), a)
	if len(log) > o.logSize {
		log = log[len(log)-o.logSize:]
	}

	state, runAt, lastError := StateDone, j.RunAt, ""
	switch a.Result {
	case OutcomeRetry:
		first := now
		if j.FirstAttemptAt != nil {
			first = *j.FirstAttemptAt
		}
		next, ok := o.sched.next(j.Attempts, first, now, res.RetryAfter, o.rand())
		if ok {
			state, runAt, lastError = StatePending, next.Truncate(time.Millisecond), a.Error
		} else {
			state, lastError = StateDeadLetter, fmt.Sprintf("retry schedule exhausted after %d attempts: %s", j.Attempts, a.Error)
		}
	case OutcomeFail:
		state, lastError = StateDeadLetter, a.Error
	}
	if err := o.finish(ctx, j, state, runAt, lastError, log, now); err != nil {
		return err
	}
	if state == StatePending {
		o.notify(j.Target)
	}
	return nil
}

// release hands a job back without judging the attempt (the daemon is
// stopping): pending and due now, so another daemon takes it at once.
func (o *Outbox) release(ctx context.Context, j *Job, reason string) error {
	now := o.now()
	log := append(append([]Attempt(nil), j.Log...), Attempt{At: now, Result: OutcomeRetry, Error: reason, Owner: j.Owner})
	if len(log) > o.logSize {
		log = log[len(log)-o.logSize:]
	}
	return o.finish(ctx, j, StatePending, now, reason, log, now)
}

func (o *Outbox) finish(ctx context.Context, j *Job, state State, runAt time.Time, lastError string, log []Attempt, now time.Time) error {
	set := bson.D{
		{Key: "state", Value: state},
		{Key: "runAt", Value: runAt},
		{Key: "log", Value: log},
		{Key: "updatedAt", Value: now},
	}
	unset := bson.D{{Key: "leaseUntil", Value: ""}}
	if lastError != "" {
		set = append(set, bson.E{Key: "lastError", Value: lastError})
	} else {
		unset = append(unset, bson.E{Key: "lastError", Value: ""})
	}
	err := o.guarded(ctx, j, bson.D{{Key: "$set", Value: set}, {Key: "$unset", Value: unset}}, func() {
		if state == StatePending {
			o.mem.put(j.ID, j.Target, StatePending, runAt, j.CreatedAt, "")
		} else {
			o.mem.drop(j.ID)
		}
	})
	if err != nil {
		return fmt.Errorf("complete %s: %w", j.ID, err)
	}
	j.State, j.RunAt, j.LastError, j.Log, j.UpdatedAt, j.LeaseUntil = state, runAt, lastError, log, now, nil
	return nil
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
