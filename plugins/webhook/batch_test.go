package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/sdk"
	"github.com/wildcathub/wildcat/sdk/plugintest"
	"github.com/wildcathub/wildcat/sdk/webhooks"
)

// countingServer is a receiver on port 0 that counts the connections it
// accepted and the requests it has in flight (and the most at once).
type countingServer struct {
	*httptest.Server
	conns             atomic.Int64
	mu                sync.Mutex
	inFlight, maxSeen int
	bodies            [][]byte
	headers           []http.Header
}

func newCountingServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *countingServer {
	t.Helper()
	cs := &countingServer{}
	cs.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		cs.mu.Lock()
		cs.inFlight++
		cs.maxSeen = max(cs.maxSeen, cs.inFlight)
		cs.bodies = append(cs.bodies, b)
		cs.headers = append(cs.headers, r.Header.Clone())
		cs.mu.Unlock()
		defer func() {
			cs.mu.Lock()
			cs.inFlight--
			cs.mu.Unlock()
		}()
		handle(w, r)
	}))
	cs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			cs.conns.Add(1)
		}
	}
	cs.Start()
	t.Cleanup(cs.Close)
	return cs
}

func (cs *countingServer) snapshot() (inFlight, maxSeen, requests int) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.inFlight, cs.maxSeen, len(cs.bodies)
}

func endpoint(id, url string, batch bool, secret string) []byte {
	b, _ := json.Marshal(webhooks.Target{EndpointID: id, URL: url, Secrets: []string{secret}, TimeoutMS: 10_000, AllowPrivate: true, Batch: batch})
	return b
}

func jobsFor(n int, target string, cfg []byte) []*sdk.Job {
	jobs := make([]*sdk.Job, n)
	for i := range jobs {
		ev := plugintest.TextMessage(fmt.Sprint("m", i))
		ev.ID = fmt.Sprintf("test:%s:%03d", target, i)
		jobs[i] = &sdk.Job{ID: ev.ID + ":" + target, Event: ev, Target: target, TargetConfig: cfg}
	}
	return jobs
}

func deliverBatch(t *testing.T, h *plugintest.Harness, jobs []*sdk.Job) []sdk.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := h.DeliverBatch(ctx, jobs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// An endpoint with batch on gets the jobs of a batch as one POST: a JSON
// array of their envelopes, in order, under webhook-id BatchID and one
// signature over the whole body that Verify accepts.
func TestBatchEndpointGetsOneSignedArray(t *testing.T) {
	h := plugintest.Start(t, New())
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	secret := webhooks.NewSecret()
	jobs := jobsFor(5, "webhook:arr", endpoint("arr", srv.URL, true, secret))
	for i, r := range deliverBatch(t, h, jobs) {
		if r.Outcome != sdk.OutcomeOK || r.Status != http.StatusNoContent {
			t.Fatalf("job %d: %+v", i, r)
		}
	}
	if _, _, n := srv.snapshot(); n != 1 {
		t.Fatalf("%d requests, want one array POST", n)
	}
	body, hdr := srv.bodies[0], srv.headers[0]
	if err := webhooks.Verify(secret, hdr, body); err != nil {
		t.Fatalf("the batch's signature does not verify: %v", err)
	}
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.Event.ID
	}
	if got, want := hdr.Get(webhooks.HeaderID), webhooks.BatchID(ids); got != want {
		t.Fatalf("webhook-id %q, want %q", got, want)
	}
	if sig := hdr.Get(webhooks.HeaderSignature); sig != specSignature(t, secret, hdr.Get(webhooks.HeaderID), hdr.Get(webhooks.HeaderTimestamp), body) {
		t.Fatalf("signature %q is not the spec's HMAC over the whole array", sig)
	}
	var envs []webhooks.Envelope
	if err := json.Unmarshal(body, &envs); err != nil {
		t.Fatalf("body is not a JSON array of envelopes: %v\n%s", err, body)
	}
	if len(envs) != len(jobs) {
		t.Fatalf("%d envelopes, want %d", len(envs), len(jobs))
	}
	for i, e := range envs {
		if e.Data.ID != ids[i] || e.Type != string(sdk.KindMessageReceived) {
			t.Fatalf("envelope %d: type %s id %s, want %s", i, e.Type, e.Data.ID, ids[i])
		}
	}
	// A tampered body no longer verifies.
	if err := webhooks.Verify(secret, hdr, append([]byte(nil), body[:len(body)-1]...)); err == nil {
		t.Fatal("a truncated batch verified")
	}
}

// One batch for three endpoints: one answering 204 (one POST per job), one
// answering 503 and one with batch on answering 500. Every job gets its
// endpoint's outcome; the good endpoint's jobs are delivered whatever the
// others answer.
func TestBatchPartlyFails(t *testing.T) {
	h := plugintest.Start(t, New())
	good := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	bad := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	badArr := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	secret := webhooks.NewSecret()
	g := jobsFor(4, "webhook:good", endpoint("good", good.URL, false, secret))
	b := jobsFor(3, "webhook:bad", endpoint("bad", bad.URL, false, secret))
	a := jobsFor(3, "webhook:arr", endpoint("arr", badArr.URL, true, secret))
	var jobs []*sdk.Job
	for i := range 4 { // interleaved
		jobs = append(jobs, g[i])
		if i < 3 {
			jobs = append(jobs, b[i], a[i])
		}
	}
	jobs = append(jobs, &sdk.Job{ID: "broken", Event: plugintest.TextMessage("x"), Target: "webhook:broken"})
	res := deliverBatch(t, h, jobs)
	for i, r := range res {
		want, status := sdk.OutcomeRetry, 0
		switch {
		case strings.HasPrefix(jobs[i].Target, "webhook:good"):
			want, status = sdk.OutcomeOK, http.StatusNoContent
		case jobs[i].Target == "webhook:bad":
			status = http.StatusServiceUnavailable
		case jobs[i].Target == "webhook:arr":
			status = http.StatusInternalServerError
		default:
			want = sdk.OutcomeFail
		}
		if r.Outcome != want || r.Status != status {
			t.Errorf("job %d (%s): %s %d, want %s %d (%v)", i, jobs[i].Target, r.Outcome, r.Status, want, status, r.Err)
		}
	}
	if _, _, n := good.snapshot(); n != 4 {
		t.Errorf("good endpoint got %d requests, want 4", n)
	}
	if _, _, n := bad.snapshot(); n != 3 {
		t.Errorf("failing endpoint got %d requests, want 3", n)
	}
	if _, _, n := badArr.snapshot(); n != 1 {
		t.Errorf("failing batch endpoint got %d requests, want 1", n)
	}
}

// An endpoint never has more than endpoint_concurrency requests in flight
// (the receiver holds every request until the test lets one go, and counts
// them), and while it holds them another endpoint of the same batch is
// served.
func TestEndpointConcurrencyBound(t *testing.T) {
	const limit, n = 3, 12
	h := plugintest.Start(t, New(), plugintest.WithConfig(map[string]any{"endpoint_concurrency": limit}))
	gate, stop := make(chan struct{}), make(chan struct{})
	slow := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gate:
		case <-stop: // the test ended early: let the server close
		}
		w.WriteHeader(http.StatusNoContent)
	})
	t.Cleanup(func() { close(stop) }) // runs before the server's Close
	fast := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	secret := webhooks.NewSecret()
	jobs := append(jobsFor(n, "webhook:slow", endpoint("slow", slow.URL, false, secret)),
		jobsFor(5, "webhook:fast", endpoint("fast", fast.URL, false, secret))...)
	done := make(chan []sdk.Result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := h.DeliverBatch(ctx, jobs)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	// The fast endpoint is served while the slow one holds its requests.
	poll.Until(t, 30*time.Second, func() error {
		if _, _, got := fast.snapshot(); got != 5 {
			return fmt.Errorf("fast endpoint has %d of 5 requests", got)
		}
		return nil
	})
	for remaining := n; remaining > 0; remaining-- {
		want := min(limit, remaining)
		poll.Until(t, 30*time.Second, func() error {
			in, most, _ := slow.snapshot()
			if most > limit {
				t.Fatalf("%d requests in flight at once, limit %d", most, limit)
			}
			if in != want {
				return fmt.Errorf("%d in flight, waiting for %d", in, want)
			}
			return nil
		})
		gate <- struct{}{} // let one request finish
	}
	for i, r := range <-done {
		if r.Outcome != sdk.OutcomeOK {
			t.Fatalf("job %d: %+v", i, r)
		}
	}
	if _, most, got := slow.snapshot(); most != limit || got != n {
		t.Fatalf("slow endpoint: %d requests, at most %d at once; want %d, %d", got, most, n, limit)
	}
}

// Deliveries reuse their connections: many requests to one endpoint, in
// two batches and one by one, open about as many connections as the
// endpoint may have requests in flight, not one per request.
func TestKeepAliveReusesConnections(t *testing.T) {
	const limit = 4
	h := plugintest.Start(t, New(), plugintest.WithConfig(map[string]any{"endpoint_concurrency": limit}))
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	cfg := endpoint("ka", srv.URL, false, webhooks.NewSecret())
	for round := range 2 {
		for i, r := range deliverBatch(t, h, jobsFor(30, fmt.Sprint("webhook:ka", round), cfg)) {
			if r.Outcome != sdk.OutcomeOK {
				t.Fatalf("round %d job %d: %+v", round, i, r)
			}
		}
	}
	for i := range 10 {
		if r, err := h.Deliver(context.Background(), jobsFor(1, fmt.Sprint("webhook:one", i), cfg)[0]); err != nil || r.Outcome != sdk.OutcomeOK {
			t.Fatalf("single %d: %+v %v", i, r, err)
		}
	}
	if _, _, n := srv.snapshot(); n != 70 {
		t.Fatalf("%d requests, want 70", n)
	}
	// Without keep-alive every request opens one (70). net/http may dial
	// one more than the requests in flight when a request starts just
	// before a finished one's connection is back in the idle pool, so
	// the bound is twice the concurrency.
	if c := srv.conns.Load(); c > 2*limit {
		t.Fatalf("%d connections opened for 70 requests, want at most %d (keep-alive)", c, 2*limit)
	}
}

func TestEndpointConcurrencyConfig(t *testing.T) {
	h := plugintest.Start(t, New())
	for _, v := range []any{0, 1.5, "8", MaxEndpointConcurrency + 1} {
		err := h.Configure(context.Background(), map[string]any{"endpoint_concurrency": v})
		if err == nil || !strings.Contains(err.Error(), "config.endpoint_concurrency") {
			t.Errorf("endpoint_concurrency %v: %v", v, err)
		}
	}
	if err := h.Configure(context.Background(), map[string]any{"endpoint_concurrency": 16}); err != nil {
		t.Fatal(err)
	}
}
