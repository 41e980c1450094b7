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

// rateLimits is the limiter's middleware: Guard (per client address, and
// the failed-auth block) runs before routing, Keys (per API key) after
// authentication (see New).
func (s *Server) rateLimits() ratelimit.Middleware {
	return ratelimit.Middleware{
		Limiter:    s.limiter,
		ClientAddr: ClientAddr,
		KeyID:      keyID,
		Scope:      routeScope,
		Refuse: func(w http.ResponseWriter, r *http.Request, _ ratelimit.Decision, reason string) {
			writeProblem(w, r, &Error{Status: http.StatusTooManyRequests, Slug: "rate-limited", Title: "Too many requests",
				Detail: reason + "; retry after the seconds in Retry-After"})
		},
	}
}

// keyID names the API key a request authenticated with, for its buckets;
// "" without one (authentication off).
func keyID(r *http.Request) string {
	k, _ := KeyFromContext(r.Context())
	return k.ID
}

// failedAuth drains the failed-auth bucket of r's client address: called
// on every missing, wrong, unknown, expired or revoked key.
func (s *Server) failedAuth(r *http.Request) {
	if s.limiter != nil {
		s.limiter.FailedAuth(ClientAddr(r))
	}
}
