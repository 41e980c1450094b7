package ratelimit_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/clock"
	"github.com/wildcathub/wildcat/core/ratelimit"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// server serves a Guard → fake authenticator → Keys chain on a real
// listener. The client address comes from X-Client (every test request
// arrives from loopback); the key must be "Bearer good" on /secure, and a
// wrong one is reported to the limiter as the auth engineer's hook will.
func server(t *testing.T, cfg ratelimit.Config, clk clock.Clock) (*ratelimit.Limiter, *httptest.Server) {
	t.Helper()
	l := ratelimit.New(cfg, clk)
	addr := func(r *http.Request) string { return r.Header.Get("X-Client") + ":1234" }
	mw := ratelimit.Middleware{
		Limiter:    l,
		ClientAddr: addr,
		KeyID: func(r *http.Request) string {
			return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		},
		Scope: func(r *http.Request) string {
			if r.URL.Path == "/healthz" {
				return ""
			}
			if r.Method == http.MethodGet {
				return "reads"
			}
			return "sends"
		},
		Refuse: func(w http.ResponseWriter, r *http.Request, d ratelimit.Decision, reason string) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, `{"status":429,"detail":%q}`, reason)
		},
	}
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/secure") && r.Header.Get("Authorization") != "Bearer good" {
				l.FailedAuth(addr(r))
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := httptest.NewServer(mw.Guard(auth(mw.Keys(ok))))
	t.Cleanup(srv.Close)
	return l, srv
}

type answer struct {
	status                      int
	retryAfter                  string
	limit, remaining, reset, ct string
}

func call(t *testing.T, srv *httptest.Server, method, path, client, key string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	req.Header.Set("X-Client", client)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get(ratelimit.HeaderLimit),
		resp.Header.Get(ratelimit.HeaderRemaining), resp.Header.Get(ratelimit.HeaderReset), resp.Header.Get("Content-Type")}
}

func TestBurstIsRefusedWithHeadersAndRecovers(t *testing.T) {
	clk := clock.NewFake(t0)
	// 3 at once, one more every 10 s.
	_, srv := server(t, ratelimit.Config{Scopes: map[string]ratelimit.Limit{"reads": {PerMinute: 6, Burst: 3}}}, clk)

	for i, want := range []answer{
		{status: 200, limit: "3", remaining: "2", reset: "10"},
		{status: 200, limit: "3", remaining: "1", reset: "20"},
		{status: 200, limit: "3", remaining: "0", reset: "30"},
	} {
		if got := call(t, srv, "GET", "/", "192.0.2.1", ""); got != want {
			t.Fatalf("request %d: %+v, want %+v", i+1, got, want)
		}
	}
	got := call(t, srv, "GET", "/", "192.0.2.1", "")
	want := answer{status: 429, retryAfter: "10", limit: "3", remaining: "0", reset: "30", ct: "application/problem+json"}
	if got != want {
		t.Fatalf("over the burst: %+v, want %+v", got, want)
	}
	// Other scopes have buckets of their own (sends is not limited here)…
	if got := call(t, srv, "POST", "/", "192.0.2.1", ""); got.status != 200 || got.limit != "" {
		t.Fatalf("unlimited scope: %+v", got)
	}
	// …and so do the probes' (no scope: no headers, never refused).
	if got := call(t, srv, "GET", "/healthz", "192.0.2.1", ""); got.status != 200 || got.limit != "" {
		t.Fatalf("probe: %+v", got)
	}

	clk.Advance(9 * time.Second)
	if got := call(t, srv, "GET", "/", "192.0.2.1", ""); got.status != 429 || got.retryAfter != "1" {
		t.Fatalf("9 s later: %+v, want 429 with Retry-After 1", got)
	}
	clk.Advance(time.Second)
	if got := call(t, srv, "GET", "/", "192.0.2.1", ""); got.status != 200 || got.remaining != "0" {
		t.Fatalf("after the refill: %+v, want 200 with nothing left", got)
	}
	clk.Advance(30 * time.Second)
	if got := call(t, srv, "GET", "/", "192.0.2.1", ""); got.status != 200 || got.remaining != "2" {
		t.Fatalf("once full again: %+v, want 200 with 2 left", got)
	}
}

func TestAddressesAndKeysHaveTheirOwnBuckets(t *testing.T) {
	clk := clock.NewFake(t0)
	_, srv := server(t, ratelimit.Config{Scopes: map[string]ratelimit.Limit{"reads": {PerMinute: 1, Burst: 2}}}, clk)
	for range 2 {
		call(t, srv, "GET", "/", "192.0.2.1", "")
	}
	if got := call(t, srv, "GET", "/", "192.0.2.1", ""); got.status != 429 {
		t.Fatalf("third from .1: %d", got.status)
	}
	if got := call(t, srv, "GET", "/", "192.0.2.2", ""); got.status != 200 || got.remaining != "1" {
		t.Fatalf("first from .2: %+v", got)
	}
	// One IPv6 client holds its /64: a new address inside it is no new bucket.
	for range 2 {
		call(t, srv, "GET", "/", "2001:db8:1:2::1", "")
	}
	if got := call(t, srv, "GET", "/", "2001:db8:1:2::ffff", ""); got.status != 429 {
		t.Fatalf("same /64: %d, want 429", got.status)
	}
	if got := call(t, srv, "GET", "/", "2001:db8:1:3::1", ""); got.status != 200 {
		t.Fatalf("other /64: %d", got.status)
	}

	// A key is limited wherever it calls from; another key is not.
	for i, c := range []string{"198.51.100.1", "198.51.100.2"} {
		if got := call(t, srv, "GET", "/", c, "k1"); got.status != 200 {
			t.Fatalf("k1 request %d: %d", i, got.status)
		}
	}
	if got := call(t, srv, "GET", "/", "198.51.100.3", "k1"); got.status != 429 || got.retryAfter != "60" {
		t.Fatalf("k1 from a third address: %+v, want 429 after 60 s", got)
	}
	if got := call(t, srv, "GET", "/", "198.51.100.4", "k2"); got.status != 200 {
		t.Fatalf("k2: %d", got.status)
	}
}

func TestFailedAuthenticationsBlockTheAddress(t *testing.T) {
	clk := clock.NewFake(t0)
	// Two failures, then one more allowed per minute.
	_, srv := server(t, ratelimit.Config{FailedAuth: ratelimit.Limit{PerMinute: 1, Burst: 2}}, clk)
	for i := range 2 {
		if got := call(t, srv, "GET", "/secure", "203.0.113.9", "wrong"); got.status != 401 {
			t.Fatalf("wrong key %d: %d, want 401", i+1, got.status)
		}
	}
	// The bucket is empty: even the right key is turned away.
	got := call(t, srv, "GET", "/secure", "203.0.113.9", "good")
	if got.status != 429 || got.retryAfter != "60" {
		t.Fatalf("right key from the blocked address: %+v, want 429 with Retry-After 60", got)
	}
	// Other addresses are not affected.
	if got := call(t, srv, "GET", "/secure", "203.0.113.10", "good"); got.status != 200 {
		t.Fatalf("right key from another address: %d", got.status)
	}
	clk.Advance(59 * time.Second)
	if got := call(t, srv, "GET", "/secure", "203.0.113.9", "good"); got.status != 429 {
		t.Fatalf("59 s later: %d, want 429", got.status)
	}
	clk.Advance(time.Second)
	if got := call(t, srv, "GET", "/secure", "203.0.113.9", "good"); got.status != 200 {
		t.Fatalf("after the refill: %d, want 200", got.status)
	}
	// Successful authentications cost nothing: the one token is still there.
	if got := call(t, srv, "GET", "/secure", "203.0.113.9", "wrong"); got.status != 401 {
		t.Fatalf("a wrong key after the refill: %d, want 401", got.status)
	}
	if got := call(t, srv, "GET", "/secure", "203.0.113.9", "good"); got.status != 429 {
		t.Fatalf("after that failure: %d, want 429", got.status)
	}
}

func TestLoopbackExemption(t *testing.T) {
	for _, tc := range []struct {
		exempt bool
		client string
		want   int
	}{
		{true, "127.0.0.1", 200},
		{true, "::1", 200},
		{true, "192.0.2.1", 429},
		{false, "127.0.0.1", 429},
	} {
		t.Run(fmt.Sprintf("%v/%s", tc.exempt, tc.client), func(t *testing.T) {
			_, srv := server(t, ratelimit.Config{ExemptLoopback: tc.exempt,
				Scopes: map[string]ratelimit.Limit{"reads": {PerMinute: 1, Burst: 1}}}, clock.NewFake(t0))
			call(t, srv, "GET", "/", tc.client, "")
			if got := call(t, srv, "GET", "/", tc.client, ""); got.status != tc.want {
				t.Fatalf("second request: %d, want %d", got.status, tc.want)
			}
		})
	}
}

func TestIdleBucketsAreForgotten(t *testing.T) {
	clk := clock.NewFake(t0)
	b := ratelimit.NewBuckets(ratelimit.Limit{PerMinute: 60, Burst: 5}, clk, 1000)
	for i := range 500 {
		b.Take(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if b.Len() != 500 {
		t.Fatalf("%d buckets, want 500", b.Len())
	}
	// Five seconds refill every bucket; the sweep (once a minute) drops them.
	clk.Advance(time.Minute)
	b.Take("10.9.9.9")
	if b.Len() != 1 {
		t.Fatalf("%d buckets after the sweep, want 1", b.Len())
	}
	// A bucket still refilling is kept: forgetting it would reset its limit.
	for range 5 {
		b.Take("10.9.9.9")
	}
	clk.Advance(time.Minute - time.Second)
	for range 5 {
		b.Take("10.9.9.8")
	}
	clk.Advance(time.Second)
	b.Take("10.9.9.7")
	if b.Len() != 2 {
		t.Fatalf("%d buckets, want the drained 10.9.9.8 and the new 10.9.9.7", b.Len())
	}
	// A flood of new addresses inside one minute stays under the bound.
	for i := range 5000 {
		b.Take(fmt.Sprintf("172.16.%d.%d", i/256, i%256))
	}
	if b.Len() > 1000 {
		t.Fatalf("%d buckets, bound 1000", b.Len())
	}
}
