package daemon_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/netproxy/proxytest"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// wsTunnels counts p's tunnels to WhatsApp's websocket host.
func wsTunnels(p *proxytest.Proxy) int {
	n := 0
	for _, tun := range p.Tunnels() {
		if tun.Target == "web.whatsapp.com:443" {
			n++
		}
	}
	return n
}

// TestAccountProxyOverREST runs a daemon whose WhatsApp is reachable only
// through the test's proxies, with encryption at rest on, on either
// engine: a whatsapp account without a proxy of its own connects through
// drivers.whatsapp.proxy; PATCH gives it its own, and its session
// reconnects through that one; PATCH "" returns it to the default. The
// answers show the proxy with its password masked, bad URLs are refused
// naming the field, and the store holds no proxy password.
func TestAccountProxyOverREST(t *testing.T) { storetest.Each(t, testAccountProxyOverREST) }

func testAccountProxyOverREST(t *testing.T, e storetest.Engine) {
	wa := watest.New(t)
	var mu sync.Mutex
	var pxs []*proxytest.Proxy
	front := wa.ServeTLS(func(remote string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range pxs {
			if p.Upstreams()[remote] {
				return true
			}
		}
		return false
	})
	start := func(kind proxytest.Kind, password string) *proxytest.Proxy {
		p := proxytest.Start(t, kind, proxytest.Options{User: "ann", Password: password, Route: func(target string) (string, error) {
			if target != "web.whatsapp.com:443" {
				return "", fmt.Errorf("no route to %s", target)
			}
			return front.Addr(), nil
		}})
		mu.Lock()
		pxs = append(pxs, p)
		mu.Unlock()
		return p
	}
	def := start(proxytest.SOCKS5, "default-pw-7c1e")
	own := start(proxytest.CONNECT, "own-pw-4b2d")

	cfg := engineConfig(t, e)
	cfg.Encryption.Keys = "k1:" + sealKey1
	cfg.Drivers.WhatsApp.Proxy = def.URL()
	d, c := accountsDaemonWith(t, cfg, -1, nil, func(o *daemon.Options) {
		// No route to the double but the proxies.
		o.WhatsApp = whatsapp.Driver{ProxyTLS: front.ClientTLS, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}
	})

	// Bad input: 400 naming the field, the password never repeated.
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/accounts", `{"id":"bad","driver":"whatsapp","proxy":"ftp://u:hunter2@proxy.example.com:21"}`},
		{"POST", "/v1/accounts", `{"id":"bad","driver":"whatsapp","proxy":"socks5://u:hunter2@proxy.example.com"}`},
		{"POST", "/v1/accounts", `{"id":"bad","driver":"sim","proxy":"http://u:hunter2@proxy.example.com:99999"}`},
		{"PATCH", "/v1/accounts/bad", `{}`},
	} {
		r := c.do(tc.method, tc.path, "application/json", tc.body)
		if r.status != 400 || r.header.Get("Content-Type") != "application/problem+json" || r.json(t)["field"] != "proxy" || strings.Contains(string(r.body), "hunter2") {
			t.Errorf("%s %s %s: %d %s", tc.method, tc.path, tc.body, r.status, r.body)
		}
	}
	c.must(c.post("/v1/accounts", `{"id":"sim1","driver":"sim","name":"S"}`), 201)
	r := c.do("PATCH", "/v1/accounts/sim1", "application/json", `{"proxy":"socks5://u:hunter2@host-without-port"}`)
	if r.status != 400 || r.json(t)["field"] != "proxy" || strings.Contains(string(r.body), "hunter2") {
		t.Errorf("bad PATCH: %d %s", r.status, r.body)
	}
	c.must(c.do("PATCH", "/v1/accounts/nope", "application/json", `{"proxy":""}`), 404)

	// The default proxy carries an account that has none.
	got := c.must(c.post("/v1/accounts", `{"id":"wa","driver":"whatsapp","name":"WA"}`), 201).json(t)
	if got["proxy"] != "" {
		t.Fatalf("created with proxy %v", got["proxy"])
	}
	c.must(c.post("/v1/accounts/wa/connect", ""), 202)
	poll.Until(t, 30*time.Second, func() error {
		if wsTunnels(def) == 0 {
			return fmt.Errorf("no websocket through the default proxy yet")
		}
		return c.must(c.get("/v1/accounts/wa"), 200).wantState("pairing")
	})

	// PATCH: its own proxy, shown masked; the session reconnects through it.
	masked := strings.Replace(own.URL(), "own-pw-4b2d", "***", 1)
	got = c.must(c.do("PATCH", "/v1/accounts/wa", "application/json", fmt.Sprintf(`{"proxy":%q}`, own.URL())), 200).json(t)
	if got["proxy"] != masked {
		t.Fatalf("PATCH answered proxy %v, want %s", got["proxy"], masked)
	}
	viaDefault := wsTunnels(def)
	poll.Until(t, 30*time.Second, func() error {
		if wsTunnels(own) == 0 {
			return fmt.Errorf("no websocket through the account's proxy yet")
		}
		return nil
	})
	for _, r := range []reply{c.get("/v1/accounts/wa"), c.get("/v1/accounts")} {
		if !strings.Contains(string(r.body), masked) || strings.Contains(string(r.body), "own-pw-4b2d") {
			t.Fatalf("answer does not show the masked proxy alone: %s", r.body)
		}
	}
	// Sealed at rest: neither password is in the store.
	dump := func() []byte {
		if e == storetest.MongoDB {
			return sealtest.MongoBytes(t, d.Store().DB())
		}
		return sealtest.SQLiteBytes(t, filepath.Join(cfg.DataDir, daemon.DatabaseFile))
	}
	sealtest.NoPlaintext(t, string(e), dump(), "own-pw-4b2d")

	// PATCH "": back to the default proxy.
	got = c.must(c.do("PATCH", "/v1/accounts/wa", "application/json", `{"proxy":""}`), 200).json(t)
	if got["proxy"] != "" {
		t.Fatalf("cleared proxy answered %v", got["proxy"])
	}
	poll.Until(t, 30*time.Second, func() error {
		if wsTunnels(def) <= viaDefault {
			return fmt.Errorf("not reconnected through the default proxy yet")
		}
		return nil
	})
	if m := front.Refused(); len(m) != 0 {
		t.Fatalf("requests reached the double without a proxy: %v", m)
	}
}

// wantState checks an account answer's state.
func (r reply) wantState(want string) error {
	var a struct{ State string }
	if err := json.Unmarshal(r.body, &a); err != nil {
		return err
	}
	if a.State != want {
		return fmt.Errorf("state %s, want %s", a.State, want)
	}
	return nil
}
