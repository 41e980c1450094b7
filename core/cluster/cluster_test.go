package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/clock"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// world is one database with a fixed account list and a shared fake clock.
type world struct {
	t        *testing.T
	db       *mongo.Database
	clk      *clock.Fake
	mu       sync.Mutex
	accounts []string
	events   []string // "start:inst:acct", "stop:inst:acct"
}

func newWorld(t *testing.T, accounts ...string) *world {
	return &world{t: t, db: storetest.NewDatabase(t), clk: clock.NewFake(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)), accounts: accounts}
}

func (w *world) member(id string) *Cluster {
	c := New(Options{
		DB: w.db, InstanceID: id, URL: "http://" + id, Version: "test",
		TTL: 10 * time.Second, Renew: 3 * time.Second, Margin: 2 * time.Second,
		Clock: w.clk,
		Accounts: func(context.Context) ([]string, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			return slices.Clone(w.accounts), nil
		},
		Start: func(_ context.Context, acct string) { w.record("start:" + id + ":" + acct) },
		Stop:  func(_ context.Context, acct string) { w.record("stop:" + id + ":" + acct) },
	})
	// Hooks on, as under Run, without Run's timer loop: the test ticks.
	c.running = true
	if err := c.EnsureIndexes(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *world) record(e string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, e)
}

func (w *world) saw(e string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.events, e)
}

func tick(t *testing.T, cs ...*Cluster) {
	t.Helper()
	for _, c := range cs {
		if err := c.Tick(context.Background()); err != nil {
			t.Fatalf("tick %s: %v", c.ID(), err)
		}
	}
}

func (w *world) lease(id string) leaseDoc {
	w.t.Helper()
	var l leaseDoc
	if err := w.db.Collection(LeasesCollection).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&l); err != nil {
		w.t.Fatalf("lease %s: %v", id, err)
	}
	return l
}

func TestLeaseAcquireRenewExpireTakeover(t *testing.T) {
	w := newWorld(t, "acct")
	a := w.member("a")
	tick(t, a)
	f, err := a.Guard("acct")
	if err != nil || f != (Fence{Instance: "a", Epoch: 1}) {
		t.Fatalf("a after its first tick: fence %+v, %v; want a holding epoch 1", f, err)
	}
	if !w.saw("start:a:acct") {
		t.Fatal("acquiring did not start the session")
	}

	// Renewals keep the lease far beyond one TTL.
	for range 10 {
		w.clk.Advance(3 * time.Second)
		tick(t, a)
	}
	if _, err := a.Guard("acct"); err != nil {
		t.Fatalf("a renewing every 3 s lost its lease: %v", err)
	}

	// b joins; placement may move the account, but only by a release
	// that b then takes: never two holders.
	b := New(Options{DB: w.db, InstanceID: "b", TTL: 10 * time.Second, Renew: 3 * time.Second, Margin: 2 * time.Second, Clock: w.clk,
		Accounts: func(context.Context) ([]string, error) { return []string{"acct"}, nil }})
	for range 3 {
		tick(t, a, b)
		if a.Owns("acct") && b.Owns("acct") {
			t.Fatal("two daemons hold one account")
		}
	}
	holder, other := a, b
	if b.Owns("acct") {
		holder, other = b, a
	}
	before := w.lease("acct")
	if before.Owner != holder.ID() {
		t.Fatalf("lease owner %q, want %q", before.Owner, holder.ID())
	}

	// The holder stops ticking (dies or is paused). Before its lease
	// expires in the store, its own deadline has passed: it refuses writes.
	w.clk.Advance(8 * time.Second) // last renewal + TTL − margin
	if _, err := holder.Guard("acct"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("holder past its local deadline: Guard = %v, want ErrNotOwner", err)
	}
	tick(t, other)
	if other.Owns("acct") {
		t.Fatal("the other daemon took over a lease that had not expired in the store")
	}
	w.clk.Advance(3 * time.Second)
	tick(t, other)
	f, err = other.Guard("acct")
	if err != nil {
		t.Fatalf("the other daemon did not take over the expired lease: %v", err)
	}
	if f.Epoch != before.Epoch+1 {
		t.Fatalf("takeover epoch %d, want %d", f.Epoch, before.Epoch+1)
	}
	if h := w.lease("acct").History; len(h) < 2 || h[len(h)-1].Epoch != f.Epoch || h[len(h)-1].Owner != other.ID() || h[len(h)-2].Epoch != before.Epoch {
		t.Fatalf("lease history %+v, want it to end with epoch %d then %d (%s)", h, before.Epoch, f.Epoch, other.ID())
	}

	// The old holder wakes up: it learns it lost the lease and cannot take
	// it back while the new holder renews.
	tick(t, holder)
	if holder.Owns("acct") {
		t.Fatal("the woken holder owns the account again")
	}
	if got := w.lease("acct"); got.Owner != other.ID() || got.Epoch != f.Epoch {
		t.Fatalf("lease after wake-up %+v, want owner %s epoch %d", got, other.ID(), f.Epoch)
	}
}

// TestLocalDeadlineStopsSessionBeforeExpiry: a daemon whose renewals fail
// (the store unreachable) stops the session by its local deadline, before
// the lease has expired for the others.
func TestLocalDeadlineStopsSessionBeforeExpiry(t *testing.T) {
	w := newWorld(t, "acct")
	a := w.member("a")
	tick(t, a)
	expires := w.lease("acct").ExpiresAt

	// Every tick from now fails: its context is already over.
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	w.clk.Advance(3 * time.Second)
	if err := a.Tick(dead); err == nil {
		t.Fatal("a tick against an unreachable store succeeded")
	}
	if _, err := a.Guard("acct"); err != nil {
		t.Fatalf("guard refused before the deadline: %v", err)
	}
	w.clk.Advance(5 * time.Second) // 8 s after the last successful renewal start
	deadline := time.Now().Add(10 * time.Second)
	for !w.saw("stop:a:acct") {
		if time.Now().After(deadline) {
			t.Fatal("the watchdog did not stop the session at the local deadline")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !w.clk.Now().Before(expires) {
		t.Fatalf("session stopped at %v, not before the lease expired (%v)", w.clk.Now(), expires)
	}
	if _, err := a.Guard("acct"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Guard after the deadline = %v, want ErrNotOwner", err)
	}
}

func TestPlacementSpreadsAndMovesOnlyChangedAccounts(t *testing.T) {
	accounts := make([]string, 30)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("acct%02d", i)
	}
	w := newWorld(t, accounts...)
	ms := []*Cluster{w.member("d1"), w.member("d2"), w.member("d3")}
	settle := func(ms []*Cluster) map[string]string {
		t.Helper()
		for range 6 {
			tick(t, ms...)
			w.clk.Advance(3 * time.Second)
		}
		owner := map[string]string{}
		for _, m := range ms {
			for _, acct := range m.Held() {
				if prev, dup := owner[acct]; dup {
					t.Fatalf("%s held by %s and %s", acct, prev, m.ID())
				}
				owner[acct] = m.ID()
			}
		}
		if len(owner) != len(accounts) {
			t.Fatalf("%d of %d accounts placed: %v", len(owner), len(accounts), owner)
		}
		return owner
	}
	three := settle(ms)
	counts := map[string]int{}
	for _, in := range three {
		counts[in]++
	}
	for _, m := range ms {
		if n := counts[m.ID()]; n < 4 || n > 16 {
			t.Fatalf("placement over 3 instances: %v; want each near 10", counts)
		}
	}

	// A fourth joins: only the accounts it wins move, all to it.
	d4 := w.member("d4")
	four := settle(append(slices.Clone(ms), d4))
	moved := 0
	for acct, in := range four {
		if in != three[acct] {
			moved++
			if in != "d4" {
				t.Fatalf("%s moved from %s to %s on d4's join", acct, three[acct], in)
			}
		}
	}
	if moved == 0 || moved > 15 {
		t.Fatalf("%d accounts moved on a join; want some, about a quarter", moved)
	}

	// d2 leaves (stops ticking): only its accounts move.
	rest := []*Cluster{ms[0], ms[2], d4}
	after := settle(rest)
	for acct, in := range after {
		if four[acct] != "d2" && in != four[acct] {
			t.Fatalf("%s moved from %s to %s though d2 did not hold it", acct, four[acct], in)
		}
	}
}

func TestWinnerIsStable(t *testing.T) {
	ins := []string{"x", "y", "z"}
	for i := range 100 {
		acct := fmt.Sprintf("a%d", i)
		w := Winner(acct, ins)
		if w2 := Winner(acct, []string{"z", "x", "y"}); w2 != w {
			t.Fatalf("winner of %s depends on list order: %s vs %s", acct, w, w2)
		}
		// Removing a loser never changes the winner.
		var without []string
		for _, in := range ins {
			if in != w {
				without = append(without, in)
			}
		}
		if Winner(acct, append(without[:1:1], w)) != w {
			t.Fatalf("winner of %s changed when a loser left", acct)
		}
	}
	if Winner("a", nil) != "" {
		t.Fatal("winner among no instances")
	}
}

// TestTakeoverRaceHasOneWinner: daemons racing to take over expired
// leases on a server whose conditional updates are atomic (checked
// first) — exactly one wins each, under a new epoch.
func TestTakeoverRaceHasOneWinner(t *testing.T) {
	ctx := context.Background()
	db := storetest.NewAtomicDatabase(t)
	if err := storetest.ProbeAtomicUpdates(ctx, db, storetest.ProbeOptions{}); err != nil {
		t.Fatalf("the test server's conditional updates are not atomic: %v", err)
	}
	clk := clock.NewFake(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	member := func(id string) *Cluster {
		return New(Options{DB: db, InstanceID: id, TTL: 10 * time.Second, Renew: 3 * time.Second, Clock: clk,
			Accounts: func(context.Context) ([]string, error) { return []string{"acct"}, nil }})
	}
	const racers = 8
	for round := range 10 {
		id := fmt.Sprintf("acct%d", round)
		// An expired lease of a dead daemon, at epoch 5.
		exp := wall(clk.Now().Add(-time.Second))
		if _, err := db.Collection(LeasesCollection).InsertOne(ctx, leaseDoc{Account: id, Owner: "dead", Epoch: 5, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		l := &leaseDoc{Account: id, Owner: "dead", Epoch: 5, ExpiresAt: exp}
		var wg sync.WaitGroup
		won := make(chan string, racers)
		for i := range racers {
			c := member(fmt.Sprintf("r%d", i))
			wg.Go(func() {
				if c.acquire(ctx, clk.Now(), id, l) {
					won <- c.ID()
				}
			})
		}
		wg.Wait()
		close(won)
		var winners []string
		for w := range won {
			winners = append(winners, w)
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d daemons took over one lease: %v", round, len(winners), winners)
		}
		var got leaseDoc
		if err := db.Collection(LeasesCollection).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.Owner != winners[0] || got.Epoch != 6 {
			t.Fatalf("round %d: lease %+v, want owner %s at epoch 6", round, got, winners[0])
		}
	}
}
