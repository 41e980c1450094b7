package outbox

import (
	"container/heap"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// memQueue is the schedule of live (pending and processing) jobs of the
// MongoDB backend's exclusive mode, which exists only because FerretDB v1
// cannot answer the claim query from an index (see the package doc). mu is
// held across the in-memory check and the _id write of every transition,
// which is what makes a transition atomic in this mode.
type memQueue struct {
	mu      sync.Mutex
	jobs    map[string]*memJob
	targets map[string]*dueHeap
}

// memJob is what the schedule knows of one live job. due is runAt while
// pending and leaseUntil while processing, so one heap serves both halves
// of the claim condition.
type memJob struct {
	id, target string
	ord        jobOrder
	state      State
	due        time.Time
	createdAt  time.Time
	claimID    string
	index      int // in its target's heap
}

func newMemQueue() *memQueue {
	return &memQueue{jobs: map[string]*memJob{}, targets: map[string]*dueHeap{}}
}

// jobOrder is a job's place in its chat's order (Job.ChatKey, Job.Seq).
type jobOrder struct {
	chat string
	seq  int64
}

// before reports whether a job at o (id) precedes one at p (pid) in their
// chat.
func (o jobOrder) before(id string, p jobOrder, pid string) bool {
	if o.seq != p.seq {
		return o.seq < p.seq
	}
	return id < pid
}

// put adds or reschedules a live job; ord is used only when it is new.
// Caller holds mu.
func (q *memQueue) put(id, target string, ord jobOrder, state State, due, created time.Time, claimID string) {
	h := q.targets[target]
	if h == nil {
		h = &dueHeap{}
		q.targets[target] = h
	}
	if j := q.jobs[id]; j != nil {
		j.state, j.due, j.claimID = state, due, claimID
		heap.Fix(h, j.index)
		return
	}
	j := &memJob{id: id, target: target, ord: ord, state: state, due: due, createdAt: created, claimID: claimID}
	q.jobs[id] = j
	heap.Push(h, j)
}

// drop forgets a job that is done or dead-lettered. Caller holds mu.
func (q *memQueue) drop(id string) {
	j := q.jobs[id]
	if j == nil {
		return
	}
	heap.Remove(q.targets[j.target], j.index)
	delete(q.jobs, id)
}

// next returns target's job with the earliest due time if it is due at now.
// Caller holds mu.
func (q *memQueue) next(target string, now time.Time) *memJob {
	h := q.targets[target]
	if h == nil || h.Len() == 0 || (*h)[0].due.After(now) {
		return nil
	}
	return (*h)[0]
}

// nextOrdered returns up to n of target's jobs due at now that are the
// first live job of their chat (jobs without a chat count as their own),
// earliest due first: an ordered claim's candidates. It walks every live
// job of target — this mode is for tests and a lone process on FerretDB.
// Caller holds mu.
func (q *memQueue) nextOrdered(target string, now time.Time, n int) []*memJob {
	h := q.targets[target]
	if h == nil {
		return nil
	}
	heads := map[string]*memJob{}
	var due []*memJob
	for _, j := range *h {
		if j.ord.chat == "" {
			if !j.due.After(now) {
				due = append(due, j)
			}
			continue
		}
		if cur := heads[j.ord.chat]; cur == nil || j.ord.before(j.id, cur.ord, cur.id) {
			heads[j.ord.chat] = j
		}
	}
	for _, j := range heads {
		if !j.due.After(now) {
			due = append(due, j)
		}
	}
	sort.Slice(due, func(i, k int) bool {
		if !due[i].due.Equal(due[k].due) {
			return due[i].due.Before(due[k].due)
		}
		return due[i].id < due[k].id
	})
	return due[:min(n, len(due))]
}

// oldestPending returns the creation time of the oldest pending job; zero
// if none is pending. Caller holds mu.
func (q *memQueue) oldestPending() time.Time {
	var oldest time.Time
	for _, j := range q.jobs {
		if j.state == StatePending && (oldest.IsZero() || j.createdAt.Before(oldest)) {
			oldest = j.createdAt
		}
	}
	return oldest
}

type dueHeap []*memJob

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, k int) bool { return h[i].due.Before(h[k].due) }
func (h dueHeap) Swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].index, h[k].index = i, k
}
func (h *dueHeap) Push(x any) {
	j := x.(*memJob)
	j.index = len(*h)
	*h = append(*h, j)
}
func (h *dueHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return j
}

// scheduleDoc is the projection loadSchedule reads.
type scheduleDoc struct {
	ID         string     `bson:"_id"`
	Target     string     `bson:"target"`
	State      State      `bson:"state"`
	RunAt      time.Time  `bson:"runAt"`
	LeaseUntil *time.Time `bson:"leaseUntil"`
	ClaimID    string     `bson:"claimId"`
	CreatedAt  time.Time  `bson:"createdAt"`
	ChatKey    string     `bson:"chatKey"`
	Seq        int64      `bson:"seq"`
}

func (d *scheduleDoc) order() jobOrder { return jobOrder{chat: d.ChatKey, seq: d.Seq} }

func (d *scheduleDoc) due() time.Time {
	if d.State == StateProcessing && d.LeaseUntil != nil {
		return *d.LeaseUntil
	}
	return d.RunAt
}

// loadSchedule reads every live job into the in-memory schedule: the one
// full scan of exclusive mode, at start.
func (b *mongoBackend) loadSchedule(ctx context.Context) error {
	cur, err := b.c.Find(ctx,
		bson.D{{Key: "state", Value: bson.D{{Key: "$in", Value: bson.A{StatePending, StateProcessing}}}}},
		options.Find().SetProjection(bson.D{
			{Key: "target", Value: 1}, {Key: "state", Value: 1}, {Key: "runAt", Value: 1},
			{Key: "leaseUntil", Value: 1}, {Key: "claimId", Value: 1}, {Key: "createdAt", Value: 1},
			{Key: "chatKey", Value: 1}, {Key: "seq", Value: 1},
		}))
	if err != nil {
		return fmt.Errorf("load outbox schedule: %w", err)
	}
	defer cur.Close(ctx)
	b.mem.mu.Lock()
	defer b.mem.mu.Unlock()
	for cur.Next(ctx) {
		var d scheduleDoc
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("load outbox schedule: %w", err)
		}
		b.mem.put(d.ID, d.Target, d.order(), d.State, d.due(), d.CreatedAt, d.ClaimID)
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("load outbox schedule: %w", err)
	}
	return nil
}

// track adds a job found by _id to the schedule if it is live — for jobs
// this process stored without knowing (an insert whose reply was lost) or
// that Retry and Replay moved. Caller holds mu.
func (b *mongoBackend) track(ctx context.Context, id string) error {
	var d scheduleDoc
	err := b.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if err != nil {
		return fmt.Errorf("read outbox job %s: %w", id, err)
	}
	if d.State == StatePending || d.State == StateProcessing {
		b.mem.put(d.ID, d.Target, d.order(), d.State, d.due(), d.CreatedAt, d.ClaimID)
	} else {
		b.mem.drop(d.ID)
	}
	return nil
}
