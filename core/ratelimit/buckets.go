// Package ratelimit limits requests with token buckets: one set of buckets
// per scope (reads, sends, management) for each client address and each API
// key, and a small bucket per address that failed authentications drain.
// Buckets that have refilled are forgotten, so memory stays bounded however
// many addresses call.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/wildcathub/wildcat/core/clock"
)

// Limit is one bucket's shape: Burst requests at once, refilled at
// PerMinute. A zero PerMinute means no limit.
type Limit struct {
	PerMinute int
	Burst     int
}

// Off reports a limit that lets everything through.
func (l Limit) Off() bool { return l.PerMinute <= 0 }

func (l Limit) rate() rate.Limit { return rate.Limit(float64(l.PerMinute) / 60) }

func (l Limit) burst() int { return max(l.Burst, 1) }

// Decision is the outcome of taking a token, with what the RateLimit
// headers report.
type Decision struct {
	Allowed bool
	// Limit is the bucket's size and Remaining the whole tokens left.
	Limit, Remaining int
	// Reset is when the bucket is full again; RetryAfter, for a refusal,
	// when the next token is there.
	Reset, RetryAfter time.Duration
}

// DefaultMaxKeys bounds a bucket set: past it, refilled buckets are swept
// at once and, if that is not enough, arbitrary ones are dropped.
const DefaultMaxKeys = 100_000

// sweepEvery is how often (by the clock) refilled buckets are forgotten.
const sweepEvery = time.Minute

// Buckets is a set of token buckets of one Limit, one per key.
type Buckets struct {
	lim     Limit
	clk     clock.Clock
	maxKeys int

	mu        sync.Mutex
	m         map[string]*rate.Limiter
	lastSweep time.Time
}

// NewBuckets makes an empty set; maxKeys <= 0 means DefaultMaxKeys.
func NewBuckets(lim Limit, clk clock.Clock, maxKeys int) *Buckets {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Buckets{lim: lim, clk: clk, maxKeys: maxKeys, m: map[string]*rate.Limiter{}, lastSweep: clk.Now()}
}

// Take spends one token of key's bucket, or reports when one will be there.
func (b *Buckets) Take(key string) Decision {
	if b.lim.Off() {
		return Decision{Allowed: true}
	}
	now := b.clk.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.bucket(key, now)
	ok := l.AllowN(now, 1)
	return b.decide(l, now, ok)
}

// Empty reports whether key's bucket holds less than one token, without
// spending any; the decision says until when.
func (b *Buckets) Empty(key string) (bool, Decision) {
	if b.lim.Off() {
		return false, Decision{Allowed: true}
	}
	now := b.clk.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.m[key]
	if !ok {
		return false, Decision{Allowed: true, Limit: b.lim.burst(), Remaining: b.lim.burst()}
	}
	d := b.decide(l, now, l.TokensAt(now) >= 1)
	return !d.Allowed, d
}

// Len is how many buckets are kept.
func (b *Buckets) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

func (b *Buckets) bucket(key string, now time.Time) *rate.Limiter {
	if now.Sub(b.lastSweep) >= sweepEvery || len(b.m) >= b.maxKeys {
		b.sweep(now)
	}
	l, ok := b.m[key]
	if !ok {
		l = rate.NewLimiter(b.lim.rate(), b.lim.burst())
		// A new bucket starts full as of now (not as of the zero time).
		l.SetBurstAt(now, b.lim.burst())
		b.m[key] = l
	}
	return l
}

// sweep forgets full buckets (a full bucket behaves as a new one) and, if
// the set is still at its bound, drops arbitrary ones: under a flood of new
// addresses memory wins over exactness.
func (b *Buckets) sweep(now time.Time) {
	b.lastSweep = now
	full := float64(b.lim.burst())
	for k, l := range b.m {
		if l.TokensAt(now) >= full {
			delete(b.m, k)
		}
	}
	for k := range b.m {
		if len(b.m) < b.maxKeys*9/10 {
			break
		}
		delete(b.m, k)
	}
}

func (b *Buckets) decide(l *rate.Limiter, now time.Time, ok bool) Decision {
	tokens := l.TokensAt(now)
	perSec := float64(b.lim.rate())
	d := Decision{Allowed: ok, Limit: b.lim.burst(), Remaining: max(int(math.Floor(tokens)), 0)}
	d.Reset = seconds((float64(b.lim.burst()) - tokens) / perSec)
	if !ok {
		d.RetryAfter = seconds((1 - tokens) / perSec)
	}
	return d
}

// seconds turns a wait in seconds into a duration, rounded up to whole
// seconds (the headers' unit), never negative.
func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(s-1e-9)) * time.Second
}
