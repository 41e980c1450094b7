// Package apikeystest lets tests talk to daemons that require API keys
// without handing a key to every request: test daemons are provisioned
// with AdminToken (http.admin_key), and Transport (installed in
// http.DefaultClient) adds it to every API request that carries no
// Authorization header of its own.
package apikeystest

import (
	"context"
	"net/http"
	"strings"
	"sync"
)

// keys are tokens for daemons that were not provisioned with AdminToken
// (a real first start), by host:port.
var keys sync.Map

// UseKey makes Transport send token to the daemon at hostPort instead of
// AdminToken.
func UseKey(hostPort, token string) { keys.Store(hostPort, token) }

// AdminToken is the admin key test daemons are provisioned with.
const AdminToken = "wck_test-admin_" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// ServerSecret is the server secret (http.auth_secret) of test daemons.
const ServerSecret = "wildcat test server secret"

// Transport adds AdminToken to requests for the API (/v1/… and /metrics)
// that do not carry an Authorization header; everything else passes as is.
type Transport struct{ Base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if r.Header.Get("Authorization") != "" || r.Context().Value(noKey{}) != nil || !(strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/metrics") {
		return base.RoundTrip(r)
	}
	tok := AdminToken
	if k, ok := keys.Load(r.URL.Host); ok {
		tok = k.(string)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return base.RoundTrip(r)
}

// Wrap returns rt with the admin key added (a client's own transport).
func Wrap(rt http.RoundTripper) http.RoundTripper { return Transport{Base: rt} }

// Install makes http.DefaultClient (http.Get, http.Post, …) send the admin
// key: for TestMain, before any test runs. http.DefaultTransport stays as
// it is (whatsmeow requires it to be an *http.Transport).
func Install() {
	if _, done := http.DefaultClient.Transport.(Transport); done {
		return
	}
	http.DefaultClient.Transport = Transport{Base: http.DefaultTransport}
}

type noKey struct{}

// WithoutKey marks a request context: Transport sends no key with it (for
// tests of the 401).
func WithoutKey(ctx context.Context) context.Context { return context.WithValue(ctx, noKey{}, true) }
