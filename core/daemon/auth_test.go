package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/apikeys"
	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
)

// createKey makes a key over the API (as admin) and returns its token.
func createKey(t *testing.T, c *client, name string, scopes, accounts []string) (id, token string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "scopes": scopes, "accounts": accounts})
	r := c.must(c.post("/v1/keys", string(body)), 201).json(t)
	return r["id"].(string), r["key"].(string)
}

var pathVar = regexp.MustCompile(`\{[^}]+\}`)

// TestEveryRouteNeedsAKey walks the router, so a route added later cannot
// be forgotten: each declares what it needs; without a key every route but
// the probes (and /metrics on loopback) answers 401 with WWW-Authenticate;
// with a key holding every scope but the route's own it answers 403.
func TestEveryRouteNeedsAKey(t *testing.T) {
	d, c := messagesDaemon(t, nil)
	// One key per scope holding every other scope but admin (which grants
	// everything).
	lacking := map[string]string{}
	for _, sc := range apikeys.AllScopes {
		var others []string
		for _, o := range apikeys.AllScopes {
			if o != sc && o != apikeys.ScopeAdmin {
				others = append(others, o)
			}
		}
		_, lacking[sc] = createKey(t, c, "all but "+sc, others, nil)
	}
	checked := 0
	err := d.API().Router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, _ := route.GetMethods()
		public, scope, declared := d.API().RouteAccess(route)
		if !declared {
			t.Errorf("%v %s declares no scope (Needs or Public in core/api/routes.go)", methods, tpl)
			return nil
		}
		path := pathVar.ReplaceAllString(tpl, "x")
		for _, m := range methods {
			if m == http.MethodHead {
				continue
			}
			checked++
			open := tpl == "/healthz" || tpl == "/readyz" || tpl == "/metrics" || tpl == "/ui" || tpl == "/ui/"
			if public != open {
				t.Errorf("%s %s public=%v, want %v", m, tpl, public, open)
			}
			if public {
				continue
			}
			r := probeRoute(t, m, c.base+path, "")
			if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") ||
				r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s without a key: %d %q %s", m, tpl, r.status, r.header.Get("WWW-Authenticate"), r.body)
			}
			r = probeRoute(t, m, c.base+path, "wck_nope_"+strings.Repeat("0", 64))
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s %s with an unknown key: %d %s", m, tpl, r.status, r.body)
			}
			if scope == "" {
				continue // any valid key
			}
			r = probeRoute(t, m, c.base+path, lacking[scope])
			if r.status != http.StatusForbidden || !strings.Contains(string(r.body), scope) {
				t.Errorf("%s %s with a key lacking %s: %d %s", m, tpl, scope, r.status, r.body)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 30 {
		t.Fatalf("only %d routes checked", checked)
	}
}

// probeRoute sends one request with key ("" : none) and a deadline: a
// route that let it through to a streaming handler fails the test instead
// of hanging it. The answer is checked against the OpenAPI document.
func probeRoute(t *testing.T, method, url, key string) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(apikeystest.WithoutKey(context.Background()), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if strings.Contains(url, "/v1/") {
		checkAgainstSpec(t, req, resp.StatusCode, resp.Header, b)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// TestAccountRestrictedKey: a key limited to one account reads and sends
// for it, and for no other; lists show only its accounts; routes spanning
// every account refuse it; its event stream carries only its account's
// events.
func TestAccountRestrictedKey(t *testing.T) {
	_, c := messagesDaemon(t, nil)
	c.connectSim("mine")
	c.connectSim("theirs")
	_, tok := createKey(t, c, "shop", []string{"accounts:read", "messages:read", "messages:send", "events:read"}, []string{"mine"})
	k := c.as(tok)

	send := `{"to":"+15550001111","text":"hi"}`
	k.must(k.get("/v1/accounts/mine/messages"), 200)
	k.must(k.post("/v1/accounts/mine/messages", send), 202)
	k.must(k.get("/v1/accounts/mine"), 200)
	for _, r := range []reply{
		k.get("/v1/accounts/theirs/messages"),
		k.get("/v1/accounts/theirs/chats"),
		k.get("/v1/accounts/theirs"),
		k.post("/v1/accounts/theirs/messages", send),
	} {
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "theirs") {
			t.Fatalf("another account's route: %d %s", r.status, r.body)
		}
	}
	var list struct{ Accounts []struct{ ID string } }
	_ = json.Unmarshal(k.must(k.get("/v1/accounts"), 200).body, &list)
	if len(list.Accounts) != 1 || list.Accounts[0].ID != "mine" {
		t.Fatalf("listed accounts %+v, want only mine", list.Accounts)
	}
	// The admin key sees both.
	_ = json.Unmarshal(c.must(c.get("/v1/accounts"), 200).body, &list)
	if len(list.Accounts) != 2 {
		t.Fatalf("admin lists %+v", list.Accounts)
	}

	// Events: the admin stream sees theirs' message first; by then the
	// limited stream would have it queued before mine's, had it been let
	// through.
	all := openStream(t, c, "kinds=message.received", "")
	limited := openStream(t, k, "kinds=message.received", "")
	c.inject("theirs", `{"from":"+15551234567","text":"for theirs"}`)
	if e := all.next(t); e.ev.AccountID != "theirs" {
		t.Fatalf("admin stream: %+v", e.ev)
	}
	c.inject("mine", `{"from":"+15551234567","text":"for mine"}`)
	if e := limited.next(t); e.ev.AccountID != "mine" {
		t.Fatalf("the limited stream carried %s's event", e.ev.AccountID)
	}
}

// TestKeyLifecycle: a revoked key fails on the next request, a rotated
// key's old secret fails at once and its new one works, an expired key is
// 401; listing never shows a secret; the access log names the key, never
// its secret.
func TestKeyLifecycle(t *testing.T) {
	var logBuf syncBuffer
	cfg := accountsConfig(t)
	d, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	_ = d
	id, tok := createKey(t, c, "reader", []string{"accounts:read"}, nil)
	k := c.as(tok)
	k.must(k.get("/v1/accounts"), 200)
	if !strings.Contains(logBuf.String(), `"key_id":"`+id+`","key":"reader"`) {
		t.Fatalf("access log does not name the key:\n%s", logBuf.String())
	}
	if strings.Contains(logBuf.String(), tok[len(tok)-64:]) {
		t.Fatal("the log holds a key's secret")
	}

	// Rotation: the old secret stops at once.
	r := c.must(c.post("/v1/keys/"+id+"/rotate", ""), 200).json(t)
	newTok := r["key"].(string)
	if newTok == tok || !strings.HasPrefix(newTok, "wck_"+id+"_") {
		t.Fatalf("rotated token %q", newTok)
	}
	k.must(k.get("/v1/accounts"), 401)
	c.as(newTok).must(c.as(newTok).get("/v1/accounts"), 200)

	// Listing and reading never show a secret.
	for _, body := range [][]byte{c.must(c.get("/v1/keys"), 200).body, c.must(c.get("/v1/keys/"+id), 200).body} {
		if bytes.Contains(body, []byte(newTok[len(newTok)-64:])) || bytes.Contains(body, []byte(`"key"`)) {
			t.Fatalf("a secret is shown: %s", body)
		}
	}

	// Revocation: the next request fails.
	c.must(c.do("DELETE", "/v1/keys/"+id, "", ""), 204)
	c.as(newTok).must(c.as(newTok).get("/v1/accounts"), 401)
	c.must(c.do("DELETE", "/v1/keys/"+id, "", ""), 404)

	// Bad specifications name the field.
	for field, body := range map[string]string{
		"scopes[0]": `{"name":"x","scopes":["root"]}`,
		"expiresAt": `{"name":"x","scopes":["admin"],"expiresAt":"2000-01-01T00:00:00Z"}`,
		"name":      `{"scopes":["admin"]}`,
	} {
		checkProblem(t, c.post("/v1/keys", body), 400, field)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMetricsAuth: /metrics is open on loopback by default and keyed when
// http.metrics_auth is key.
func TestMetricsAuth(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want int
	}{{"auto", 200}, {"key", 401}} {
		t.Run(tc.mode, func(t *testing.T) {
			_, c := messagesDaemon(t, func(cfg *config.Config) { cfg.HTTP.MetricsAuth = tc.mode })
			if got, _ := rawStatus(c.anonymous(), "/metrics"); got != tc.want {
				t.Fatalf("/metrics without a key: %d, want %d", got, tc.want)
			}
			if got, _ := rawStatus(c, "/metrics"); got != 200 {
				t.Fatalf("/metrics with the admin key: %d", got)
			}
		})
	}
}

func rawStatus(c *client, path string) (int, error) {
	r := c.do("GET", path, "", "")
	return r.status, nil
}
