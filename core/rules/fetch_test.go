package rules

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFetchAllowList(t *testing.T) {
	var slowDone = make(chan struct{})
	defer close(slowDone)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/customer":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"name":"Ana","method":%q,"auth":%q,"type":%q}`, r.Method, r.Header.Get("Authorization"), r.Header.Get("Content-Type"))
		case "/big":
			w.Write([]byte(strings.Repeat("x", 2000)))
		case "/away":
			http.Redirect(w, r, "http://example.com/", http.StatusFound)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-slowDone:
			}
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	host := u.Hostname() // 127.0.0.1

	e, _ := newEngine(t, map[string]string{"crm.js": `on("message.received", (msg, ctx) => {
  const base = ctx.config.base;
  switch (msg.message.text) {
  case "get": {
    const r = ctx.http.fetch(base + "/customer", {method: "POST", headers: {Authorization: "Bearer t"}, body: {id: 1}});
    ctx.annotate("status", r.status);
    ctx.annotate("ok", r.ok);
    ctx.annotate("name", r.json().name + " " + r.json().method + " " + r.json().auth + " " + r.json().type);
    ctx.annotate("ctype", r.headers["content-type"]);
    break;
  }
  case "other":  ctx.http.fetch("http://localhost:" + ctx.config.port + "/customer"); break;
  case "file":   ctx.http.fetch("file:///etc/passwd"); break;
  case "big":    ctx.http.fetch(base + "/big"); break;
  case "away":   ctx.http.fetch(base + "/away"); break;
  case "slow":   ctx.http.fetch(base + "/slow", {timeout: "20ms"}); break;
  case "slower": ctx.http.fetch(base + "/slow"); break;
  }
});`}, Options{Timeout: 200 * time.Millisecond, Config: map[string]map[string]any{"crm": {
		"base": srv.URL, "port": u.Port(),
		"http": map[string]any{"allow": []any{host, "*.example.org"}, "maxBytes": 1000, "allowPrivate": true},
	}}})

	got := effectsJSON(t, mustHandle(t, e, msgEvent("get")))
	want := `[{"kind":"annotate","key":"status","value":"200"},{"kind":"annotate","key":"ok","value":"true"},` +
		`{"kind":"annotate","key":"name","value":"Ana POST Bearer t application/json"},{"kind":"annotate","key":"ctype","value":"application/json"}]`
	if got != want {
		t.Fatalf("allowed fetch\n got %s\nwant %s", got, want)
	}
	for text, wantErr := range map[string]string{
		"other": `host "localhost" is not allowed (http.allow: 127.0.0.1, *.example.org)`,
		"file":  "only http and https are allowed",
		"big":   "response larger than 1000 bytes",
		"away":  `redirect refused: host "example.com" is not allowed`,
		"slow":  "deadline exceeded",
	} {
		_, err := handle(t, e, msgEvent(text))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: error %v, want %q", text, err, wantErr)
		}
		if text == "slow" && errors.Is(err, ErrTimeout) {
			t.Errorf("the fetch's own timeout is not the handler's: %v", err)
		}
	}
	// Without its own timeout the fetch ends at the handler's deadline.
	start := time.Now()
	_, err := handle(t, e, msgEvent("slower"))
	t.Logf("fetch cut at the 200ms handler deadline after %s", time.Since(start))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("slower: %v", err)
	}

	// No allow-list, no network.
	plain, _ := newEngine(t, map[string]string{"a.js": `on("message.received", (msg, ctx) => ctx.http.fetch("` + srv.URL + `"))`}, Options{})
	if _, err := handle(t, plain, msgEvent("x")); err == nil || !strings.Contains(err.Error(), "has no http.allow list") {
		t.Fatalf("no allow list: %v", err)
	}
	dry, _ := newEngine(t, map[string]string{"a.js": `on("message.received", (msg, ctx) => ctx.http.fetch("` + srv.URL + `"))`}, Options{DryRun: true})
	if _, err := handle(t, dry, msgEvent("x")); !errors.Is(err, ErrFetchDisabled) {
		t.Fatalf("dry run: %v", err)
	}
}

func TestHostAllowed(t *testing.T) {
	allow := []string{"api.example.com", "*.example.org"}
	for host, want := range map[string]bool{
		"api.example.com": true, "API.example.com.": true, "x.api.example.com": false, "example.com": false,
		"a.example.org": true, "a.b.example.org": true, "example.org": false, "evilexample.org": false,
	} {
		if got := hostAllowed(allow, host); got != want {
			t.Errorf("%s: %v", host, got)
		}
	}
}

func TestBadRuleConfig(t *testing.T) {
	for cfg, want := range map[string]map[string]any{
		"timeout: \"fast\"":           {"timeout": "fast"},
		"timeout: 0s":                 {"timeout": "0s"},
		"unknown time zone":           {"timezone": "Mars/Base"},
		"not a host name":             {"http": map[string]any{"allow": []any{"https://x.com/"}}},
		`unknown key "allowed"`:       {"http": map[string]any{"allowed": []any{"x.com"}}},
		"http.maxBytes: over the cap": {"http": map[string]any{"maxBytes": 1 << 30}},
	} {
		_, err := parseRuleConfig(want, DefaultTimeout)
		if err == nil || !strings.Contains(err.Error(), strings.Split(cfg, ":")[0]) {
			t.Errorf("%v: %v", want, err)
		}
	}
	rc, err := parseRuleConfig(map[string]any{"timeout": 250, "http": map[string]any{"allow": []any{"A.com"}, "maxBytes": 10}}, DefaultTimeout)
	if err != nil || rc.timeout != 250*time.Millisecond || rc.allow[0] != "a.com" || rc.maxBytes != 10 {
		t.Fatalf("%+v %v", rc, err)
	}
}

type fakeResolver map[string]string

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

// TestFetchGuardsResolvedAddresses: the allow-list names hosts, the SSRF
// guard checks where they lead when dialled — an allowed name that
// resolves to the metadata address or to loopback is refused, as is every
// numeric disguise of loopback, and HTTP_PROXY is never used (it would
// reach the server below on the rule's behalf).
func TestFetchGuardsResolvedAddresses(t *testing.T) {
	var reached atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Write([]byte("secret"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	t.Setenv("HTTP_PROXY", srv.URL)
	t.Setenv("http_proxy", srv.URL)

	hosts := []string{"metadata.test", "rebind.test", "127.0.0.1", "2130706433", "0x7f000001", "017700000001", "127.1", "0", "127。0。0。1", "192.0.2.1"}
	allow := []any{}
	for _, h := range hosts {
		allow = append(allow, h)
	}
	res := fakeResolver{"metadata.test": "169.254.169.254", "rebind.test": "127.0.0.1"}
	rule := `on("message.received", (msg, ctx) => { ctx.http.fetch("http://" + msg.message.text + ":" + ctx.config.port + "/"); })`
	cfg := func(private bool) Options {
		return Options{FetchResolver: res, Timeout: 2 * time.Second, Config: map[string]map[string]any{"f": {
			"port": u.Port(), "http": map[string]any{"allow": allow, "allowPrivate": private}}}}
	}
	e, _ := newEngine(t, map[string]string{"f.js": rule}, cfg(false))
	for _, h := range hosts {
		_, err := handle(t, e, msgEvent(h))
		if err == nil || !strings.Contains(err.Error(), "address not allowed") {
			t.Errorf("%s: %v, want the SSRF guard's refusal", h, err)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the server was reached %d times (through HTTP_PROXY?)", n)
	}
	// With allowPrivate the rule reaches the loopback server directly.
	open, _ := newEngine(t, map[string]string{"f.js": rule}, cfg(true))
	if _, err := handle(t, open, msgEvent("127.0.0.1")); err != nil {
		t.Fatalf("allowPrivate: %v", err)
	}
	if n := reached.Load(); n != 1 {
		t.Fatalf("allowPrivate fetch reached the server %d times", n)
	}
}
