package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHealthcheck: wildcatd healthcheck (the container image's
// HEALTHCHECK) exits 0 only on a 200 from /readyz, at --url or at the
// configuration's http.addr as WILDCAT_* variables leave it.
func TestHealthcheck(t *testing.T) {
	readyz := func(status int) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(status)
			w.Write([]byte(`{"status":"x"}`))
		}))
		t.Cleanup(s.Close)
		return s
	}
	ready, starting := readyz(http.StatusOK), readyz(http.StatusServiceUnavailable)
	tlsReady := httptest.NewTLSServer(ready.Config.Handler)
	t.Cleanup(tlsReady.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	port := func(s *httptest.Server) string { _, p, _ := net.SplitHostPort(s.Listener.Addr().String()); return p }

	dir := t.TempDir()
	writeConfig := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The image's http.addr: every interface, reached on loopback.
	allIfaces := writeConfig("ready.yaml", "http:\n  addr: 0.0.0.0:"+port(ready)+"\n")
	otherPort := writeConfig("other.yaml", "http:\n  addr: 127.0.0.1:"+port(gone)+"\n")
	withTLS := writeConfig("tls.yaml", "http:\n  addr: 127.0.0.1:"+port(tlsReady)+"\n  tls_cert_file: cert.pem\n  tls_key_file: key.pem\n")
	bad := writeConfig("bad.yaml", "http:\n  addr: 127.0.0.1:99999\n")

	for _, tc := range []struct {
		name   string
		args   []string
		env    []string
		code   int
		output string
	}{
		{"ready at --url", []string{"--url", ready.URL + "/readyz"}, nil, exitOK, "ready: " + ready.URL + "/readyz"},
		{"starting: 503", []string{"--url", starting.URL + "/readyz"}, nil, exitFailure, "503 Service Unavailable"},
		{"not running", []string{"--url", gone.URL + "/readyz"}, nil, exitFailure, "connection refused"},
		{"http.addr of --config", []string{"--config", allIfaces}, nil, exitOK, "ready: http://127.0.0.1:" + port(ready) + "/readyz"},
		{"http.addr of $WILDCAT_CONFIG", nil, []string{"WILDCAT_CONFIG=" + allIfaces}, exitOK, "ready: http://127.0.0.1:" + port(ready) + "/readyz"},
		{"WILDCAT_HTTP_ADDR wins over the file", []string{"--config", otherPort}, []string{"WILDCAT_HTTP_ADDR=0.0.0.0:" + port(ready)}, exitOK, "ready:"},
		{"the file's port, nobody there", []string{"--config", otherPort}, nil, exitFailure, "connection refused"},
		{"TLS listener: https, its own certificate", []string{"--config", withTLS}, nil, exitOK, "ready: https://127.0.0.1:" + port(tlsReady)},
		{"bad configuration", []string{"--config", bad}, nil, exitUsage, "http.addr"},
		{"not a URL", []string{"--url", "localhost:8080"}, nil, exitUsage, `--url "localhost:8080" is not an http(s) URL`},
		{"an argument", []string{"now"}, nil, exitUsage, `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"healthcheck"}, tc.args...), tc.env, &out, &errb)
			if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.output) {
				t.Fatalf("exit %d, output %q %q; want exit %d with %q", code, out.String(), errb.String(), tc.code, tc.output)
			}
		})
	}
}
