package outbox

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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

func (f Filter) query() bson.D {
	q := bson.D{}
	if f.State != "" {
		q = append(q, bson.E{Key: "state", Value: f.State})
	}
	if f.Target != "" {
		q = append(q, bson.E{Key: "target", Value: f.Target})
	}
	if f.EventID != "" {
		q = append(q, bson.E{Key: "eventId", Value: f.EventID})
	}
	if f.AccountID != "" {
		q = append(q, bson.E{Key: "accountId", Value: f.AccountID})
	}
	if !f.Since.IsZero() {
		q = append(q, bson.E{Key: "createdAt", Value: bson.D{{Key: "$gte", Value: f.Since.UTC()}}})
	}
	return q
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
	q := f.query()
	if cursor != "" {
		at, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, err
		}
		q = append(q, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "createdAt", Value: bson.D{{Key: "$lt", Value: at}}}},
			bson.D{{Key: "createdAt", Value: at}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: id}}}},
		}})
	}
	cur, err := o.c.Find(ctx, q, options.Find().
		SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(limit+1)))
	if err != nil {
		return nil, fmt.Errorf("list outbox jobs: %w", err)
	}
	var jobs []*Job
	if err := cur.All(ctx, &jobs); err != nil {
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
	var j Job
	err := o.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&j)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get outbox job %s: %w", id, err)
	}
	return &j, nil
}

// requeue is the update Retry and Replay apply: due now, with a fresh
// schedule (attempts and the first-attempt deadline reset); the attempt log
// is kept.
func (o *Outbox) requeue(now time.Time) bson.D {
	return bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "state", Value: StatePending},
			{Key: "runAt", Value: now},
			{Key: "attempts", Value: 0},
			{Key: "updatedAt", Value: now},
		}},
		{Key: "$unset", Value: bson.D{{Key: "firstAttemptAt", Value: ""}, {Key: "leaseUntil", Value: ""}}},
	}
}

var finished = bson.A{StateDone, StateDeadLetter}

// Retry moves one done or dead-lettered job back to pending, due now, with
// a fresh schedule. ErrNotFound and ErrNotRetryable (still pending or
// processing) change nothing.
func (o *Outbox) Retry(ctx context.Context, id string) (*Job, error) {
	now := o.now()
	j, err := o.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.State != StateDone && j.State != StateDeadLetter {
		return nil, fmt.Errorf("retry %s (%s): %w", id, j.State, ErrNotRetryable)
	}
	if o.mem == nil {
		res, err := o.c.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "state", Value: bson.D{{Key: "$in", Value: finished}}}},
			o.requeue(now))
		if err != nil {
			return nil, fmt.Errorf("retry %s: %w", id, err)
		}
		if res.MatchedCount == 0 {
			return nil, fmt.Errorf("retry %s: %w", id, ErrNotRetryable)
		}
	} else {
		o.mem.mu.Lock()
		if o.mem.jobs[id] != nil { // became live since Get (a concurrent Retry)
			o.mem.mu.Unlock()
			return nil, fmt.Errorf("retry %s: %w", id, ErrNotRetryable)
		}
		_, err := o.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, o.requeue(now))
		if err == nil {
			o.mem.put(id, j.Target, StatePending, now, j.CreatedAt, "")
		}
		o.mem.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("retry %s: %w", id, err)
		}
	}
	o.notify(j.Target)
	return o.Get(ctx, id)
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
	now := o.now()
	q := f.query()
	if o.mem == nil {
		res, err := o.c.UpdateMany(ctx, q, o.requeue(now))
		if err != nil {
			return 0, fmt.Errorf("replay: %w", err)
		}
		if res.ModifiedCount > 0 {
			o.notifyAll()
		}
		return res.ModifiedCount, nil
	}
	// Exclusive: finished jobs are not in the schedule and nothing else in
	// this process changes them, so the ids read under the lock are exactly
	// the ones the update moves.
	o.mem.mu.Lock()
	defer o.mem.mu.Unlock()
	cur, err := o.c.Find(ctx, q, options.Find().SetProjection(bson.D{{Key: "target", Value: 1}, {Key: "createdAt", Value: 1}}))
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	var docs []scheduleDoc
	if err := cur.All(ctx, &docs); err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	if len(docs) == 0 {
		return 0, nil
	}
	if _, err := o.c.UpdateMany(ctx, q, o.requeue(now)); err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	for _, d := range docs {
		o.mem.put(d.ID, d.Target, StatePending, now, d.CreatedAt, "")
	}
	go o.notifyAll()
	return int64(len(docs)), nil
}

// Purge deletes done jobs last updated before before — the explicit expiry
// the embedded engine needs in place of a TTL index. Dead letters stay until
// an operator retries them.
func (o *Outbox) Purge(ctx context.Context, before time.Time) (int64, error) {
	res, err := o.c.DeleteMany(ctx, bson.D{
		{Key: "state", Value: StateDone},
		{Key: "updatedAt", Value: bson.D{{Key: "$lt", Value: before.UTC()}}},
	})
	if err != nil {
		return 0, fmt.Errorf("purge outbox: %w", err)
	}
	return res.DeletedCount, nil
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

// Stats counts jobs per state and target. It scans the collection (one
// $group); callers that poll it (metrics) should cache it.
func (o *Outbox) Stats(ctx context.Context) (*Stats, error) {
	cur, err := o.c.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: bson.D{{Key: "state", Value: "$state"}, {Key: "target", Value: "$target"}}},
			{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
		}}},
	})
	if err != nil {
		return nil, fmt.Errorf("outbox stats: %w", err)
	}
	var rows []struct {
		ID struct {
			State  State  `bson:"state"`
			Target string `bson:"target"`
		} `bson:"_id"`
		N int `bson:"n"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, fmt.Errorf("outbox stats: %w", err)
	}
	st := &Stats{Depth: map[State]map[string]int{}}
	for _, r := range rows {
		if st.Depth[r.ID.State] == nil {
			st.Depth[r.ID.State] = map[string]int{}
		}
		st.Depth[r.ID.State][r.ID.Target] += r.N
	}
	if o.mem != nil {
		o.mem.mu.Lock()
		_, st.OldestPending = o.mem.counts()
		o.mem.mu.Unlock()
		return st, nil
	}
	var oldest struct {
		CreatedAt time.Time `bson:"createdAt"`
	}
	err = o.c.FindOne(ctx, bson.D{{Key: "state", Value: StatePending}}, options.FindOne().
		SetSort(bson.D{{Key: "createdAt", Value: 1}}).
		SetProjection(bson.D{{Key: "createdAt", Value: 1}})).Decode(&oldest)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return nil, fmt.Errorf("outbox stats: %w", err)
	default:
		st.OldestPending = oldest.CreatedAt
	}
	return st, nil
}
