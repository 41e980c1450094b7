package daemon_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestCrossSiteRequestsRefused replays the probe's requests against the
// real routes: a page on another site, or on a name re-pointed at the
// daemon, must not create accounts, send messages or upload media.
func TestCrossSiteRequestsRefused(t *testing.T) {
	_, c := messagesDaemon(t, nil)
	c.connectSim("demo")
	ct, mp := multipartBody(t, "file", "x.html", "text/html", []byte("<script>alert(1)</script>"))
	evil := []string{"Origin", "http://evil.example"}
	for _, tt := range []struct {
		name, path, ct, body string
		header               []string
		status               int
		field                string
	}{
		{"account, no content type", "/v1/accounts", "", `{"id":"x1","driver":"sim"}`, nil, 415, "Content-Type"},
		{"account, form content type", "/v1/accounts", "application/x-www-form-urlencoded", `{"id":"x2","driver":"sim"}`, nil, 415, "Content-Type"},
		{"account, cross-site", "/v1/accounts", "application/json", `{"id":"x3","driver":"sim"}`, evil, 403, "Origin"},
		{"send, text/plain", "/v1/accounts/demo/messages", "text/plain", `{"to":"+15550001111","text":"spam"}`, nil, 415, "Content-Type"},
		{"send, cross-site", "/v1/accounts/demo/messages", "application/json", `{"to":"+15550001111","text":"spam"}`, evil, 403, "Origin"},
		{"media, cross-site multipart", "/v1/media", ct, mp, evil, 403, "Origin"},
		{"send, rebound host", "/v1/accounts/demo/messages", "application/json", `{"to":"+15550001111","text":"spam"}`, []string{"Host", "attacker.example"}, 421, "Host"},
		{"logout, cross-site without a body", "/v1/accounts/demo/logout", "", "", evil, 403, "Origin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do("POST", tt.path, tt.ct, tt.body, tt.header...)
			if r.status != tt.status || !strings.Contains(string(r.body), fmt.Sprintf(`"field":%q`, tt.field)) {
				t.Fatalf("%d %s, want %d naming %s", r.status, r.body, tt.status, tt.field)
			}
		})
	}
	// Nothing happened: no account, no message, still connected.
	for _, id := range []string{"x1", "x2", "x3"} {
		c.must(c.get("/v1/accounts/"+id), 404)
	}
	if p := c.page("/v1/accounts/demo/messages"); len(p.Messages) != 0 {
		t.Fatalf("a refused send was stored: %+v", p.Messages)
	}
	if s, _ := c.state("demo"); s != "connected" {
		t.Fatalf("demo is %s after a refused logout", s)
	}
}

// TestHugeTextRefusedAndHistorySurvives: a send longer than WhatsApp takes
// is refused naming the field, a long body without inline media gets the
// JSON limit although the route takes media-sized bodies, and a huge
// message that arrived anyway (inbound) does not break history pages.
func TestHugeTextRefusedAndHistorySurvives(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		cfg := engineConfig(t, e)
		cfg.HTTP.MaxBodyBytes = 16 << 20 // lets the sim inject 7 MiB inbound texts
		d, c := accountsDaemon(t, cfg, time.Millisecond, nil)
		_ = d
		c.connectSim("big")

		long := strings.Repeat("é", 65537)
		r := c.post("/v1/accounts/big/messages", fmt.Sprintf(`{"to":"+15550001111","text":%q}`, long))
		if r.status != 400 || !strings.Contains(string(r.body), `"field":"text"`) || !strings.Contains(string(r.body), "65536") {
			t.Fatalf("65,537-character text: %d %.300s", r.status, r.body)
		}
		r = c.post("/v1/accounts/big/messages", fmt.Sprintf(`{"to":"+15550001111","media":{"url":"https://example.com/a.png"},"caption":%q}`, long))
		if r.status != 400 || !strings.Contains(string(r.body), `"field":"caption"`) {
			t.Fatalf("65,537-character caption: %d %.300s", r.status, r.body)
		}
		// Exactly the limit is fine.
		c.must(c.post("/v1/accounts/big/messages", fmt.Sprintf(`{"to":"+15550001111","text":%q}`, long[:len(long)-2])), 202)

		// 7 MiB texts arrive from a contact (WhatsApp's own limit is the
		// sender's client's business); history pages still answer. Each
		// is stored with its raw message (twice the text, under MongoDB's
		// 16 MiB document limit); four make a page larger than a MongoDB
		// reply may be unless the page leaves the raw messages out.
		huge := strings.Repeat("x", 7<<20)
		for i := range 4 {
			c.must(c.post("/v1/accounts/big/sim/inbound", fmt.Sprintf(`{"from":"15550002222","id":"HUGE%d","text":%q}`, i, huge)), 201)
		}
		c.must(c.post("/v1/accounts/big/sim/inbound", `{"from":"15550002222","id":"SMALL","text":"after"}`), 201)
		for _, path := range []string{"/v1/accounts/big/messages", "/v1/accounts/big/messages?limit=1", "/v1/accounts/big/messages?q=after",
			"/v1/accounts/big/messages?chatId=15550002222", "/v1/accounts/big/messages/HUGE0", "/v1/accounts/big/chats"} {
			c.must(c.get(path), 200)
		}
		p := c.page("/v1/accounts/big/messages?chatId=15550002222&limit=1")
		for p.NextCursor != nil {
			p = c.page("/v1/accounts/big/messages?chatId=15550002222&limit=1&cursor=" + *p.NextCursor)
		}
	})
}

// TestSendBodyGetsTheJSONLimit: only a send with inline media may use the
// media-sized body limit of its route.
func TestSendBodyGetsTheJSONLimit(t *testing.T) {
	_, c := messagesDaemon(t, nil) // max_body_bytes: testMaxBody
	c.connectSim("lim")
	pad := strings.Repeat(" ", testMaxBody+1)
	r := c.post("/v1/accounts/lim/messages", `{"to":"+15550001111","text":"hi"}`+pad)
	if r.status != 413 || !strings.Contains(string(r.body), `"field":"body"`) {
		t.Fatalf("padded text send: %d %.300s", r.status, r.body)
	}
}

// TestActiveMediaServedAsAttachment: archived inbound media is whatever a
// contact sent; anything a browser could run is downloaded, never shown
// from the API's origin, under a name with no path in it, on both engines.
func TestActiveMediaServedAsAttachment(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		d, c := accountsDaemon(t, engineConfig(t, e), time.Millisecond, nil)
		for _, tt := range []struct {
			mimetype, filename, body string
			disposition              string
		}{
			{"text/html", "../../../etc/passwd", "<script>alert(document.cookie)</script>", `attachment; filename="passwd"`},
			{"image/svg+xml", "logo.svg", `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`, `attachment; filename="logo.svg"`},
			{"application/xhtml+xml", `..\..\x.xhtml`, "<html/>", `attachment; filename="x.xhtml"`},
			{"application/javascript", "a.js", "alert(1)", `attachment; filename="a.js"`},
			{"application/x-unknown", "", "??", `attachment; filename="media"`},
			{"text/html", "r\u00e9sum\u00e9\r\nX-Injected: 1.html", "<p>", `attachment; filename="r_sum_X-Injected: 1.html"; filename*=UTF-8''r%C3%A9sum%C3%A9X-Injected:%201.html`},
			{"image/png", "photo.png", "\x89PNG\r\n\x1a\n", `inline; filename="photo.png"`},
		} {
			in, err := d.Media().Put(t.Context(), strings.NewReader(tt.body+tt.mimetype), tt.mimetype, tt.filename)
			if err != nil {
				t.Fatal(err)
			}
			r := c.must(c.get("/v1/media/"+in.ID), 200)
			h := r.header
			if got := h.Get("Content-Disposition"); got != tt.disposition {
				t.Errorf("%s %q: Content-Disposition %q, want %q", tt.mimetype, tt.filename, got, tt.disposition)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
				t.Errorf("%s: headers %v", tt.mimetype, h)
			}
			if h.Get("X-Injected") != "" {
				t.Errorf("header injected through the file name")
			}
		}
	})
}

// TestReloadRefusesRuleGlobsOutsideRuleDirs: a pipeline sent over REST may
// name rule files only in the configured rule directories.
func TestReloadRefusesRuleGlobsOutsideRuleDirs(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	if err := os.MkdirAll(filepath.Join(rules, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := accountsConfig(t)
	cfg.Pipeline = []pipeline.StageConfig{{Name: "rules", Rules: []string{filepath.Join(rules, "*.js")}}}
	_, c := accountsDaemon(t, cfg, time.Millisecond, nil)
	reload := func(glob string) reply {
		body, _ := json.Marshal(map[string]any{"stages": []any{map[string]any{"name": "r", "rules": []string{glob}}}})
		return c.post("/v1/pipeline/reload", string(body))
	}
	for _, glob := range []string{"/etc/*.js", "/*.js", filepath.Join(rules, "..", "*.js"), filepath.Join(rules, "*", "..", "..", "*.js"),
		"../*.js", filepath.Join(dir, "rules-evil", "*.js"), filepath.Join(dir, "*", "*.js")} {
		r := reload(glob)
		if r.status != 400 || !strings.Contains(string(r.body), `"field":"stages[0].rules[0]"`) {
			t.Errorf("%s: %d %s", glob, r.status, r.body)
		}
	}
	for _, glob := range []string{filepath.Join(rules, "*.js"), filepath.Join(rules, "sub", "*.js"), filepath.Join(rules, "*", "*.js")} {
		c.must(reload(glob), 200)
	}
}

// TestHostilePathParameters drives every route with a path parameter with
// values no id has: each is a 4xx problem, never a 5xx, never a success.
// The routes come from the router, so a new route cannot be forgotten.
func TestHostilePathParameters(t *testing.T) {
	d, c := messagesDaemon(t, nil)
	c.connectSim("real")
	// Values the path check itself refuses (400 naming the parameter),
	// then values only the handlers can judge (any 4xx).
	hostile := map[string]string{
		"dot-dot": "..", "dot": ".", "encoded dot-dot": "%2e%2e", "NUL": "a%00b", "newline": "a%0Ab", "backslash": "..%5C..%5Cetc",
		"not UTF-8": "%ff%fe", "bidi override": "a%E2%80%AEb", "very long": strings.Repeat("a", 5000),
	}
	other := map[string]string{"encoded slash": "..%2F..%2Fetc", "script": "%3Cscript%3E", "quote": "%27%20OR%201%3D1", "space": "a%20b"}
	fieldRe := regexp.MustCompile(`"field":"([^"]*)"`)
	routes := 0
	err := d.API().Router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil || !strings.Contains(tpl, "{") {
			return nil
		}
		methods, _ := route.GetMethods()
		routes++
		for _, m := range methods {
			vars := regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(tpl, -1)
			for name, v := range merge(hostile, other) {
				path := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(tpl, v)
				ct, body := "", ""
				if m == "POST" || m == "PATCH" {
					ct, body = "application/json", "{}"
				}
				r := c.do(m, path, ct, body)
				if r.status < 400 || r.status >= 500 {
					t.Errorf("%s %s (%s): %d %.200s", m, tpl, name, r.status, r.body)
					continue
				}
				if m != "HEAD" && r.header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("%s %s (%s): %d is not a problem: %.200s", m, tpl, name, r.status, r.body)
				}
				if _, refused := hostile[name]; refused && m != "HEAD" {
					f := fieldRe.FindStringSubmatch(string(r.body))
					if r.status != 400 || f == nil || !slices.ContainsFunc(vars, func(v []string) bool { return v[1] == f[1] }) {
						t.Errorf("%s %s (%s): %d %.200s, want 400 naming a path parameter", m, tpl, name, r.status, r.body)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if routes < 15 {
		t.Fatalf("only %d routes with path parameters found", routes)
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestSmallRoutesHaveSmallBodyLimits: a route taking a few fields refuses a
// body far below http.max_body_bytes.
func TestSmallRoutesHaveSmallBodyLimits(t *testing.T) {
	_, c := messagesDaemon(t, func(cfg *config.Config) { cfg.HTTP.MaxBodyBytes = 1 << 20 })
	pad := strings.Repeat(" ", 20<<10)
	r := c.post("/v1/accounts", `{"id":"padded","driver":"sim","name":"`+pad+`"}`)
	if r.status != 413 || !strings.Contains(string(r.body), `"field":"body"`) {
		t.Fatalf("padded account: %d %.300s", r.status, r.body)
	}
	c.must(c.post("/v1/accounts", `{"id":"plain","driver":"sim"}`), 201)
}
