package throttle_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/clock"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/core/throttle"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// t0 is mid-morning, so a day's sends do not cross midnight by accident.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func newCounts(t *testing.T, e storetest.Engine) throttle.Counts {
	if e == storetest.SQLite {
		return throttle.NewSQLiteCounts(storetest.NewSQLite(t, throttle.SQLiteSchema))
	}
	return throttle.NewMongoCounts(storetest.NewDatabase(t))
}

func TestCountsConformance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		c := newCounts(t, e)
		if n, err := c.Get(ctx, "a", "2026-03-01"); err != nil || n != 0 {
			t.Fatalf("absent count: %d, %v", n, err)
		}
		for _, add := range []struct {
			acct, day string
			n         int
		}{{"a", "2026-03-01", 1}, {"a", "2026-03-01", 2}, {"a", "2026-03-02", 5}, {"b", "2026-03-01", 7}} {
			if err := c.Add(ctx, add.acct, add.day, add.n); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []struct {
			acct, day string
			n         int
		}{{"a", "2026-03-01", 3}, {"a", "2026-03-02", 5}, {"b", "2026-03-01", 7}, {"b", "2026-03-02", 0}} {
			if n, err := c.Get(ctx, want.acct, want.day); err != nil || n != want.n {
				t.Fatalf("%s on %s: %d, %v; want %d", want.acct, want.day, n, err, want.n)
			}
		}
		if err := c.Purge(ctx, "2026-03-02"); err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct {
			acct, day string
			n         int
		}{{"a", "2026-03-01", 0}, {"b", "2026-03-01", 0}, {"a", "2026-03-02", 5}} {
			if n, err := c.Get(ctx, want.acct, want.day); err != nil || n != want.n {
				t.Fatalf("after the purge, %s on %s: %d, %v; want %d", want.acct, want.day, n, err, want.n)
			}
		}
	})
}

// accounts knows accounts by id: their driver and creation time.
type accounts map[string]session.AccountInfo

func (a accounts) GetAccount(_ context.Context, id string) (*session.AccountInfo, error) {
	info, ok := a[id]
	if !ok {
		return nil, session.ErrAccountNotFound
	}
	return &info, nil
}

// jitters hands out the given jitter values in turn, checking the bound
// the pacer asks for.
func jitters(t *testing.T, bound time.Duration, vals ...time.Duration) func(time.Duration) time.Duration {
	return func(max time.Duration) time.Duration {
		if max != bound {
			t.Errorf("jitter drawn below %s, want %s", max, bound)
		}
		if len(vals) == 0 {
			t.Fatal("more jitter drawn than expected")
		}
		v := vals[0]
		vals = vals[1:]
		return v
	}
}

func TestSlotsFollowThePaceWithJitter(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	p, err := throttle.New(throttle.Options{
		Policies: map[string]throttle.Policy{"whatsapp": {Interval: 10 * time.Second, Jitter: 5 * time.Second}},
		Accounts: accounts{"wa": {Driver: "whatsapp", CreatedAt: t0.AddDate(0, -1, 0)}, "wb": {Driver: "whatsapp"}, "s": {Driver: "sim"}},
		Clock:    clk,
		Jitter:   jitters(t, 5*time.Second, 2*time.Second, 0, 5*time.Second, time.Second, 3*time.Second, 4*time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	reserve := func(acct string) time.Time {
		t.Helper()
		at, err := p.Reserve(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	// A burst of four: the first at once, then a gap of 10 s plus jitter each.
	for i, want := range []time.Duration{0, 12 * time.Second, 22 * time.Second, 37 * time.Second} {
		if at := reserve("wa"); !at.Equal(t0.Add(want)) {
			t.Fatalf("slot %d at +%s, want +%s", i, at.Sub(t0), want)
		}
	}
	// Another account is paced on its own.
	if at := reserve("wb"); !at.Equal(t0) {
		t.Fatalf("other account's first slot at +%s, want now", at.Sub(t0))
	}
	// An account of an unpaced driver always goes now.
	for range 3 {
		if at := reserve("s"); !at.Equal(t0) {
			t.Fatalf("sim slot at +%s, want now", at.Sub(t0))
		}
	}
	// Once the queue has drained, a send goes at once.
	clk.Advance(time.Hour)
	if at := reserve("wa"); !at.Equal(t0.Add(time.Hour)) {
		t.Fatalf("slot after an idle hour at +%s, want now", at.Sub(t0))
	}
	if _, err := p.Reserve(ctx, "nobody"); !errors.Is(err, session.ErrAccountNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
}

// TestAccountOverride: an account configured to pace differently keeps
// its own interval and cap while its driver's other accounts keep the
// driver's.
func TestAccountOverride(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	p, err := throttle.New(throttle.Options{
		Policies: map[string]throttle.Policy{"whatsapp": {Interval: 10 * time.Second, DailyCap: 100}},
		Override: func(id string, driver throttle.Policy) throttle.Policy {
			if id == "veteran" {
				driver.Interval, driver.DailyCap = time.Second, 2
			}
			return driver
		},
		Accounts: accounts{"veteran": {Driver: "whatsapp"}, "plain": {Driver: "whatsapp"}},
		Clock:    clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{0, time.Second} {
		if at, err := p.Reserve(ctx, "veteran"); err != nil || !at.Equal(t0.Add(want)) {
			t.Fatalf("veteran's slot %d at +%s (%v), want +%s", i, at.Sub(t0), err, want)
		}
	}
	if _, err := p.Reserve(ctx, "veteran"); !errors.Is(err, throttle.ErrDailyCap) {
		t.Fatalf("veteran's third send: %v, want its own cap of 2", err)
	}
	for i, want := range []time.Duration{0, 10 * time.Second, 20 * time.Second} {
		if at, err := p.Reserve(ctx, "plain"); err != nil || !at.Equal(t0.Add(want)) {
			t.Fatalf("plain's slot %d at +%s (%v), want +%s", i, at.Sub(t0), err, want)
		}
	}
}

func TestDailyCapAndWarmUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		counts := newCounts(t, e)
		clk := clock.NewFake(t0)
		accts := accounts{"new": {Driver: "whatsapp", CreatedAt: t0.Add(-time.Hour)}, "old": {Driver: "whatsapp", CreatedAt: t0.AddDate(-1, 0, 0)}}
		pacer := func() *throttle.Pacer {
			p, err := throttle.New(throttle.Options{
				// Day 1 of a new number: 2; day 2: 3; from then on the cap, 4.
				Policies: map[string]throttle.Policy{"whatsapp": {DailyCap: 4, WarmUp: []int{2, 3}}},
				Accounts: accts, Counts: counts, Clock: clk,
			})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		p := pacer()
		sends := func(acct string) int {
			t.Helper()
			for n := 0; ; n++ {
				at, err := p.Reserve(ctx, acct)
				var ce *throttle.CapError
				if errors.As(err, &ce) {
					if !errors.Is(err, throttle.ErrDailyCap) {
						t.Fatal("CapError is not ErrDailyCap")
					}
					midnight := time.Date(clk.Now().Year(), clk.Now().Month(), clk.Now().Day()+1, 0, 0, 0, 0, time.UTC)
					if !ce.Until.Equal(midnight) || ce.Cap != n {
						t.Fatalf("refusal %+v, want cap %d until %s", ce, n, midnight)
					}
					return n
				}
				if err != nil {
					t.Fatal(err)
				}
				if !at.Equal(clk.Now()) {
					t.Fatalf("unpaced slot at %s, want now", at)
				}
				if n > 10 {
					t.Fatal("no cap")
				}
			}
		}
		if n := sends("new"); n != 2 {
			t.Fatalf("day 1 of the new number: %d sends, want its warm-up cap 2", n)
		}
		if n := sends("old"); n != 4 {
			t.Fatalf("an old number: %d sends, want the daily cap 4", n)
		}
		// The counts are stored: a restarted daemon refuses as well.
		p = pacer()
		if _, err := p.Reserve(ctx, "new"); !errors.Is(err, throttle.ErrDailyCap) {
			t.Fatalf("after a restart: %v, want the cap", err)
		}
		clk.Set(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
		if n := sends("new"); n != 3 {
			t.Fatalf("day 2 of the new number: %d sends, want 3", n)
		}
		clk.Set(time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC))
		if n := sends("new"); n != 4 {
			t.Fatalf("day 3 of the new number: %d sends, want the daily cap 4", n)
		}
		if n, err := counts.Get(ctx, "new", "2026-03-02"); err != nil || n != 3 {
			t.Fatalf("stored count of day 2: %d, %v", n, err)
		}
	})
}

// TestAccountIsReadAgain: an account deleted and made anew under its id
// (a new number) gets its warm-up once the pacer reads it again.
func TestAccountIsReadAgain(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	accts := accounts{"x": {Driver: "whatsapp", CreatedAt: t0.AddDate(-1, 0, 0)}}
	p, err := throttle.New(throttle.Options{
		Policies: map[string]throttle.Policy{"whatsapp": {WarmUp: []int{2}}},
		Accounts: accts, Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := p.Reserve(ctx, "x"); err != nil {
			t.Fatalf("send %d of the old number: %v", i, err)
		}
	}
	accts["x"] = session.AccountInfo{Driver: "whatsapp", CreatedAt: t0}
	if _, err := p.Reserve(ctx, "x"); err != nil {
		t.Fatalf("right after the change: %v (the account is read again only later)", err)
	}
	clk.Advance(10 * time.Minute)
	if _, err := p.Reserve(ctx, "x"); !errors.Is(err, throttle.ErrDailyCap) {
		t.Fatalf("after the new account was read: %v, want its warm-up cap", err)
	}
}
