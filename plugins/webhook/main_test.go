package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/sdk"
	"github.com/wildcathub/wildcat/sdk/plugintest"
	"github.com/wildcathub/wildcat/sdk/webhooks"
)

// received is one request a test receiver saw.
type received struct {
	header http.Header
	body   []byte
}

// receiver answers with fn and records every request.
func receiver(t *testing.T, fn func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, chan received) {
	t.Helper()
	got := make(chan received, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{header: r.Header.Clone(), body: b}
		fn(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func target(url string, secrets ...string) []byte {
	b, _ := json.Marshal(webhooks.Target{EndpointID: "ep1", URL: url, Secrets: secrets, TimeoutMS: 2000, AllowPrivate: true,
		Headers: map[string]string{"Authorization": "Bearer t0ken", "webhook-id": "spoofed"}})
	return b
}

// specSignature recomputes a signature from the specification, without
// the sdk/webhooks code under test.
func specSignature(t *testing.T, secret, id, ts string, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSignedEnvelope(t *testing.T) {
	h := plugintest.Start(t, New())
	if info := h.Info(); info.Name != "webhook" || len(info.Capabilities) != 1 || info.Capabilities[0] != sdk.CapabilitySink {
		t.Fatalf("Describe: %+v", info)
	}
	srv, got := receiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	newS, oldS := webhooks.NewSecret(), webhooks.NewSecret()
	ev := plugintest.TextMessage("hello")
	ev.Tags = []string{"vip"}
	res, err := h.Deliver(context.Background(), &sdk.Job{ID: "j", Event: ev, Target: "webhook:ep1", TargetConfig: target(srv.URL, newS, oldS)})
	if err != nil || res.Outcome != sdk.OutcomeOK || res.Status != 204 {
		t.Fatalf("got %+v %v", res, err)
	}
	r := <-got
	id, ts := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp")
	if id != ev.ID {
		t.Fatalf("webhook-id %q, want the event id %q (the endpoint's own header must not override it)", id, ev.ID)
	}
	sigs := strings.Fields(r.header.Get("webhook-signature"))
	if len(sigs) != 2 || sigs[0] != specSignature(t, newS, id, ts, r.body) || sigs[1] != specSignature(t, oldS, id, ts, r.body) {
		t.Fatalf("signatures %q do not match the spec's HMAC for either secret", sigs)
	}
	if r.header.Get("Authorization") != "Bearer t0ken" || !strings.HasPrefix(r.header.Get("User-Agent"), "Wildcat-Webhooks/") ||
		r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers: %v", r.header)
	}
	var env struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatal(err)
	}
	var data sdk.Event
	if err := json.Unmarshal(env.Data, &data); err != nil {
		t.Fatal(err)
	}
	if env.Type != "message.received" || !env.Timestamp.Equal(ev.Timestamp) || data.ID != ev.ID || data.Message.Text != "hello" || data.Tags[0] != "vip" {
		t.Fatalf("envelope: %s", r.body)
	}
}

func TestOutcomes(t *testing.T) {
	h := plugintest.Start(t, New())
	secret := webhooks.NewSecret()
	long := strings.Repeat("x", 10000)
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		handler    func(w http.ResponseWriter, r *http.Request)
		outcome    sdk.Outcome
		disable    bool
		status     int
		retryAfter func(d time.Duration) bool
		errText    string
		response   string
	}{
		{"200", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "thanks") }, sdk.OutcomeOK, false, 200, zero, "", "thanks"},
		{"201 long body", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201); fmt.Fprint(w, long) }, sdk.OutcomeOK, false, 201, zero, "", long[:ResponseLimit]},
		{"410", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(410); fmt.Fprint(w, "unsubscribed") }, sdk.OutcomeFail, true, 410, zero, "gone", "unsubscribed"},
		{"429 seconds", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Retry-After", "42"); w.WriteHeader(429) },
			sdk.OutcomeRetry, false, 429, func(d time.Duration) bool { return d == 42*time.Second }, "rate limited", ""},
		{"503 date", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Retry-After", date); w.WriteHeader(503) },
			sdk.OutcomeRetry, false, 503, func(d time.Duration) bool { return d > 0 && d <= 90*time.Second }, "receiver error", ""},
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, sdk.OutcomeRetry, false, 500, zero, "receiver error", "boom\n"},
		{"400", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad", 400) }, sdk.OutcomeRetry, false, 400, zero, "mid-deploy", "bad\n"},
		{"404 with Retry-After", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Retry-After", "7"); w.WriteHeader(404) },
			sdk.OutcomeRetry, false, 404, func(d time.Duration) bool { return d == 7*time.Second }, "mid-deploy", ""},
		{"302", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "http://169.254.169.254/", 302) }, sdk.OutcomeRetry, false, 302, zero, "redirects are not followed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := receiver(t, tt.handler)
			res, err := h.Deliver(context.Background(), &sdk.Job{ID: "j", Event: plugintest.TextMessage("x"), Target: "webhook:ep1", TargetConfig: target(srv.URL, secret)})
			if err != nil {
				t.Fatal(err)
			}
			<-got
			if res.Outcome != tt.outcome || res.DisableTarget != tt.disable || res.Status != tt.status || !tt.retryAfter(res.RetryAfter) || res.Response != tt.response {
				t.Fatalf("got outcome=%s disable=%v status=%d retryAfter=%s response=%.40q err=%v", res.Outcome, res.DisableTarget, res.Status, res.RetryAfter, res.Response, res.Err)
			}
			if tt.errText != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tt.errText)) {
				t.Fatalf("error %v should mention %q", res.Err, tt.errText)
			}
		})
	}
}

func zero(d time.Duration) bool { return d == 0 }

func TestNetworkErrorAndTimeoutRetry(t *testing.T) {
	h := plugintest.Start(t, New())
	secret := webhooks.NewSecret()

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	res, err := h.Deliver(context.Background(), &sdk.Job{ID: "j", Event: plugintest.TextMessage("x"), Target: "t", TargetConfig: target(closed.URL, secret)})
	if err != nil || res.Outcome != sdk.OutcomeRetry || !strings.Contains(res.Err.Error(), "network error") {
		t.Fatalf("closed server: %+v %v", res, err)
	}

	release := make(chan struct{})
	defer close(release)
	slow, got := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	var tg webhooks.Target
	_ = json.Unmarshal(target(slow.URL, secret), &tg)
	tg.TimeoutMS = 50
	cfg, _ := json.Marshal(tg)
	res, err = h.Deliver(context.Background(), &sdk.Job{ID: "j", Event: plugintest.TextMessage("x"), Target: "t", TargetConfig: cfg})
	<-got
	if err != nil || res.Outcome != sdk.OutcomeRetry || !strings.Contains(res.Err.Error(), "timeout") {
		t.Fatalf("slow server: %+v %v", res, err)
	}
}

func TestPrivateAddressRefusedAtDelivery(t *testing.T) {
	h := plugintest.Start(t, New())
	srv, got := receiver(t, func(w http.ResponseWriter, r *http.Request) {})
	var tg webhooks.Target
	_ = json.Unmarshal(target(srv.URL, webhooks.NewSecret()), &tg)
	tg.AllowPrivate = false
	cfg, _ := json.Marshal(tg)
	res, err := h.Deliver(context.Background(), &sdk.Job{ID: "j", Event: plugintest.TextMessage("x"), Target: "t", TargetConfig: cfg})
	if err != nil || res.Outcome != sdk.OutcomeFail || res.DisableTarget || !strings.Contains(res.Err.Error(), "not a public address") {
		t.Fatalf("got %+v %v", res, err)
	}
	select {
	case r := <-got:
		t.Fatalf("the receiver on loopback was reached: %v", r.header)
	default:
	}
}

func TestBadTargetAndConfig(t *testing.T) {
	h := plugintest.Start(t, New())
	res, err := h.Deliver(context.Background(), &sdk.Job{ID: "j", Event: plugintest.TextMessage("x"), Target: "t"})
	if err != nil || res.Outcome != sdk.OutcomeFail {
		t.Fatalf("no target config: %+v %v", res, err)
	}
	if err := h.Configure(context.Background(), map[string]any{"user_agnet": "x"}); err == nil || !strings.Contains(err.Error(), "user_agnet") {
		t.Fatalf("unknown key accepted: %v", err)
	}
}
