package outbox

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Filter selects jobs for List and Replay. Zero fields match everything.
type Filter struct {
	State     State
	Target    string
	EventID   string
	AccountID string
	// Since matches jobs created (enqueued) at or after it.
	Since time.Time
}

// ErrBadCursor: the cursor was not returned by List. Answer 400.
var ErrBadCursor = errors.New("invalid outbox cursor")

// Page is one page of List.
type Page struct {
	Jobs []*Job `json:"jobs"`
	// Next is the cursor of the following page; empty on the last one.
	Next string `json:"next,omitempty"`
}

// MaxPage bounds List's limit.
const MaxPage = 500

// List returns jobs matching f, newest first. The order is (createdAt, _id)
// descending — both fixed when a job is stored — and cursor is the position
// of the last job returned, so paging neither skips nor repeats a job while
// others are enqueued (new jobs sort before the first page). limit ≤ 0
// means 50.
func (o *Outbox) List(ctx context.Context, f Filter, cursor string, limit int) (*Page, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, MaxPage)
	var at time.Time
	var id string
	if cursor != "" {
		var err error
		if at, id, err = decodeCursor(cursor); err != nil {
			return nil, err
		}
	}
	jobs, err := o.b.List(ctx, f, at, id, limit+1)
	if err != nil {
		return nil, fmt.Errorf("list outbox jobs: %w", err)
	}
	p := &Page{Jobs: jobs}
	if len(jobs) > limit {
		p.Jobs = jobs[:limit]
		last := p.Jobs[limit-1]
		p.Next = encodeCursor(last.CreatedAt, last.ID)
	}
	if p.Jobs == nil {
		p.Jobs = []*Job{}
	}
	return p, nil
}

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMilli(), 10) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	ms, id, ok := strings.Cut(string(b), "|")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", ErrBadCursor
	}
	return time.UnixMilli(n).UTC(), id, nil
}

// Get returns one job with its attempt log.
func (o *Outbox) Get(ctx context.Context, id string) (*Job, error) {
	j, err := o.b.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get outbox job %s: %w", id, err)
	}
	return j, nil
}

// Retry moves one done or dead-lettered job back to pending, due now, with
// a fresh schedule (attempts and the first-attempt deadline reset; the
// attempt log is kept). ErrNotFound and ErrNotRetryable (still pending or
// processing) change nothing.
func (o *Outbox) Retry(ctx context.Context, id string) (*Job, error) {
	j, err := o.b.Requeue(ctx, id, o.now())
	if err != nil {
		return nil, fmt.Errorf("retry %s: %w", id, err)
	}
	o.notifyJobs([]*Job{j})
	return j, nil
}

// Replay re-queues every job matching f — e.g. all dead letters of one
// target since T — due now with a fresh schedule, and returns how many. f's
// state must be done or deadletter; empty means deadletter. Other states
// answer ErrNotRetryable: those jobs are attempted anyway.
func (o *Outbox) Replay(ctx context.Context, f Filter) (int64, error) {
	switch f.State {
	case "":
		f.State = StateDeadLetter
	case StateDone, StateDeadLetter:
	default:
		return 0, fmt.Errorf("replay %s jobs: %w", f.State, ErrNotRetryable)
	}
	n, err := o.b.RequeueMatching(ctx, f, o.now())
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	if n > 0 {
		// Off the caller's path: a replay of many targets wakes them all.
		go o.notifyAll()
	}
	return n, nil
}

// Purge deletes done jobs last updated before before — the explicit expiry
// in place of a TTL index. Dead letters stay until an operator retries them.
func (o *Outbox) Purge(ctx context.Context, before time.Time) (int64, error) {
	n, err := o.b.Purge(ctx, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("purge outbox: %w", err)
	}
	return n, nil
}

// Stats is the outbox depth for metrics and GET /v1/pipeline.
type Stats struct {
	// Depth counts jobs per state and target.
	Depth map[State]map[string]int `json:"depth"`
	// OldestPending is when the oldest pending job was enqueued; zero if
	// none is pending.
	OldestPending time.Time `json:"oldestPending,omitzero"`
}

// OldestPendingAge is how long the oldest pending job has waited at now.
func (s *Stats) OldestPendingAge(now time.Time) time.Duration {
	if s.OldestPending.IsZero() {
		return 0
	}
	return max(now.Sub(s.OldestPending), 0)
}

func (s *Stats) add(state State, target string, n int) {
	if s.Depth[state] == nil {
		s.Depth[state] = map[string]int{}
	}
	s.Depth[state][target] += n
}

// Stats counts jobs per state and target. It reads every job — on SQLite
// from the (state, target) index alone, on MongoDB with a $group over the
// collection — so callers that poll it (metrics) should cache it.
func (o *Outbox) Stats(ctx context.Context) (*Stats, error) {
	st, err := o.b.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("outbox stats: %w", err)
	}
	return st, nil
}
