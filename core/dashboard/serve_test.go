package dashboard_test

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/dashboard"
)

// TestServedByTheDaemon: the daemon serves /ui without a key, with its
// strict CSP, behind the API's Host/Origin guard; the pages' own
// same-origin calls pass the guard with a key and fail without one.
func TestServedByTheDaemon(t *testing.T) {
	cfg := config.Defaults()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.HTTP.AdminKey = apikeystest.AdminToken
	cfg.HTTP.AuthSecret = apikeystest.ServerSecret
	d, err := daemon.New(cfg, daemon.Options{NoSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.Addr()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	tests := []struct {
		name, path  string
		header      map[string]string
		status      int
		contentType string // prefix
		bodyHas     string
	}{
		{name: "bare /ui redirects", path: "/ui", status: http.StatusMovedPermanently},
		{name: "index without a key", path: "/ui/", status: 200, contentType: "text/html", bodyHas: `<script type="module" src="app.js">`},
		{name: "module", path: "/ui/app.js", status: 200, contentType: "text/javascript", bodyHas: "import * as api"},
		{name: "stylesheet", path: "/ui/app.css", status: 200, contentType: "text/css"},
		{name: "unknown file", path: "/ui/nope.js", status: 404},
		{name: "foreign Host refused", path: "/ui/", header: map[string]string{"Host": "rebind.example"}, status: http.StatusMisdirectedRequest},
		{name: "foreign Origin refused", path: "/ui/app.js", header: map[string]string{"Origin": "http://evil.example"}, status: http.StatusForbidden},
		{name: "same-origin API call with the key", path: "/v1/accounts",
			header: map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin", "Authorization": "Bearer " + apikeystest.AdminToken}, status: 200},
		{name: "same-origin API call without a key", path: "/v1/accounts", header: map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"}, status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+tc.path, nil)
			for k, v := range tc.header {
				if k == "Host" {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
			// apikeystest's transport is not installed here: no key unless set.
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.status, body)
			}
			if tc.contentType != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) {
				t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			if tc.bodyHas != "" && !strings.Contains(string(body), tc.bodyHas) {
				t.Fatalf("body lacks %q: %.300s", tc.bodyHas, body)
			}
			if resp.StatusCode == 200 && strings.HasPrefix(tc.path, "/ui") {
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self';") || strings.Contains(csp, "unsafe") {
					t.Fatalf("Content-Security-Policy %q", csp)
				}
				if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Fatal("no nosniff")
				}
			}
		})
	}
}

// TestNothingFromElsewhere: the pages load nothing from another origin and
// run no inline script (the CSP would refuse both), and never put the key
// in a URL or a cookie.
func TestNothingFromElsewhere(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|import\s+[^;]*from\s+["'](https?:)?//|fetch\(\s*["'` + "`" + `]https?:`)
	inline := regexp.MustCompile(`(?i)<script(?:\s+type="module")?>|\son[a-z]+=|style=`)
	n := 0
	err := fs.WalkDir(os.DirFS("static"), ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		n++
		b, err := os.ReadFile("static/" + p)
		if err != nil {
			return err
		}
		s := string(b)
		if m := external.FindString(s); m != "" {
			t.Errorf("%s loads from another origin: %q", p, m)
		}
		if strings.HasSuffix(p, ".html") {
			if m := inline.FindString(s); m != "" {
				t.Errorf("%s has inline script or style: %q", p, m)
			}
		}
		if strings.Contains(s, "document.cookie") || strings.Contains(s, "localStorage") {
			t.Errorf("%s keeps something in a cookie or localStorage", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Fatalf("only %d files under static/", n)
	}
	if dashboard.Prefix != "/ui" {
		t.Fatalf("mounted at %q", dashboard.Prefix)
	}
}
