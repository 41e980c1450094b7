package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store"
)

// mongoBackend keeps jobs in a MongoDB collection, one document per job
// (Job's BSON form). mem is the exclusive mode's schedule (memqueue.go);
// nil in shared mode.
type mongoBackend struct {
	c   *mongo.Collection
	mem *memQueue
	// inserts batches the jobs of events enqueued at the same moment into
	// one unordered BulkWrite (store.Bulk).
	inserts *store.Bulk
}

// mongoIndexes are the indexes of the queries below, by name, created by
// EnsureIndexes.
var mongoIndexes = []struct {
	name string
	keys bson.D
}{
	// Claim: {target, state: pending, runAt ≤} and {target, state:
	// processing, leaseUntil ≤}, both sorted by runAt.
	{"target_state_run_at", bson.D{{Key: "target", Value: 1}, {Key: "state", Value: 1}, {Key: "runAt", Value: 1}}},
	// Ordered claim: the first live job of a chat, {target, chatKey,
	// state: {$in: [pending, processing]}} sorted by (seq, _id).
	{"target_chat_key_state_seq", bson.D{{Key: "target", Value: 1}, {Key: "chatKey", Value: 1}, {Key: "state", Value: 1}, {Key: "seq", Value: 1}, {Key: "_id", Value: 1}}},
	// List, newest first, unfiltered or by one of its filters; the state
	// one also serves the oldest pending job, Replay and Purge.
	{"created_at_id", bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}},
	{"state_created_at_id", bson.D{{Key: "state", Value: 1}, {Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}},
	{"target_created_at_id", bson.D{{Key: "target", Value: 1}, {Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}},
	{"account_id_created_at_id", bson.D{{Key: "accountId", Value: 1}, {Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}},
	{"event_id", bson.D{{Key: "eventId", Value: 1}}},
}

// openMongo needs the server only in exclusive mode (to load the
// schedule): a daemon on a shared MongoDB builds its components before the
// server is reachable, and creates the indexes (EnsureIndexes) once it is.
func openMongo(ctx context.Context, c *mongo.Collection, exclusive bool) (*mongoBackend, error) {
	b := &mongoBackend{c: c, inserts: store.NewBulk(c)}
	if exclusive {
		b.mem = newMemQueue()
		if err := b.loadSchedule(ctx); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *mongoBackend) ensureIndexes(ctx context.Context) error {
	// One index per command: FerretDB v1.24 panics on several at once.
	for _, ix := range mongoIndexes {
		if _, err := b.c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: options.Index().SetName(ix.name)}); err != nil {
			return fmt.Errorf("create outbox index %s: %w", ix.name, err)
		}
	}
	return nil
}

func filterQuery(f Filter) bson.D {
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

func (b *mongoBackend) Insert(ctx context.Context, jobs []*Job) error {
	models := make([]mongo.WriteModel, len(jobs))
	for i, j := range jobs {
		models[i] = mongo.NewInsertOneModel().SetDocument(j)
	}
	dup := map[int]bool{}
	for i, err := range b.inserts.DoAll(ctx, models) {
		switch {
		case err == nil:
		case store.IsDuplicateKey(err):
			dup[i] = true // already queued: left as it is
		default:
			return err
		}
	}
	if b.mem == nil {
		return nil
	}
	b.mem.mu.Lock()
	defer b.mem.mu.Unlock()
	for i, j := range jobs {
		switch {
		case !dup[i]:
			if j.State == StatePending {
				b.mem.put(j.ID, j.Target, j.order(), StatePending, j.RunAt, j.CreatedAt, "")
			}
		case b.mem.jobs[j.ID] == nil:
			// Already stored but unknown here: an earlier insert whose
			// reply was lost. Read its state rather than guess.
			if err := b.track(ctx, j.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

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

// Claim is one findOneAndUpdate per job: MongoDB has no update-many that
// returns what it changed. In exclusive mode the in-memory schedule picks
// each job and the write is by _id.
func (b *mongoBackend) Claim(ctx context.Context, c ClaimRequest) ([]*Job, error) {
	if c.Ordered {
		return b.claimOrdered(ctx, c)
	}
	var jobs []*Job
	if b.mem == nil {
		for len(jobs) < c.Max {
			j, err := b.claimOne(ctx, dueFilter(c.Target, c.Now), true, c)
			if errors.Is(err, ErrNoJob) {
				break
			}
			if err != nil {
				return jobs, err
			}
			jobs = append(jobs, j)
		}
		return jobs, nil
	}
	b.mem.mu.Lock()
	defer b.mem.mu.Unlock()
	for len(jobs) < c.Max {
		mj := b.mem.next(c.Target, c.Now)
		if mj == nil {
			break
		}
		j, err := b.claimOne(ctx, bson.D{{Key: "_id", Value: mj.id}}, false, c)
		if errors.Is(err, ErrNoJob) {
			b.mem.drop(mj.id) // purged or deleted behind our back
			continue
		}
		if err != nil {
			return jobs, err
		}
		b.mem.put(j.ID, j.Target, j.order(), StateProcessing, *j.LeaseUntil, j.CreatedAt, j.ClaimID)
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// orderedPage is how many candidates an ordered claim reads at a time.
const orderedPage = 64

// claimOrdered is Claim in per-chat order. Shared mode reads due jobs
// (earliest due first, a page at a time) for the chats they name, looks up
// each chat's first live job once — the only one of the chat that may be
// claimed — and claims it with the due filter by _id, so a job that
// stopped being due or was taken meanwhile is skipped. The check and the
// claim are two steps: only a job made live again over REST (Retry,
// Replay) in between can end up in flight beside a later job of its chat.
// Exclusive mode picks the chats' first jobs from its schedule.
func (b *mongoBackend) claimOrdered(ctx context.Context, c ClaimRequest) ([]*Job, error) {
	var jobs []*Job
	if b.mem != nil {
		b.mem.mu.Lock()
		defer b.mem.mu.Unlock()
		for _, mj := range b.mem.nextOrdered(c.Target, c.Now, c.Max) {
			j, err := b.claimOne(ctx, bson.D{{Key: "_id", Value: mj.id}}, false, c)
			if errors.Is(err, ErrNoJob) {
				b.mem.drop(mj.id) // purged or deleted behind our back
				continue
			}
			if err != nil {
				return jobs, err
			}
			b.mem.put(j.ID, j.Target, mj.ord, StateProcessing, *j.LeaseUntil, j.CreatedAt, j.ClaimID)
			jobs = append(jobs, j)
		}
		return jobs, nil
	}
	seen := bson.A{} // chats looked at by this claim
	looked := map[string]bool{}
	for len(jobs) < c.Max {
		q := dueFilter(c.Target, c.Now)
		if len(seen) > 0 {
			q = append(q, bson.E{Key: "chatKey", Value: bson.D{{Key: "$nin", Value: seen}}})
		}
		cur, err := b.c.Find(ctx, q, options.Find().
			SetSort(bson.D{{Key: "runAt", Value: 1}}).SetLimit(orderedPage).
			SetProjection(bson.D{{Key: "chatKey", Value: 1}}))
		if err != nil {
			return jobs, err
		}
		var cands []struct {
			ID      string `bson:"_id"`
			ChatKey string `bson:"chatKey"`
		}
		if err := cur.All(ctx, &cands); err != nil {
			return jobs, err
		}
		progress := false
		for _, cand := range cands {
			if len(jobs) == c.Max {
				break
			}
			id := cand.ID
			if cand.ChatKey != "" {
				if looked[cand.ChatKey] {
					continue
				}
				looked[cand.ChatKey] = true
				seen = append(seen, cand.ChatKey)
				progress = true
				var head struct {
					ID string `bson:"_id"`
				}
				err := b.c.FindOne(ctx, bson.D{
					{Key: "target", Value: c.Target}, {Key: "chatKey", Value: cand.ChatKey},
					{Key: "state", Value: bson.D{{Key: "$in", Value: bson.A{StatePending, StateProcessing}}}},
				}, options.FindOne().SetSort(bson.D{{Key: "seq", Value: 1}, {Key: "_id", Value: 1}}).
					SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&head)
				if errors.Is(err, mongo.ErrNoDocuments) {
					continue // finished meanwhile
				}
				if err != nil {
					return jobs, err
				}
				id = head.ID
			}
			j, err := b.claimOne(ctx, append(dueFilter(c.Target, c.Now), bson.E{Key: "_id", Value: id}), false, c)
			if errors.Is(err, ErrNoJob) {
				continue // not due, or taken meanwhile
			}
			if err != nil {
				return jobs, err
			}
			progress = true
			jobs = append(jobs, j)
		}
		if len(cands) < orderedPage || !progress {
			break
		}
	}
	return jobs, nil
}

func (b *mongoBackend) claimOne(ctx context.Context, filter bson.D, sorted bool, c ClaimRequest) (*Job, error) {
	opts := options.FindOneAndUpdate().SetReturnDocument(options.After)
	if sorted {
		opts.SetSort(bson.D{{Key: "runAt", Value: 1}})
	}
	var j Job
	err := b.c.FindOneAndUpdate(ctx, filter,
		bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "state", Value: StateProcessing},
				{Key: "owner", Value: c.Owner},
				{Key: "claimId", Value: c.ClaimID},
				{Key: "leaseUntil", Value: c.LeaseUntil},
				{Key: "updatedAt", Value: c.Now},
			}},
			{Key: "$inc", Value: bson.D{{Key: "attempts", Value: 1}}},
			{Key: "$min", Value: bson.D{{Key: "firstAttemptAt", Value: c.Now}}},
		}, opts,
	).Decode(&j)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNoJob
	}
	if err != nil {
		return nil, err
	}
	return &j, nil
}

func (b *mongoBackend) Extend(ctx context.Context, id, claimID string, leaseUntil time.Time) error {
	return b.guarded(ctx, id, claimID, bson.D{{Key: "$set", Value: bson.D{{Key: "leaseUntil", Value: leaseUntil}}}},
		func(mj *memJob) {
			b.mem.put(mj.id, mj.target, mj.ord, StateProcessing, leaseUntil, mj.createdAt, claimID)
		})
}

// Finish is one guarded update per job: a bulk write would not tell which
// of them lost their lease.
func (b *mongoBackend) Finish(ctx context.Context, settle []Settlement) []error {
	errs := make([]error, len(settle))
	for i, s := range settle {
		set := bson.D{
			{Key: "state", Value: s.State},
			{Key: "runAt", Value: s.RunAt},
			{Key: "log", Value: s.Log},
			{Key: "updatedAt", Value: s.UpdatedAt},
		}
		unset := bson.D{{Key: "leaseUntil", Value: ""}}
		if s.LastError != "" {
			set = append(set, bson.E{Key: "lastError", Value: s.LastError})
		} else {
			unset = append(unset, bson.E{Key: "lastError", Value: ""})
		}
		errs[i] = b.guarded(ctx, s.ID, s.ClaimID, bson.D{{Key: "$set", Value: set}, {Key: "$unset", Value: unset}}, func(mj *memJob) {
			if s.State == StatePending {
				b.mem.put(mj.id, mj.target, mj.ord, StatePending, s.RunAt, mj.createdAt, "")
			} else {
				b.mem.drop(mj.id)
			}
		})
	}
	return errs
}

// guarded applies update to job id only while claimID is its current
// claim, and returns ErrLeaseLost otherwise. In exclusive mode the check is
// against the in-memory schedule and onMem runs, under its lock, after the
// write succeeded.
func (b *mongoBackend) guarded(ctx context.Context, id, claimID string, update bson.D, onMem func(*memJob)) error {
	if b.mem == nil {
		filter := bson.D{{Key: "_id", Value: id}, {Key: "claimId", Value: claimID}, {Key: "state", Value: StateProcessing}}
		res, err := b.c.UpdateOne(ctx, filter, update)
		if err != nil {
			return err
		}
		if res.MatchedCount == 0 {
			return ErrLeaseLost
		}
		return nil
	}
	b.mem.mu.Lock()
	defer b.mem.mu.Unlock()
	mj := b.mem.jobs[id]
	if mj == nil || mj.state != StateProcessing || mj.claimID != claimID {
		return ErrLeaseLost
	}
	if _, err := b.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, update); err != nil {
		return err
	}
	onMem(mj)
	return nil
}

func (b *mongoBackend) Get(ctx context.Context, id string) (*Job, error) {
	var j Job
	err := b.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&j)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &j, nil
}

func (b *mongoBackend) List(ctx context.Context, f Filter, afterAt time.Time, afterID string, limit int) ([]*Job, error) {
	q := filterQuery(f)
	if afterID != "" {
		q = append(q, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "createdAt", Value: bson.D{{Key: "$lt", Value: afterAt}}}},
			bson.D{{Key: "createdAt", Value: afterAt}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: afterID}}}},
		}})
	}
	cur, err := b.c.Find(ctx, q, options.Find().
		SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	var jobs []*Job
	if err := cur.All(ctx, &jobs); err != nil {
		return nil, err
	}
	return jobs, nil
}

// requeue is the update Requeue and RequeueMatching apply.
func requeue(now time.Time) bson.D {
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

func (b *mongoBackend) Requeue(ctx context.Context, id string, now time.Time) (*Job, error) {
	if b.mem == nil {
		var j Job
		err := b.c.FindOneAndUpdate(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "state", Value: bson.D{{Key: "$in", Value: finished}}}},
			requeue(now), options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&j)
		if errors.Is(err, mongo.ErrNoDocuments) {
			// Missing, or live: tell which.
			if _, err := b.Get(ctx, id); err != nil {
				return nil, err
			}
			return nil, ErrNotRetryable
		}
		if err != nil {
			return nil, err
		}
		return &j, nil
	}
	// Exclusive: the schedule holds every live job, so a job it does not
	// hold is finished and no other writer can change that meanwhile.
	b.mem.mu.Lock()
	defer b.mem.mu.Unlock()
	if b.mem.jobs[id] != nil {
		return nil, ErrNotRetryable
	}
	j, err := b.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.State != StateDone && j.State != StateDeadLetter {
		return nil, ErrNotRetryable
	}
	if _, err := b.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, requeue(now)); err != nil {
		return nil, err
	}
	b.mem.put(id, j.Target, j.order(), StatePending, now, j.CreatedAt, "")
	return b.Get(ctx, id)
}

func (b *mongoBackend) RequeueMatching(ctx context.Context, f Filter, now time.Time) (int64, error) {
	q := filterQuery(f)
	if b.mem == nil {
		res, err := b.c.UpdateMany(ctx, q, requeue(now))
		if err != nil {
			return 0, err
		}
		return res.ModifiedCount, nil
	}
	// Exclusive: finished jobs are not in the schedule and nothing else in
	// this process changes them, so the ids read under the lock are exactly
	// the ones the update moves.
	b.mem.mu.Lock()
	defer b.mem.mu.Unlock()
	cur, err := b.c.Find(ctx, q, options.Find().SetProjection(bson.D{
		{Key: "target", Value: 1}, {Key: "createdAt", Value: 1}, {Key: "chatKey", Value: 1}, {Key: "seq", Value: 1},
	}))
	if err != nil {
		return 0, err
	}
	var docs []scheduleDoc
	if err := cur.All(ctx, &docs); err != nil {
		return 0, err
	}
	if len(docs) == 0 {
		return 0, nil
	}
	if _, err := b.c.UpdateMany(ctx, q, requeue(now)); err != nil {
		return 0, err
	}
	for _, d := range docs {
		b.mem.put(d.ID, d.Target, d.order(), StatePending, now, d.CreatedAt, "")
	}
	return int64(len(docs)), nil
}

// Purge matches createdAt too — implied, as a job is updated after it is
// created — so the state_created_at_id index bounds the scan.
func (b *mongoBackend) Purge(ctx context.Context, before time.Time) (int64, error) {
	res, err := b.c.DeleteMany(ctx, bson.D{
		{Key: "state", Value: StateDone},
		{Key: "createdAt", Value: bson.D{{Key: "$lt", Value: before}}},
		{Key: "updatedAt", Value: bson.D{{Key: "$lt", Value: before}}},
	})
	if err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}

func (b *mongoBackend) Stats(ctx context.Context) (*Stats, error) {
	cur, err := b.c.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: bson.D{{Key: "state", Value: "$state"}, {Key: "target", Value: "$target"}}},
			{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
		}}},
	})
	if err != nil {
		return nil, err
	}
	var rows []struct {
		ID struct {
			State  State  `bson:"state"`
			Target string `bson:"target"`
		} `bson:"_id"`
		N int `bson:"n"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, err
	}
	st := &Stats{Depth: map[State]map[string]int{}}
	for _, r := range rows {
		st.add(r.ID.State, r.ID.Target, r.N)
	}
	if b.mem != nil {
		b.mem.mu.Lock()
		st.OldestPending = b.mem.oldestPending()
		b.mem.mu.Unlock()
		return st, nil
	}
	var oldest struct {
		CreatedAt time.Time `bson:"createdAt"`
	}
	err = b.c.FindOne(ctx, bson.D{{Key: "state", Value: StatePending}}, options.FindOne().
		SetSort(bson.D{{Key: "createdAt", Value: 1}}).
		SetProjection(bson.D{{Key: "createdAt", Value: 1}})).Decode(&oldest)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return nil, err
	default:
		st.OldestPending = oldest.CreatedAt
	}
	return st, nil
}
