package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/wildcathub/wildcat/core/clock"
)

// Config shapes a Limiter.
type Config struct {
	// Scopes are the limits by route class ("reads", "sends",
	// "management"); each applies to every client address and, separately,
	// to every API key. A scope missing here is not limited.
	Scopes map[string]Limit
	// FailedAuth is the bucket per client address that each failed
	// authentication drains; while it is empty, every request from that
	// address is refused.
	FailedAuth Limit
	// ExemptLoopback lets loopback clients through unlimited.
	ExemptLoopback bool
	// MaxKeys bounds each bucket set (DefaultMaxKeys when 0).
	MaxKeys int
}

// Limiter holds the bucket sets.
type Limiter struct {
	cfg    Config
	addr   map[string]*Buckets
	key    map[string]*Buckets
	failed *Buckets
}

// New makes a Limiter on clk (clock.Real{} when nil).
func New(cfg Config, clk clock.Clock) *Limiter {
	if clk == nil {
		clk = clock.Real{}
	}
	l := &Limiter{cfg: cfg, addr: map[string]*Buckets{}, key: map[string]*Buckets{},
		failed: NewBuckets(cfg.FailedAuth, clk, cfg.MaxKeys)}
	for scope, lim := range cfg.Scopes {
		l.addr[scope] = NewBuckets(lim, clk, cfg.MaxKeys)
		l.key[scope] = NewBuckets(lim, clk, cfg.MaxKeys)
	}
	return l
}

// AddrKey is the bucket key of a client address: the IP without its port;
// IPv6 addresses by their /64, which one client usually holds whole.
func AddrKey(addr string) string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func (l *Limiter) exempt(addrKey string) bool {
	if !l.cfg.ExemptLoopback {
		return false
	}
	ip, err := netip.ParseAddr(addrKey)
	if err != nil {
		p, perr := netip.ParsePrefix(addrKey)
		if perr != nil {
			return false
		}
		ip = p.Addr()
	}
	// ::1's /64 is ::, which is no client's; only ::1 itself is loopback.
	return ip.IsLoopback() || addrKey == "::/64"
}

// Exempt reports whether requests from addr are not limited at all
// (ExemptLoopback).
func (l *Limiter) Exempt(addr string) bool { return l.exempt(AddrKey(addr)) }

// Address spends one token of the client address's bucket of scope.
func (l *Limiter) Address(scope, addr string) Decision {
	k := AddrKey(addr)
	b := l.addr[scope]
	if b == nil || l.exempt(k) {
		return Decision{Allowed: true}
	}
	return b.Take(k)
}

// Key spends one token of the API key's bucket of scope; an empty key
// (no key in use) is not limited here.
func (l *Limiter) Key(scope, key string) Decision {
	b := l.key[scope]
	if b == nil || key == "" {
		return Decision{Allowed: true}
	}
	return b.Take(key)
}

// FailedAuth records a failed authentication from addr: the authenticator
// calls it for every wrong, unknown, expired or revoked key.
func (l *Limiter) FailedAuth(addr string) Decision {
	k := AddrKey(addr)
	if l.exempt(k) {
		return Decision{Allowed: true}
	}
	return l.failed.Take(k)
}

// AuthBlocked reports whether addr has used up its failed authentications;
// the decision says when the next attempt is allowed.
func (l *Limiter) AuthBlocked(addr string) (bool, Decision) {
	k := AddrKey(addr)
	if l.exempt(k) {
		return false, Decision{Allowed: true}
	}
	return l.failed.Empty(k)
}

// Middleware puts a Limiter in front of handlers. Guard runs before
// authentication (failed-auth block and the client address's buckets),
// Keys after it (the key's buckets): an address that keeps failing to
// authenticate is turned away before its key is even checked.
type Middleware struct {
	Limiter *Limiter
	// ClientAddr is the request's client address (host or host:port).
	ClientAddr func(r *http.Request) string
	// KeyID names the API key the request authenticated with; "" for none.
	KeyID func(r *http.Request) string
	// Scope is the route class of the request; "" is not limited.
	Scope func(r *http.Request) string
	// Refuse writes a 429 answer; the Retry-After and RateLimit headers are
	// set already.
	Refuse func(w http.ResponseWriter, r *http.Request, d Decision, reason string)
}

// Guard refuses requests from an address whose failed-auth bucket is empty
// and those over the address's limit of their scope.
func (m Middleware) Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope := m.Scope(r)
		if scope == "" {
			next.ServeHTTP(w, r)
			return
		}
		addr := m.ClientAddr(r)
		if blocked, d := m.Limiter.AuthBlocked(addr); blocked {
			m.refuse(w, r, d, "too many failed authentications from this address")
			return
		}
		d := m.Limiter.Address(scope, addr)
		if !d.Allowed {
			m.refuse(w, r, d, "too many "+scope+" requests from this address")
			return
		}
		setHeaders(w.Header(), d)
		next.ServeHTTP(w, r)
	})
}

// Keys refuses requests over their API key's limit of their scope.
func (m Middleware) Keys(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope := m.Scope(r)
		key := ""
		if m.KeyID != nil {
			key = m.KeyID(r)
		}
		// An exempt (loopback) client is not limited by its key either.
		if scope == "" || key == "" || m.Limiter.Exempt(m.ClientAddr(r)) {
			next.ServeHTTP(w, r)
			return
		}
		d := m.Limiter.Key(scope, key)
		if !d.Allowed {
			m.refuse(w, r, d, "too many "+scope+" requests with this API key")
			return
		}
		// Report the tighter of the address's and the key's buckets.
		if prev, err := strconv.Atoi(w.Header().Get(HeaderRemaining)); err != nil || d.Limit > 0 && d.Remaining < prev {
			setHeaders(w.Header(), d)
		}
		next.ServeHTTP(w, r)
	})
}

func (m Middleware) refuse(w http.ResponseWriter, r *http.Request, d Decision, reason string) {
	setHeaders(w.Header(), d)
	w.Header().Set("Retry-After", strconv.Itoa(int(max(d.RetryAfter.Seconds(), 1))))
	m.Refuse(w, r, d, reason)
}

// The RateLimit header fields of draft-ietf-httpapi-ratelimit-headers
// (the three-field form): the bucket's size, the whole tokens left, and
// the seconds until it is full again.
const (
	HeaderLimit     = "RateLimit-Limit"
	HeaderRemaining = "RateLimit-Remaining"
	HeaderReset     = "RateLimit-Reset"
)

func setHeaders(h http.Header, d Decision) {
	if d.Limit == 0 {
		return // unlimited: nothing to report
	}
	h.Set(HeaderLimit, strconv.Itoa(d.Limit))
	h.Set(HeaderRemaining, strconv.Itoa(d.Remaining))
	h.Set(HeaderReset, strconv.Itoa(int(d.Reset.Seconds())))
}
