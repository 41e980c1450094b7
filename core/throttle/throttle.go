// Package throttle paces an account's outgoing messages so it does not send
// like a machine: a minimum gap between two sends with random jitter on
// top, a daily cap, and smaller caps in the first days of a new number
// (warm-up). Every path that sends — REST, rule replies, plugin sends —
// reserves its slot here; the slot says when the send may go. The daily
// counts are stored (both engines), so a restart does not reset them.
package throttle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wildcathub/wildcat/core/clock"
	"github.com/wildcathub/wildcat/core/session"
)

// Policy is how one kind of account is paced.
type Policy struct {
	// Interval is the least time between two sends of one account.
	Interval time.Duration
	// Jitter is the most random time added to each gap (uniform in
	// [0, Jitter]), so gaps never repeat exactly.
	Jitter time.Duration
	// DailyCap is the most sends of one account per UTC day; 0 means none.
	DailyCap int
	// WarmUp are the caps of the first days after the account was created
	// (day 1, day 2, …); a later day has only DailyCap.
	WarmUp []int
}

// Off reports a policy that lets every send go at once.
func (p Policy) Off() bool {
	return p.Interval <= 0 && p.Jitter <= 0 && p.DailyCap <= 0 && len(p.WarmUp) == 0
}

// capOn is the cap of the day that starts day days after creation (0 is
// the day of creation); 0 means none.
func (p Policy) capOn(day int) int {
	c := p.DailyCap
	if day >= 0 && day < len(p.WarmUp) && p.WarmUp[day] > 0 && (c == 0 || p.WarmUp[day] < c) {
		c = p.WarmUp[day]
	}
	return c
}

// CapError is the refusal of a send past the account's cap for the day.
type CapError struct {
	AccountID string
	Cap       int
	// Until is when the next day's sends start, RetryAfter how long that
	// is from the refusal.
	Until      time.Time
	RetryAfter time.Duration
}

func (e *CapError) Error() string {
	return fmt.Sprintf("account %s reached its cap of %d messages for the day; sends resume at %s",
		e.AccountID, e.Cap, e.Until.UTC().Format(time.RFC3339))
}

// ErrDailyCap matches every *CapError.
var ErrDailyCap = errors.New("daily send cap reached")

// Is makes errors.Is(err, ErrDailyCap) true.
func (e *CapError) Is(target error) bool { return target == ErrDailyCap }

// Accounts tells an account's driver and age; the session Manager does.
type Accounts interface {
	GetAccount(ctx context.Context, id string) (*session.AccountInfo, error)
}

// Counts keeps how many sends each account made per day (day is
// YYYY-MM-DD, UTC).
type Counts interface {
	// Add adds n to the account's count of day.
	Add(ctx context.Context, accountID, day string, n int) error
	// Get reads it (0 when none was stored).
	Get(ctx context.Context, accountID, day string) (int, error)
	// Purge deletes the counts of days before day.
	Purge(ctx context.Context, before string) error
}

// Options configures a Pacer.
type Options struct {
	// Policies by driver name ("whatsapp", "sim"); a driver missing here
	// is not paced.
	Policies map[string]Policy
	// Override, when set, turns an account's driver policy into its own
	// (accounts configured to pace differently).
	Override func(accountID string, driver Policy) Policy
	Accounts Accounts
	Counts   Counts
	Clock    clock.Clock
	// Jitter draws a random duration in [0, max]; nil uses math/rand.
	Jitter func(max time.Duration) time.Duration
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Pacer hands out send slots.
type Pacer struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex
	accounts map[string]*account

	queued  *prometheus.GaugeVec
	waits   prometheus.Histogram
	refused *prometheus.CounterVec
}

// account is one account's pacing state. Its mutex orders its
// reservations; the Pacer's only guards the map.
type account struct {
	mu       sync.Mutex
	loadedAt time.Time // zero until loaded
	policy   Policy
	created  time.Time
	next     time.Time // the earliest time of the next slot
	day      string    // the day count counts
	count    int
}

// accountRefresh is how long an account's driver and creation time are
// trusted before they are read again (an account deleted and made anew
// under its id gets its own warm-up).
const accountRefresh = 10 * time.Minute

// New makes a Pacer.
func New(o Options) (*Pacer, error) {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Jitter == nil {
		o.Jitter = func(max time.Duration) time.Duration { return time.Duration(rand.Int64N(int64(max) + 1)) }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pacer{o: o, log: o.Logger, accounts: map[string]*account{},
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wildcat_send_queued",
			Help: "Sends accepted and waiting for their paced slot, by account."}, []string{"account"}),
		waits: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wildcat_send_throttle_wait_seconds",
			Help:    "How long each paced send had to wait for its slot when it was accepted.",
			Buckets: []float64{0, 1, 5, 15, 30, 60, 300, 900, 3600}}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wildcat_send_refused_total",
			Help: "Sends refused because the account reached its daily cap, by account."}, []string{"account"}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{p.queued, p.waits, p.refused} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("throttle metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Day is the UTC day of t, as counts are kept.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func nextDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// Reserve books the account's next slot and returns its time (now, or
// later when the pace makes the send wait). Past the day's cap it books
// nothing and returns a *CapError. An account whose driver is not paced
// always gets now, with nothing stored.
func (p *Pacer) Reserve(ctx context.Context, accountID string) (time.Time, error) {
	a, err := p.account(ctx, accountID)
	if err != nil {
		return time.Time{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := p.o.Clock.Now()
	if a.policy.Off() {
		return now, nil
	}
	at := now
	if a.next.After(at) {
		at = a.next
	}
	day := Day(at)
	if a.day != day {
		n := 0
		if p.o.Counts != nil {
			if n, err = p.o.Counts.Get(ctx, accountID, day); err != nil {
				return time.Time{}, fmt.Errorf("read the send count of %s: %w", accountID, err)
			}
		}
		a.day, a.count = day, n
	}
	age := int(at.Sub(a.created) / (24 * time.Hour))
	if c := a.policy.capOn(age); c > 0 && a.count >= c {
		p.refused.WithLabelValues(accountID).Inc()
		until := nextDay(at)
		return time.Time{}, &CapError{AccountID: accountID, Cap: c, Until: until, RetryAfter: until.Sub(now)}
	}
	if p.o.Counts != nil {
		if err := p.o.Counts.Add(ctx, accountID, day, 1); err != nil {
			return time.Time{}, fmt.Errorf("store the send count of %s: %w", accountID, err)
		}
	}
	a.count++
	gap := a.policy.Interval
	if a.policy.Jitter > 0 {
		gap += p.o.Jitter(a.policy.Jitter)
	}
	a.next = at.Add(gap)
	p.waits.Observe(at.Sub(now).Seconds())
	return at, nil
}

// account is the state of id, loaded on first use and refreshed every
// accountRefresh: a send rarely pays for a read of its account.
func (p *Pacer) account(ctx context.Context, id string) (*account, error) {
	p.mu.Lock()
	a, ok := p.accounts[id]
	if !ok {
		a = &account{}
		p.accounts[id] = a
	}
	p.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	now := p.o.Clock.Now()
	if !a.loadedAt.IsZero() && now.Sub(a.loadedAt) < accountRefresh {
		return a, nil
	}
	info, err := p.o.Accounts.GetAccount(ctx, id)
	if err != nil {
		return nil, err
	}
	policy := p.o.Policies[info.Driver]
	if p.o.Override != nil {
		policy = p.o.Override(id, policy)
	}
	a.policy, a.created, a.loadedAt = policy, info.CreatedAt, now
	return a, nil
}

// Forget drops what the Pacer knows of an account (deleted): a new
// account of the same id starts its warm-up afresh.
func (p *Pacer) Forget(id string) {
	p.mu.Lock()
	delete(p.accounts, id)
	p.mu.Unlock()
	p.queued.DeleteLabelValues(id)
}

// Queued counts sends waiting for their slot (delta +1 when one is
// scheduled, -1 when it goes or is given up).
func (p *Pacer) Queued(accountID string, delta int) {
	p.queued.WithLabelValues(accountID).Add(float64(delta))
}

// PurgeOld deletes stored counts older than a week.
func (p *Pacer) PurgeOld(ctx context.Context) error {
	if p.o.Counts == nil {
		return nil
	}
	return p.o.Counts.Purge(ctx, Day(p.o.Clock.Now().Add(-7*24*time.Hour)))
}
