package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wildcathub/wildcat/core/clock"
	"github.com/wildcathub/wildcat/core/outgoing"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/ratelimit"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/throttle"
)

// pacedAccounts knows acme, a connected WhatsApp account a year old.
type pacedAccounts struct{ Accounts }

func (pacedAccounts) GetAccount(_ context.Context, id string) (*session.AccountInfo, error) {
	if id != "acme" {
		return nil, session.ErrAccountNotFound
	}
	return &session.AccountInfo{ID: id, Driver: "whatsapp", State: session.StateConnected,
		JID: "15550000001@s.whatsapp.net", CreatedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, nil
}

// clockedSessions records the (fake) time of every send it is asked for.
type clockedSessions struct {
	clk *clock.Fake
	mu  sync.Mutex
	at  []time.Time
}

func (c *clockedSessions) Send(_ context.Context, _ string, req *session.SendRequest) (*session.SendResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = append(c.at, c.clk.Now())
	return &session.SendResult{MessageID: req.ID}, nil
}

func (c *clockedSessions) sent() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.at...)
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
			return sum
		}
	}
	return 0
}

// TestSendAnswerSaysWhenThePacedSendGoes: with a pace of 10 s, a burst of
// sends is accepted at once and each answer's scheduledAt is its slot; the
// sends reach the session at exactly those times; past the daily cap the
// answer is 429 with Retry-After until midnight UTC, and nothing is stored.
func TestSendAnswerSaysWhenThePacedSendGoes(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	reg := prometheus.NewRegistry()
	pacer, err := throttle.New(throttle.Options{
		Policies: map[string]throttle.Policy{"whatsapp": {Interval: 10 * time.Second, DailyCap: 3}},
		Accounts: pacedAccounts{}, Clock: clk, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	sessions := &clockedSessions{clk: clk}
	store := &pendingStore{}
	sender := outgoing.New(outgoing.Options{Sessions: sessions, Store: store, Workers: 2, QueueSize: 10, Pacer: pacer, Clock: clk})
	t.Cleanup(func() { _ = sender.Close(context.Background()) })
	s := New(Options{Accounts: pacedAccounts{}, Messages: struct{ MessageStore }{}, Sender: sender, Media: queueMedia{}})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	url := "http://" + s.Addr() + "/v1/accounts/acme/messages"

	for i, want := range []time.Time{t0, t0.Add(10 * time.Second), t0.Add(20 * time.Second)} {
		resp, body := do(t, "POST", url, "application/json", fmt.Sprintf(`{"to":"15550000002","text":"m%d"}`, i))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("send %d: %d %s", i, resp.StatusCode, body)
		}
		var got sendAccepted
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if !got.ScheduledAt.Equal(want) {
			t.Fatalf("send %d: %s, want scheduledAt %s", i, body, want.Format(time.RFC3339))
		}
	}
	if q := gauge(t, reg, "wildcat_send_queued"); q != 2 {
		t.Fatalf("queued gauge %v, want 2 waiting for their slot", q)
	}

	// The daily cap (3) is reached: refused, not queued to tomorrow.
	resp, body := do(t, "POST", url, "application/json", `{"to":"15550000002","text":"one too many"}`)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("over the cap: %d %s", resp.StatusCode, body)
	}
	if ra := resp.Header.Get("Retry-After"); ra != fmt.Sprint(15*3600) {
		t.Fatalf("Retry-After %q, want the 15 h until midnight UTC", ra)
	}
	if got := store.texts(); len(got) != 3 {
		t.Fatalf("stored %v: the refused message must not be stored", got)
	}

	waitSent := func(n int) {
		t.Helper()
		poll.Until(t, 10*time.Second, func() error {
			if got := len(sessions.sent()); got != n {
				return fmt.Errorf("%d sent, want %d", got, n)
			}
			return nil
		})
	}
	waitSent(1)
	clk.Advance(9 * time.Second)
	if got := len(sessions.sent()); got != 1 {
		t.Fatalf("%d sent before the second slot", got)
	}
	clk.Advance(time.Second)
	waitSent(2)
	clk.Advance(10 * time.Second)
	waitSent(3)
	for i, at := range sessions.sent() {
		if want := t0.Add(time.Duration(i) * 10 * time.Second); !at.Equal(want) {
			t.Fatalf("send %d reached the session at %s, want %s", i, at, want)
		}
	}
	if q := gauge(t, reg, "wildcat_send_queued"); q != 0 {
		t.Fatalf("queued gauge %v after the queue drained", q)
	}
}

// TestRateLimitsByRouteClass: the API's limiter counts reads and sends in
// buckets of their own, answers 429 problems with the headers, and never
// limits the probes.
func TestRateLimitsByRouteClass(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	l := ratelimit.New(ratelimit.Config{Scopes: map[string]ratelimit.Limit{
		ScopeReads: {PerMinute: 60, Burst: 2}, ScopeSends: {PerMinute: 60, Burst: 1}, ScopeManagement: {PerMinute: 60, Burst: 1},
	}, FailedAuth: ratelimit.Limit{PerMinute: 1, Burst: 1}}, clk)
	s := New(Options{RateLimiter: l, Accounts: queueAccounts{}, Messages: struct{ MessageStore }{},
		Sender: struct{ Sender }{}, Media: queueMedia{}})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	base := "http://" + s.Addr()

	for i := range 2 {
		if resp, body := do(t, "GET", base+"/v1/openapi.json", "", ""); resp.StatusCode != 200 || resp.Header.Get("RateLimit-Remaining") != fmt.Sprint(1-i) {
			t.Fatalf("read %d: %d %v %s", i, resp.StatusCode, resp.Header, body)
		}
	}
	resp, body := do(t, "GET", base+"/v1/openapi.json", "", "")
	var p Problem
	_ = json.Unmarshal(body, &p)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("RateLimit-Limit") != "2" ||
		resp.Header.Get("RateLimit-Remaining") != "0" || resp.Header.Get("RateLimit-Reset") != "2" || p.Type != ProblemType+"rate-limited" {
		t.Fatalf("third read: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	// Probes are not limited; the send route has its own bucket (its
	// answer here is a refusal of the body, after the limiter let it in).
	if resp, _ := do(t, "GET", base+"/healthz", "", ""); resp.StatusCode != 200 || resp.Header.Get("RateLimit-Limit") != "" {
		t.Fatalf("healthz: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := do(t, "POST", base+"/v1/accounts/acme/messages", "application/json", `{}`); resp.StatusCode != 400 || resp.Header.Get("RateLimit-Limit") != "1" {
		t.Fatalf("first send: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := do(t, "POST", base+"/v1/accounts/acme/messages", "application/json", `{}`); resp.StatusCode != 429 {
		t.Fatalf("second send: %d, want 429", resp.StatusCode)
	}
	if resp, _ := do(t, "DELETE", base+"/v1/accounts/nobody", "", ""); resp.StatusCode == 429 {
		t.Fatal("management shares the sends' bucket")
	}
	clk.Advance(time.Second)
	if resp, _ := do(t, "GET", base+"/v1/openapi.json", "", ""); resp.StatusCode != 200 {
		t.Fatalf("read after a second: %d", resp.StatusCode)
	}

	// The authenticator's hook: a failed authentication from this address
	// empties its failed-auth bucket (burst 1), and the address is turned
	// away until it refills; the probes still answer.
	s.failedAuth(&http.Request{RemoteAddr: "127.0.0.1:40001"})
	if resp, body := do(t, "GET", base+"/v1/openapi.json", "", ""); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("after a failed authentication: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if resp, _ := do(t, "GET", base+"/healthz", "", ""); resp.StatusCode != 200 {
		t.Fatalf("healthz while blocked: %d", resp.StatusCode)
	}
	clk.Advance(time.Minute)
	if resp, _ := do(t, "GET", base+"/v1/openapi.json", "", ""); resp.StatusCode != 200 {
		t.Fatalf("after the refill: %d", resp.StatusCode)
	}
}
