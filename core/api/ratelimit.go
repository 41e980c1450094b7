package api

import (
	"net/http"
	"strings"

	"github.com/wildcathub/wildcat/core/ratelimit"
)

// The route classes rate limits are configured by (http.rate_limits).
const (
	ScopeReads      = "reads"
	ScopeSends      = "sends"
	ScopeManagement = "management"
)

// routeScope classes a request before routing: probes are not limited;
// sending a message, injecting a simulated one and uploading media are
// sends; other GETs and HEADs are reads; everything else changes the
// daemon's configuration or state (management).
func routeScope(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/healthz" || p == "/readyz":
		return ""
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return ScopeReads
	case r.Method == http.MethodPost && (p == "/v1/media" ||
		strings.HasPrefix(p, "/v1/accounts/") && (strings.HasSuffix(p, "/messages") || strings.HasSuffix(p, "/sim/inbound"))):
		return ScopeSends
	}
	return ScopeManagement
}

// rateLimited wraps next in the limiter's middleware. The client address
// is the connection's peer; the API key is not known yet (no keys), so
// only the address buckets and the failed-auth block apply.
//
// Once authentication lands: it goes between Guard and Keys (Guard turns
// away an address that keeps failing before its key is checked), keyID
// reads the authenticated key's name from the request context, and the
// authenticator calls s.failedAuth(r) on every failed authentication.
func (s *Server) rateLimited(l *ratelimit.Limiter, next http.Handler) http.Handler {
	mw := ratelimit.Middleware{
		Limiter:    l,
		ClientAddr: clientAddr,
		KeyID:      keyID,
		Scope:      routeScope,
		Refuse: func(w http.ResponseWriter, r *http.Request, _ ratelimit.Decision, reason string) {
			writeProblem(w, r, &Error{Status: http.StatusTooManyRequests, Slug: "rate-limited", Title: "Too many requests",
				Detail: reason + "; retry after the seconds in Retry-After"})
		},
	}
	return mw.Guard(mw.Keys(next))
}

// clientAddr is the address rate limits count a request against.
func clientAddr(r *http.Request) string { return r.RemoteAddr }

// keyID names the API key a request authenticated with, for its buckets;
// "" (no key) until the API has keys.
func keyID(*http.Request) string { return "" }

// failedAuth drains the failed-auth bucket of r's client address: the
// authenticator's hook for every wrong, unknown, expired or revoked key.
func (s *Server) failedAuth(r *http.Request) {
	if s.limiter != nil {
		s.limiter.FailedAuth(clientAddr(r))
	}
}
