package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/cluster"
)

// Cluster is where accounts run: the daemons sharing the store and the
// owner of each account's session. On the embedded engine it is this
// daemon alone.
type Cluster interface {
	// ID is this daemon's instance id.
	ID() string
	// Owner is the base URL of the daemon running the account's session,
	// or local; it waits up to wait for an account whose lease is being
	// placed, then answers cluster.ErrNoOwner.
	Owner(ctx context.Context, accountID string, wait time.Duration) (url string, local bool, err error)
	// OwnerOf is the id of the instance running the account ("" none).
	OwnerOf(ctx context.Context, accountID string) (string, error)
	Instances(ctx context.Context) ([]cluster.Instance, error)
}

// ForwardedHeader marks a request one daemon forwarded to another: the
// receiver serves it itself or refuses it, never forwards it again.
const ForwardedHeader = "X-Wildcat-Forwarded-By"

// forwardWait is how long a request for an account without a live owner
// waits for its lease to be placed (a new account, a failover) before 503.
const forwardWait = 15 * time.Second

// forwarded are the routes that need the account's session, by method and
// path template: on another daemon than the owner they are forwarded.
var forwarded = map[string]bool{
	"POST /v1/accounts/{id}/connect":      true,
	"POST /v1/accounts/{id}/logout":       true,
	"POST /v1/accounts/{id}/pairing-code": true,
	"DELETE /v1/accounts/{id}":            true,
	"PATCH /v1/accounts/{id}":             true, // a new proxy reconnects the session
	"POST /v1/accounts/{id}/messages":     true,
	"POST /v1/accounts/{id}/sim/inbound":  true,
}

// needsSession reports whether the route runs on the account's owner: the
// list above and every group and channel call (they ask WhatsApp).
func needsSession(method, tmpl string) bool {
	if forwarded[method+" "+tmpl] {
		return true
	}
	return strings.HasPrefix(tmpl, "/v1/accounts/{id}/groups") || strings.HasPrefix(tmpl, "/v1/accounts/{id}/channels")
}

// forward sends a request that needs an account's session to the daemon
// that runs it (same method, path, body and Authorization), so such calls
// work on any daemon. A request that was forwarded already is served here
// or refused, never forwarded again.
func (s *Server) forward(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := mux.CurrentRoute(r)
		if s.cluster == nil || route == nil {
			next.ServeHTTP(w, r)
			return
		}
		tmpl, err := route.GetPathTemplate()
		id := mux.Vars(r)["id"]
		if err != nil || id == "" || !needsSession(r.Method, tmpl) {
			next.ServeHTTP(w, r)
			return
		}
		hop := r.Header.Get(ForwardedHeader)
		target, local, err := s.cluster.Owner(r.Context(), id, forwardWait)
		switch {
		case err == nil && local:
			next.ServeHTTP(w, r)
			return
		case err == nil && hop != "":
			// The sender thought this daemon owns the account, this daemon
			// thinks another does: the lease is moving. Refuse rather than
			// bounce it around.
			err = fmt.Errorf("account %q is moving between daemons (forwarded by %s): %w", id, hop, cluster.ErrNoOwner)
		case err == nil:
			s.proxyTo(w, r, target)
			return
		}
		if errors.Is(err, cluster.ErrNoOwner) {
			w.Header().Set("Retry-After", "5")
			s.writeError(w, r, &Error{Status: http.StatusServiceUnavailable, Slug: "no-owner", Title: "No daemon runs the account right now",
				Detail: err.Error(), Err: err})
			return
		}
		s.writeError(w, r, err)
	})
}

// proxyTo relays the request to the daemon at base.
func (s *Server) proxyTo(w http.ResponseWriter, r *http.Request, base string) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		s.writeError(w, r, fmt.Errorf("owner's advertised URL %q: %w", base, err))
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = u.Host
			pr.Out.Header.Set(ForwardedHeader, s.cluster.ID())
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Retry-After", "5")
			s.writeError(w, r, &Error{Status: http.StatusBadGateway, Slug: "owner-unreachable", Title: "The daemon running the account did not answer",
				Detail: "forwarding to the account's daemon failed; retry", Err: err})
		},
	}
	rp.ServeHTTP(w, r)
}

type instanceRoutes struct{ cluster Cluster }

func (h *instanceRoutes) list(w http.ResponseWriter, r *http.Request) error {
	ins, err := h.cluster.Instances(r.Context())
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"instances": ins})
}

// writeError renders err as a problem, logging server faults.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if ae := writeProblem(w, r, err); ae.Status >= 500 {
		s.log.Warn("forwarding failed", slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
	}
}
