package outbox

import (
	"context"
	"time"
)

// Backend is where the outbox keeps its jobs: the MongoDB collection (see
// mongo.go) or the SQLite table outbox_jobs (see sqlite.go). The Outbox
// decides everything — ids, schedules, attempt logs, what a completion
// turns a job into — and a Backend stores those decisions, each as one
// atomic step. Times it is handed are UTC at millisecond precision.
//
// Errors it answers with, besides its engine's own: ErrNotFound,
// ErrLeaseLost, ErrNotRetryable, as documented on each method.
type Backend interface {
	// Insert stores jobs. A job whose id is already stored is left as it
	// is, whatever its state: enqueueing is idempotent.
	Insert(ctx context.Context, jobs []*Job) error
	// Claim moves up to c.Max jobs of c.Target that are due at c.Now —
	// pending with RunAt ≤ Now, or processing under a lease that ended by
	// Now — to processing under c (owner, claim id, lease), counting the
	// attempt and setting FirstAttemptAt if unset, and returns them as
	// stored, earliest due first. None due is an empty slice, not an error.
	Claim(ctx context.Context, c ClaimRequest) ([]*Job, error)
	// Extend sets the lease of job id while claimID holds it, else
	// ErrLeaseLost.
	Extend(ctx context.Context, id, claimID string, leaseUntil time.Time) error
	// Finish applies each settlement while its claim holds the job, as a
	// whole per job; errs[i] is nil, ErrLeaseLost (nothing changed) or the
	// failure of settlement i.
	Finish(ctx context.Context, settle []Settlement) (errs []error)
	// Get returns one job; ErrNotFound if there is none.
	Get(ctx context.Context, id string) (*Job, error)
	// List returns up to limit jobs matching f, ordered by (CreatedAt, ID)
	// descending, starting after the position (afterAt, afterID) when
	// afterID is not empty.
	List(ctx context.Context, f Filter, afterAt time.Time, afterID string, limit int) ([]*Job, error)
	// Requeue moves done or dead-lettered job id back to pending, due at
	// now, with attempts and FirstAttemptAt reset (the log stays), and
	// returns it as stored. ErrNotFound; ErrNotRetryable while it is
	// pending or processing.
	Requeue(ctx context.Context, id string, now time.Time) (*Job, error)
	// RequeueMatching is Requeue for every job matching f, whose State is
	// done or deadletter; it returns how many moved.
	RequeueMatching(ctx context.Context, f Filter, now time.Time) (int64, error)
	// Purge deletes done jobs last updated before before.
	Purge(ctx context.Context, before time.Time) (int64, error)
	// Stats counts jobs per state and target and finds the oldest pending.
	Stats(ctx context.Context) (*Stats, error)
}

// ClaimRequest is one Backend.Claim.
type ClaimRequest struct {
	Target string
	Owner  string
	// ClaimID is fresh for this claim; every job it takes carries it.
	ClaimID    string
	Now        time.Time
	LeaseUntil time.Time
	Max        int
	// Ordered takes only a job that is its chat's first live one: no
	// pending or processing job of the same target and ChatKey precedes it
	// by (Seq, ID). So at most one job per chat is claimed at a time, in
	// order, and a failing job holds back the later ones of its chat
	// until it is delivered or dead-lettered. Jobs without a ChatKey are
	// taken as if unordered.
	Ordered bool
}

// Settlement is what a finished attempt makes of a job held under ClaimID:
// its next state, when it runs next (pending), its last error (empty
// clears it) and its whole attempt log. The lease ends with it.
type Settlement struct {
	ID, ClaimID string
	State       State
	RunAt       time.Time
	LastError   string
	Log         []Attempt
	UpdatedAt   time.Time
}
