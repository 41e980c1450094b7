// Package cluster lets several daemons share one MongoDB database: each
// daemon announces itself in the instances collection, and each account
// runs on exactly one of them, the holder of the account's lease (one
// document per account in the leases collection).
//
// A lease has an owner, an expiry and a fencing epoch that grows at every
// takeover. Its owner renews it every renew interval; a lease that was not
// renewed for its TTL may be taken over, with a conditional update on
// (epoch, expiry) that exactly one daemon wins on MongoDB. A daemon that
// cannot renew stops the account's session before the lease can have
// expired for the others: its local deadline is the start of its last
// successful renewal plus the TTL minus a safety margin, measured on the
// monotonic clock, which keeps running while the process is paused
// (SIGSTOP) — so a daemon that wakes up finds its deadline passed and
// refuses the account's writes (Guard) before it could write over the new
// owner.
//
// Accounts are placed by rendezvous hashing over the live instances: on a
// join or leave only the accounts whose winner changed move, each released
// by its old owner (a bounded number per tick) and acquired by its new one.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/clock"
)

// Collections this package keeps.
const (
	InstancesCollection = "instances"
	LeasesCollection    = "leases"
)

// Errors of the cluster.
var (
	// ErrNotOwner: this daemon does not hold the account's lease (or its
	// local deadline has passed); the write is refused.
	ErrNotOwner = errors.New("this daemon does not hold the account's lease")
	// ErrNoOwner: no live daemon holds the account's lease (yet).
	ErrNoOwner = errors.New("no live daemon holds the account's lease")
)

// Fence is what a guarded write records: the instance that made it and the
// lease epoch it held.
type Fence struct {
	Instance string `bson:"instance" json:"instance"`
	Epoch    int64  `bson:"epoch" json:"epoch"`
}

// Options configures a Cluster.
type Options struct {
	DB *mongo.Database
	// InstanceID names this daemon; default hostname-pid-random.
	InstanceID string
	// URL is the REST base URL other daemons forward requests to.
	URL     string
	Version string
	// TTL is how long a lease (and an instance's heartbeat) lasts without
	// renewal; Renew is the interval of renewals. Defaults 10 s and 3 s.
	TTL, Renew time.Duration
	// Margin is taken off the local deadline, to cover clock skew between
	// daemons and a write in flight; default TTL/5.
	Margin time.Duration
	// MaxMoves bounds the leases this daemon releases to their new winner
	// per tick (rebalancing after a join); default 8. Taking over expired
	// leases (failover) is not bounded.
	MaxMoves int
	// Accounts lists the ids of every account (the accounts to place).
	Accounts func(ctx context.Context) ([]string, error)
	// Exists reports whether an account exists (Owner waits for the lease
	// of one that does).
	Exists func(ctx context.Context, accountID string) (bool, error)
	// Start and Stop run an account's session here; Stop must return
	// promptly (it runs before the local deadline).
	Start func(ctx context.Context, accountID string)
	Stop  func(ctx context.Context, accountID string)
	// Clock is the time source; nil is the system clock. Lease expiries
	// are wall-clock times compared across daemons; the local deadline is
	// compared with the same clock's readings, which for the system clock
	// carry the monotonic reading.
	Clock  clock.Clock
	Logger *slog.Logger
}

// held is a lease this daemon holds.
type held struct {
	epoch    int64
	deadline time.Time // local: renewal start + TTL − margin (monotonic)
}

// Cluster is this daemon's membership and its account leases.
type Cluster struct {
	opts  Options
	id    string
	clock clock.Clock
	log   *slog.Logger
	inst  *mongo.Collection
	lease *mongo.Collection

	started time.Time
	running bool // Run has begun: hooks are called

	tickMu sync.Mutex // one tick at a time

	mu       sync.Mutex
	peers    int // live instances at the last tick, this one included
	held     map[string]*held
	watchdog clock.Timer
	nudge    chan struct{}
	hooks    sync.WaitGroup
}

// New returns a Cluster; call EnsureIndexes, then Tick (the first
// placement, without hooks) and Run.
func New(opts Options) *Cluster {
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Second
	}
	if opts.Renew <= 0 {
		opts.Renew = 3 * time.Second
	}
	if opts.Margin <= 0 {
		opts.Margin = opts.TTL / 5
	}
	if opts.MaxMoves <= 0 {
		opts.MaxMoves = 8
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.InstanceID == "" {
		opts.InstanceID = DefaultInstanceID()
	}
	if opts.Start == nil {
		opts.Start = func(context.Context, string) {}
	}
	if opts.Stop == nil {
		opts.Stop = func(context.Context, string) {}
	}
	return &Cluster{
		opts: opts, id: opts.InstanceID, clock: opts.Clock, log: opts.Logger,
		inst: opts.DB.Collection(InstancesCollection), lease: opts.DB.Collection(LeasesCollection),
		started: opts.Clock.Now().UTC().Truncate(time.Millisecond),
		held:    map[string]*held{}, nudge: make(chan struct{}, 1),
	}
}

// DefaultInstanceID is hostname-pid-random: unique per process, readable in
// listings.
func DefaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "wildcatd"
	}
	return fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.IntN(1<<16))
}

// SetURL changes the URL announced at the next heartbeat (once the API
// listens and its port is known).
func (c *Cluster) SetURL(url string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opts.URL = url
}

// ID is this daemon's instance id.
func (c *Cluster) ID() string { return c.id }

// TTL is the lease TTL.
func (c *Cluster) TTL() time.Duration { return c.opts.TTL }

// EnsureIndexes creates the indexes of the queries below.
func (c *Cluster) EnsureIndexes(ctx context.Context) error {
	// Leases by owner (a daemon's leases); instances by expiry (the live
	// list and the clean-up). One index per command: FerretDB v1.24 panics
	// on several at once.
	for _, ix := range []struct {
		c    *mongo.Collection
		name string
		keys bson.D
	}{
		{c.lease, "owner", bson.D{{Key: "owner", Value: 1}}},
		{c.inst, "expires_at", bson.D{{Key: "expiresAt", Value: 1}}},
	} {
		if _, err := ix.c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: options.Index().SetName(ix.name)}); err != nil {
			return fmt.Errorf("create index %s on %s: %w", ix.name, ix.c.Name(), err)
		}
	}
	return nil
}

// leaseDoc is one account's lease.
type leaseDoc struct {
	Account    string    `bson:"_id"`
	Owner      string    `bson:"owner"` // "" once released
	Epoch      int64     `bson:"epoch"`
	ExpiresAt  time.Time `bson:"expiresAt"`
	AcquiredAt time.Time `bson:"acquiredAt"`
	RenewedAt  time.Time `bson:"renewedAt"`
	History    []Epoch   `bson:"history,omitempty"`
}

// Epoch is one holder of a lease in its history: the epoch, its owner and
// when it was acquired.
type Epoch struct {
	Epoch      int64     `bson:"epoch"`
	Owner      string    `bson:"owner"`
	AcquiredAt time.Time `bson:"acquiredAt"`
}

// historySize bounds a lease's history.
const historySize = 32

// instanceDoc is one daemon's announcement.
type instanceDoc struct {
	ID          string    `bson:"_id"`
	URL         string    `bson:"url"`
	Version     string    `bson:"version"`
	StartedAt   time.Time `bson:"startedAt"`
	HeartbeatAt time.Time `bson:"heartbeatAt"`
	ExpiresAt   time.Time `bson:"expiresAt"`
	Accounts    []string  `bson:"accounts"`
}

// Instance is a live daemon, as GET /v1/instances shows it.
type Instance struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Version     string    `json:"version"`
	StartedAt   time.Time `json:"startedAt"`
	HeartbeatAt time.Time `json:"heartbeatAt"`
	Accounts    []string  `json:"accounts"`
	// Self is true for the daemon answering.
	Self bool `json:"self"`
}

// Guard allows a write of the account's session: the fence to record when
// this daemon holds the account's lease and its local deadline has not
// passed, else ErrNotOwner.
func (c *Cluster) Guard(accountID string) (Fence, error) {
	now := c.clock.Now()
	c.mu.Lock()
	var (
		epoch    int64
		deadline time.Time
	)
	h := c.held[accountID]
	if h != nil {
		// Read under mu: renew moves the deadline of the same held value.
		epoch, deadline = h.epoch, h.deadline
	}
	c.mu.Unlock()
	if h == nil || !now.Before(deadline) {
		return Fence{}, fmt.Errorf("account %q: %w", accountID, ErrNotOwner)
	}
	return Fence{Instance: c.id, Epoch: epoch}, nil
}

// Owns reports whether Guard would allow the account's writes now.
func (c *Cluster) Owns(accountID string) bool {
	_, err := c.Guard(accountID)
	return err == nil
}

// Held lists the accounts whose lease this daemon holds, sorted.
func (c *Cluster) Held() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.held))
	for id := range c.held {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Live is how many daemons were live at the last tick, this one included.
func (c *Cluster) Live() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers
}

// Nudge asks Run for a tick now (an account was created, a forward is
// waiting for a lease).
func (c *Cluster) Nudge() {
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

// Run ticks every renew interval (with ±10 % jitter, so daemons started
// together do not write together) until ctx ends, then stops every session
// it runs and releases their leases so the other daemons take them at once.
func (c *Cluster) Run(ctx context.Context) {
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	for {
		tctx, cancel := context.WithTimeout(ctx, c.opts.Renew)
		if err := c.Tick(tctx); err != nil && ctx.Err() == nil {
			c.log.Warn("cluster tick failed", slog.Any("error", err))
		}
		cancel()
		wait := c.opts.Renew - c.opts.Renew/10 + rand.N(c.opts.Renew/5+1)
		t := make(chan struct{})
		timer := c.clock.AfterFunc(wait, func() { close(t) })
		select {
		case <-ctx.Done():
			timer.Stop()
			c.releaseAll()
			return
		case <-c.nudge:
			timer.Stop()
		case <-t:
		}
	}
}

// releaseAll stops every session of this daemon and hands its leases back
// (shutdown).
func (c *Cluster) releaseAll() {
	c.mu.Lock()
	hs := c.held
	c.held = map[string]*held{}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Renew)
	defer cancel()
	for id, h := range hs {
		c.opts.Stop(ctx, id)
		c.release(ctx, id, h.epoch)
	}
	c.hooks.Wait()
	if _, err := c.inst.DeleteOne(ctx, bson.D{{Key: "_id", Value: c.id}}); err != nil {
		c.log.Warn("instance not removed", slog.Any("error", err))
	}
}

// Tick is one round: renew this daemon's leases, heartbeat, read the live
// instances, then release the accounts that belong elsewhere and take the
// free ones that belong here. Before Run, it calls no hooks: the caller
// starts what Held reports.
func (c *Cluster) Tick(ctx context.Context) error {
	c.tickMu.Lock()
	defer c.tickMu.Unlock()
	start := c.clock.Now()
	c.expire(start)
	if err := c.renew(ctx, start); err != nil {
		return err
	}
	if err := c.heartbeat(ctx, start); err != nil {
		return err
	}
	live, err := c.liveIDs(ctx, start)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.peers = len(live)
	c.mu.Unlock()
	accounts, err := c.opts.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("list accounts: %w", err)
	}
	leases, err := c.leases(ctx)
	if err != nil {
		return err
	}
	c.place(ctx, start, live, accounts, leases)
	c.armWatchdog()
	// The instance document lists what this daemon holds after placing.
	_, err = c.inst.UpdateOne(ctx, bson.D{{Key: "_id", Value: c.id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "accounts", Value: c.Held()}}}})
	if err != nil {
		return fmt.Errorf("record held accounts: %w", err)
	}
	return nil
}

// expire gives up, locally, every lease whose deadline has passed: its
// session stops, and the lease is left to expire in the store (another
// daemon may already have taken it).
func (c *Cluster) expire(now time.Time) {
	c.mu.Lock()
	var lost []string
	for id, h := range c.held {
		if !now.Before(h.deadline) {
			lost = append(lost, id)
			delete(c.held, id)
		}
	}
	running := c.running
	c.mu.Unlock()
	for _, id := range lost {
		c.log.Warn("account lease not renewed in time; session stopped", slog.String("account", id))
		if running {
			ctx, cancel := context.WithTimeout(context.Background(), c.opts.Margin)
			c.opts.Stop(ctx, id)
			cancel()
		}
	}
}

// armWatchdog schedules expire at the earliest local deadline, so a daemon
// whose ticks hang on an unreachable store still stops in time.
func (c *Cluster) armWatchdog() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watchdog != nil {
		c.watchdog.Stop()
		c.watchdog = nil
	}
	var first time.Time
	for _, h := range c.held {
		if first.IsZero() || h.deadline.Before(first) {
			first = h.deadline
		}
	}
	if first.IsZero() {
		return
	}
	c.watchdog = c.clock.AfterFunc(first.Sub(c.clock.Now()), func() { c.expire(c.clock.Now()) })
}

// renew extends every lease this daemon holds, in two commands whatever
// their number (one update, one read back): a lease that is no longer
// ours (taken over) stops its session. A store error leaves the deadlines
// as they are.
func (c *Cluster) renew(ctx context.Context, start time.Time) error {
	c.mu.Lock()
	hs := make(map[string]int64, len(c.held))
	ids := make(bson.A, 0, len(c.held))
	for id, h := range c.held {
		hs[id] = h.epoch
		ids = append(ids, id)
	}
	c.mu.Unlock()
	if len(hs) == 0 {
		return nil
	}
	// The owner changes at every takeover by another daemon, so matching
	// the owner extends only leases nobody took.
	_, err := c.lease.UpdateMany(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "owner", Value: c.id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expiresAt", Value: wall(start.Add(c.opts.TTL))}, {Key: "renewedAt", Value: wall(start)}}}})
	if err != nil {
		return fmt.Errorf("renew leases: %w", err)
	}
	cur, err := c.lease.Find(ctx, bson.D{{Key: "owner", Value: c.id}}, options.Find().SetProjection(bson.D{{Key: "epoch", Value: 1}, {Key: "expiresAt", Value: 1}}))
	if err != nil {
		return fmt.Errorf("read renewed leases: %w", err)
	}
	var docs []leaseDoc
	if err := cur.All(ctx, &docs); err != nil {
		return fmt.Errorf("read renewed leases: %w", err)
	}
	ours := make(map[string]leaseDoc, len(docs))
	for _, d := range docs {
		ours[d.Account] = d
	}
	var lost []string
	c.mu.Lock()
	for id, epoch := range hs {
		h := c.held[id]
		if h == nil || h.epoch != epoch {
			continue // expired locally meanwhile
		}
		d, ok := ours[id]
		if !ok || d.Epoch != epoch || !d.ExpiresAt.Equal(wall(start.Add(c.opts.TTL))) {
			delete(c.held, id)
			lost = append(lost, id)
			continue
		}
		h.deadline = start.Add(c.opts.TTL - c.opts.Margin)
	}
	c.mu.Unlock()
	for _, id := range lost {
		c.log.Warn("account lease taken over; session stopped", slog.String("account", id), slog.Int64("epoch", hs[id]))
		c.stop(ctx, id)
	}
	return nil
}

func (c *Cluster) heartbeat(ctx context.Context, now time.Time) error {
	c.mu.Lock()
	url := c.opts.URL
	c.mu.Unlock()
	_, err := c.inst.UpdateOne(ctx, bson.D{{Key: "_id", Value: c.id}}, bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "url", Value: url},
			{Key: "version", Value: c.opts.Version},
			{Key: "startedAt", Value: c.started},
			{Key: "heartbeatAt", Value: wall(now)},
			{Key: "expiresAt", Value: wall(now.Add(c.opts.TTL))},
		}},
	}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// liveIDs lists the instances whose heartbeat has not expired, sorted, and
// removes the expired ones.
func (c *Cluster) liveIDs(ctx context.Context, now time.Time) ([]string, error) {
	docs, err := c.instances(ctx, now)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	if _, err := c.inst.DeleteMany(ctx, bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: wall(now)}}}}); err != nil {
		c.log.Debug("expired instances not removed", slog.Any("error", err))
	}
	return ids, nil
}

func (c *Cluster) instances(ctx context.Context, now time.Time) ([]instanceDoc, error) {
	cur, err := c.inst.Find(ctx, bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$gt", Value: wall(now)}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	var docs []instanceDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return docs, nil
}

func (c *Cluster) leases(ctx context.Context) (map[string]*leaseDoc, error) {
	cur, err := c.lease.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	var docs []*leaseDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	out := make(map[string]*leaseDoc, len(docs))
	for _, d := range docs {
		out[d.Account] = d
	}
	return out, nil
}

// place releases what belongs elsewhere (at most MaxMoves) and acquires
// what belongs here and is free.
func (c *Cluster) place(ctx context.Context, now time.Time, live, accounts []string, leases map[string]*leaseDoc) {
	exists := make(map[string]bool, len(accounts))
	for _, id := range accounts {
		exists[id] = true
	}
	// Leases of deleted accounts: the holder stops the session and drops
	// the lease; an expired one anyone may drop.
	for id, l := range leases {
		if exists[id] {
			continue
		}
		c.mu.Lock()
		h := c.held[id]
		if h != nil {
			delete(c.held, id)
		}
		c.mu.Unlock()
		if h != nil {
			c.stop(ctx, id)
			_, _ = c.lease.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "owner", Value: c.id}, {Key: "epoch", Value: h.epoch}})
		} else if !l.ExpiresAt.After(now) {
			_, _ = c.lease.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "epoch", Value: l.Epoch}, {Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: wall(now)}}}})
		}
	}
	moves := 0
	// Accounts in a random order: daemons that release and acquire
	// together do not all start with the same account.
	order := slices.Clone(accounts)
	rand.Shuffle(len(order), func(i, k int) { order[i], order[k] = order[k], order[i] })
	for _, id := range order {
		winner := Winner(id, live)
		c.mu.Lock()
		h := c.held[id]
		c.mu.Unlock()
		switch {
		case h != nil && winner != c.id && winner != "":
			if moves >= c.opts.MaxMoves {
				continue
			}
			moves++
			c.mu.Lock()
			delete(c.held, id)
			c.mu.Unlock()
			c.log.Info("account moves to another daemon", slog.String("account", id), slog.String("to", winner))
			c.stop(ctx, id)
			c.release(ctx, id, h.epoch)
		case h == nil && winner == c.id:
			if c.acquire(ctx, now, id, leases[id]) {
				c.start(ctx, id)
			}
		}
	}
}

// acquire takes the account's lease when it is free: missing, released or
// expired. The conditional update on (epoch, expiry) lets exactly one
// daemon win a takeover on MongoDB.
func (c *Cluster) acquire(ctx context.Context, now time.Time, id string, l *leaseDoc) bool {
	exp := wall(now.Add(c.opts.TTL))
	var epoch int64
	switch {
	case l == nil:
		epoch = 1
		_, err := c.lease.InsertOne(ctx, leaseDoc{Account: id, Owner: c.id, Epoch: epoch, ExpiresAt: exp, AcquiredAt: wall(now), RenewedAt: wall(now),
			History: []Epoch{{Epoch: epoch, Owner: c.id, AcquiredAt: wall(now)}}})
		if err != nil {
			if !mongo.IsDuplicateKeyError(err) {
				c.log.Warn("lease not created", slog.String("account", id), slog.Any("error", err))
			}
			return false
		}
	case l.Owner == c.id:
		// Ours in the store but not here (expired locally, or an earlier
		// process under the same id): take it again under a new epoch, so
		// writes of the old one are told apart.
		fallthrough
	case l.Owner == "" || !l.ExpiresAt.After(now):
		epoch = l.Epoch + 1
		filter := bson.D{{Key: "_id", Value: id}, {Key: "epoch", Value: l.Epoch}}
		if l.Owner != c.id && l.Owner != "" {
			filter = append(filter, bson.E{Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: wall(now)}}})
		}
		res, err := c.lease.UpdateOne(ctx, filter, bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "owner", Value: c.id}, {Key: "epoch", Value: epoch}, {Key: "expiresAt", Value: exp},
				{Key: "acquiredAt", Value: wall(now)}, {Key: "renewedAt", Value: wall(now)},
			}},
			// The recent epochs, so the store shows when each began (and
			// so ended the one before): a write recorded under epoch e
			// after epoch e+1 began would break fencing.
			{Key: "$push", Value: bson.D{{Key: "history", Value: bson.D{
				{Key: "$each", Value: bson.A{Epoch{Epoch: epoch, Owner: c.id, AcquiredAt: wall(now)}}},
				{Key: "$slice", Value: -historySize},
			}}}},
		})
		if err != nil {
			c.log.Warn("lease not taken over", slog.String("account", id), slog.Any("error", err))
			return false
		}
		if res.MatchedCount == 0 {
			return false
		}
	default:
		return false // held by a live lease elsewhere: it is released or expires first
	}
	c.mu.Lock()
	c.held[id] = &held{epoch: epoch, deadline: now.Add(c.opts.TTL - c.opts.Margin)}
	c.mu.Unlock()
	c.log.Info("account lease acquired", slog.String("account", id), slog.Int64("epoch", epoch))
	return true
}

// release hands a lease back so its winner takes it at once.
func (c *Cluster) release(ctx context.Context, id string, epoch int64) {
	now := wall(c.clock.Now())
	_, err := c.lease.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "owner", Value: c.id}, {Key: "epoch", Value: epoch}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "owner", Value: ""}, {Key: "expiresAt", Value: now}}}})
	if err != nil {
		c.log.Warn("lease not released; it expires instead", slog.String("account", id), slog.Any("error", err))
	}
}

// start and stop call the hooks once Run has begun.
func (c *Cluster) start(ctx context.Context, id string) {
	c.mu.Lock()
	running := c.running
	c.mu.Unlock()
	if running {
		c.opts.Start(ctx, id)
	}
}

func (c *Cluster) stop(ctx context.Context, id string) {
	c.mu.Lock()
	running := c.running
	c.mu.Unlock()
	if running {
		c.opts.Stop(ctx, id)
	}
}

// Owner says where the account's session runs: local when this daemon
// holds its lease, else the URL of the live daemon that does. An account
// without a live owner is waited for, up to wait (its lease is being
// placed or taken over), then ErrNoOwner. An account that does not exist
// is local: the handler answers for it.
func (c *Cluster) Owner(ctx context.Context, accountID string, wait time.Duration) (url string, local bool, err error) {
	deadline := c.clock.Now().Add(wait)
	for {
		if c.Owns(accountID) {
			return "", true, nil
		}
		url, err := c.remoteOwner(ctx, accountID)
		if err == nil {
			return url, false, nil
		}
		if !errors.Is(err, ErrNoOwner) {
			return "", false, err
		}
		if c.opts.Exists != nil {
			ok, err := c.opts.Exists(ctx, accountID)
			if err != nil {
				return "", false, err
			}
			if !ok {
				return "", true, nil
			}
		}
		if !c.clock.Now().Before(deadline) {
			return "", false, fmt.Errorf("account %q: %w", accountID, ErrNoOwner)
		}
		c.Nudge()
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", false, ctx.Err()
		case <-t.C:
		}
	}
}

// remoteOwner is the URL of the live daemon holding the account's lease.
func (c *Cluster) remoteOwner(ctx context.Context, accountID string) (string, error) {
	now := c.clock.Now()
	var l leaseDoc
	err := c.lease.FindOne(ctx, bson.D{{Key: "_id", Value: accountID}}).Decode(&l)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", ErrNoOwner
	}
	if err != nil {
		return "", fmt.Errorf("read lease of %s: %w", accountID, err)
	}
	if l.Owner == "" || l.Owner == c.id || !l.ExpiresAt.After(now) {
		return "", ErrNoOwner
	}
	var in instanceDoc
	err = c.inst.FindOne(ctx, bson.D{{Key: "_id", Value: l.Owner}, {Key: "expiresAt", Value: bson.D{{Key: "$gt", Value: wall(now)}}}}).Decode(&in)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && in.URL == "") {
		return "", ErrNoOwner
	}
	if err != nil {
		return "", fmt.Errorf("read instance %s: %w", l.Owner, err)
	}
	return in.URL, nil
}

// OwnerOf is the id of the live instance holding the account's lease; ""
// when none does.
func (c *Cluster) OwnerOf(ctx context.Context, accountID string) (string, error) {
	if c.Owns(accountID) {
		return c.id, nil
	}
	now := c.clock.Now()
	var l leaseDoc
	err := c.lease.FindOne(ctx, bson.D{{Key: "_id", Value: accountID}}).Decode(&l)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read lease of %s: %w", accountID, err)
	}
	if l.Owner == "" || l.Owner == c.id || !l.ExpiresAt.After(now) {
		return "", nil
	}
	return l.Owner, nil
}

// Instances lists the live daemons, sorted by id.
func (c *Cluster) Instances(ctx context.Context) ([]Instance, error) {
	docs, err := c.instances(ctx, c.clock.Now())
	if err != nil {
		return nil, err
	}
	out := make([]Instance, 0, len(docs))
	for _, d := range docs {
		accts := d.Accounts
		if accts == nil {
			accts = []string{}
		}
		out = append(out, Instance{ID: d.ID, URL: d.URL, Version: d.Version, StartedAt: d.StartedAt,
			HeartbeatAt: d.HeartbeatAt, Accounts: accts, Self: d.ID == c.id})
	}
	return out, nil
}

// wall drops the monotonic reading and keeps the milliseconds MongoDB
// stores, so a time written and read back compares equal.
func wall(t time.Time) time.Time { return t.Round(0).UTC().Truncate(time.Millisecond) }
