package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys"
	"github.com/wildcathub/wildcat/core/clock"
	"github.com/wildcathub/wildcat/core/ratelimit"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// fakeClock is a settable clock for the keyring.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// TestExpiredKeyIs401: a key is accepted until its expiry and refused
// with 401 (naming the expiry, WWW-Authenticate set) from then on, and
// the failure reaches the AuthFailed hook with the key's id.
func TestExpiredKeyIs401(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	kr := apikeys.NewKeyring(apikeys.NewSQLite(storetest.NewSQLite(t, apikeys.SQLiteSchema)), []byte("secret"), clock.Now)
	var (
		mu     sync.Mutex
		failed []string
	)
	s := New(Options{Hosts: anyHost, Keys: kr, AuthFailed: func(r *http.Request, keyID string, err error) {
		mu.Lock()
		defer mu.Unlock()
		failed = append(failed, keyID)
	}})
	s.Handle("/thing", func(w http.ResponseWriter, r *http.Request) error {
		k, _ := KeyFromContext(r.Context())
		return WriteJSON(w, http.StatusOK, map[string]string{"key": k.Name})
	}, http.MethodGet).Needs(apikeys.ScopeAccountsRead)
	exp := clock.Now().Add(time.Hour)
	key, tok, err := kr.Create(context.Background(), apikeys.Spec{Name: "temp", Scopes: []string{"accounts:read"}, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	get := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/v1/thing", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		s.srv.Handler.ServeHTTP(rec, req)
		return rec
	}
	if rec := get(); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"temp"`) {
		t.Fatalf("before expiry: %d %s", rec.Code, rec.Body)
	}
	clock.Set(exp)
	rec := get()
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "expired") ||
		!strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("after expiry: %d %q %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 1 || failed[0] != key.ID {
		t.Fatalf("AuthFailed heard %v, want [%s]", failed, key.ID)
	}
}

// TestClientAddr: forwarding headers are believed only from a trusted
// peer, and only up to the first untrusted hop.
func TestClientAddr(t *testing.T) {
	trusted, _, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.168.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote, xff, fwd string
		trusted                []netip.Prefix
		want                   string
	}{
		{"no proxies configured", "10.1.1.1:5000", "1.2.3.4", "", nil, "10.1.1.1"},
		{"untrusted peer's header ignored", "8.8.8.8:5000", "1.2.3.4", "", trusted, "8.8.8.8"},
		{"trusted peer", "10.1.1.1:5000", "1.2.3.4", "", trusted, "1.2.3.4"},
		{"spoofed left entry skipped", "10.1.1.1:5000", "6.6.6.6, 1.2.3.4, 192.168.1.1", "", trusted, "1.2.3.4"},
		{"Forwarded", "192.168.1.1:80", "", `for="[2001:db8::1]:4711";proto=https, for=10.2.2.2`, trusted, "2001:db8::1"},
		{"garbage stops trust", "10.1.1.1:5000", "1.2.3.4, unknown", "", trusted, "10.1.1.1"},
		{"all hops trusted", "10.1.1.1:5000", "10.3.3.3", "", trusted, "10.3.3.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.fwd != "" {
				r.Header.Set("Forwarded", tc.fwd)
			}
			if got := clientAddr(r, tc.trusted); got != tc.want {
				t.Fatalf("client %q, want %q", got, tc.want)
			}
		})
	}
	if _, i, err := ParseTrustedProxies([]string{"10.0.0.0/8", "nope"}); err == nil || i != 1 {
		t.Fatalf("bad entry: %d %v", i, err)
	}
}

// TestAccessLogRemoteIsTheClient: the access line's remote is ClientAddr,
// and handlers see the same through ClientAddr.
func TestAccessLogRemoteIsTheClient(t *testing.T) {
	logs := &syncBuffer{}
	trusted, _, _ := ParseTrustedProxies([]string{"127.0.0.1"})
	s := New(Options{Hosts: anyHost, Logger: slog.New(slog.NewJSONHandler(logs, nil)), TrustedProxies: trusted})
	var seen string
	s.Handle("/who", func(w http.ResponseWriter, r *http.Request) error {
		seen = ClientAddr(r)
		return WriteJSON(w, 200, map[string]string{})
	}, http.MethodGet).Needs("")
	req := httptest.NewRequest(http.MethodGet, "/v1/who", nil)
	req.RemoteAddr = "127.0.0.1:9999"
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	s.srv.Handler.ServeHTTP(httptest.NewRecorder(), req)
	if seen != "203.0.113.7" || !strings.Contains(logs.String(), `"remote":"203.0.113.7"`) {
		t.Fatalf("client %q; log %s", seen, logs.String())
	}
}

// writeCert writes a fresh self-signed certificate for 127.0.0.1 named cn.
func writeCert(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: nil, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(priv)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSReload: the server serves the certificate files' pair, and after
// the files are replaced the next handshake gets the new certificate;
// a half-written replacement keeps the previous one.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, "first")
	s := New(Options{TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q", got)
	}
	// Renewal: new files; a later mtime makes the change visible even on
	// a file system with coarse timestamps.
	writeCert(t, certFile, keyFile, "second")
	later := time.Now().Add(time.Minute)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if got := served(); got != "second" {
		t.Fatalf("after the swap served %q, want second", got)
	}
	// A broken key file: the previous certificate stays.
	if err := os.WriteFile(keyFile, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(keyFile, later.Add(time.Minute), later.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != "second" {
		t.Fatalf("with a broken key file served %q", got)
	}
	// Plain HTTP is not served on the TLS port.
	if resp, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on the TLS listener")
		}
	}
}

// TestRateLimitsSeeKeys: the limiter counts each authenticated key in
// buckets of its own (whatever address it comes from), and failed
// authentications drain the address's failed-auth bucket until even a
// valid key from there is turned away.
func TestRateLimitsSeeKeys(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	kr := apikeys.NewKeyring(apikeys.NewSQLite(storetest.NewSQLite(t, apikeys.SQLiteSchema)), []byte("secret"), nil)
	l := ratelimit.New(ratelimit.Config{Scopes: map[string]ratelimit.Limit{ScopeReads: {PerMinute: 600, Burst: 1}},
		FailedAuth: ratelimit.Limit{PerMinute: 1, Burst: 2}}, clk)
	s := New(Options{Hosts: anyHost, Keys: kr, RateLimiter: l})
	s.Handle("/thing", func(w http.ResponseWriter, r *http.Request) error {
		return WriteJSON(w, http.StatusOK, map[string]string{})
	}, http.MethodGet).Needs(apikeys.ScopeAccountsRead)
	token := func(name string) string {
		_, tok, err := kr.Create(context.Background(), apikeys.Spec{Name: name, Scopes: []string{"accounts:read"}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	a, b := token("a"), token("b")
	get := func(from, tok string) int {
		req := httptest.NewRequest(http.MethodGet, "/v1/thing", nil)
		req.RemoteAddr = from + ":1234"
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		s.srv.Handler.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := get("192.0.2.1", a); got != 200 {
		t.Fatalf("key a: %d", got)
	}
	if got := get("192.0.2.2", a); got != http.StatusTooManyRequests {
		t.Fatalf("key a from another address: %d, want 429 (the key's own bucket)", got)
	}
	if got := get("192.0.2.3", b); got != 200 {
		t.Fatalf("key b: %d", got)
	}
	for i := range 2 {
		clk.Advance(time.Second) // the read buckets (10/s) refill; the failed-auth one (1/min) does not
		if got := get("198.51.100.7", "wck_nope_"+strings.Repeat("0", 64)); got != http.StatusUnauthorized {
			t.Fatalf("bad key %d: %d", i, got)
		}
	}
	clk.Advance(time.Second)
	if got := get("198.51.100.7", b); got != http.StatusTooManyRequests {
		t.Fatalf("valid key from an address that kept failing: %d, want 429", got)
	}
	if got := get("192.0.2.9", b); got != 200 {
		t.Fatalf("the same key from elsewhere: %d", got)
	}

	// exempt_loopback: the operator's own scripts on the machine are not
	// limited, by address or by key.
	l = ratelimit.New(ratelimit.Config{Scopes: map[string]ratelimit.Limit{ScopeReads: {PerMinute: 1, Burst: 1}}, ExemptLoopback: true}, clk)
	s = New(Options{Hosts: anyHost, Keys: kr, RateLimiter: l})
	s.Handle("/thing", func(w http.ResponseWriter, r *http.Request) error {
		return WriteJSON(w, http.StatusOK, map[string]string{})
	}, http.MethodGet).Needs(apikeys.ScopeAccountsRead)
	for i := range 3 {
		if got := get("127.0.0.1", a); got != 200 {
			t.Fatalf("loopback request %d with a key: %d", i, got)
		}
	}
}

// anyHost lets these tests' requests (httptest's Host is example.com)
// past the DNS-rebinding guard, which guard_test.go covers.
var anyHost = []string{"*"}
