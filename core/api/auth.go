package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/apikeys"
)

// Keys checks and manages API keys; *apikeys.Keyring implements it.
type Keys interface {
	Authenticate(ctx context.Context, token string) (*apikeys.Key, error)
	Create(ctx context.Context, s apikeys.Spec) (*apikeys.Key, string, error)
	Get(ctx context.Context, id string) (*apikeys.Key, error)
	List(ctx context.Context) ([]*apikeys.Key, error)
	Rotate(ctx context.Context, id string) (*apikeys.Key, string, error)
	Delete(ctx context.Context, id string) error
}

// AuthFailure reports a request whose authentication failed (no key, an
// unknown or wrong one, an expired one), so it can be limited harder.
// keyID is the id the token named, "" when none.
type AuthFailure func(r *http.Request, keyID string, err error)

// KeyInfo is the key a request was authenticated with.
type KeyInfo struct {
	ID, Name string
	Scopes   []string
	// Accounts limits the key to these accounts; empty means every one.
	Accounts []string
}

// Allows reports whether the key may act for account.
func (k KeyInfo) Allows(account string) bool {
	return len(k.Accounts) == 0 || slices.Contains(k.Accounts, account)
}

type keyCtxKey struct{}

// KeyFromContext returns the request's authenticated key; false when the
// request carried none (authentication off, or a public route).
func KeyFromContext(ctx context.Context) (KeyInfo, bool) {
	k, ok := ctx.Value(keyCtxKey{}).(KeyInfo)
	return k, ok
}

// allowsAccount reports whether the request's key (if any) may see account.
func allowsAccount(ctx context.Context, account string) bool {
	k, ok := KeyFromContext(ctx)
	return !ok || k.Allows(account)
}

// accountRule says how a route treats a key limited to some accounts.
type accountRule int

const (
	// spansAccounts: the route reaches every account's data (or none in
	// particular): a limited key is refused.
	spansAccounts accountRule = iota
	// perAccount: /v1/accounts/{id}/…: the key must allow {id}.
	perAccount
	// filtered: the handler shows a limited key only its accounts.
	filtered
)

// access is what a route requires, declared where it is registered.
type access struct {
	public bool
	// scope is required ("" : any valid key).
	scope    string
	accounts accountRule
}

// Route is a registered route, for declaring what it requires.
type Route struct {
	s *Server
	r *mux.Route
}

// Needs declares the scope the route requires ("" : any valid key). A
// route under /v1/accounts/{id} checks the key's accounts against {id};
// others refuse keys limited to accounts unless Filtered.
func (rt *Route) Needs(scope string) *Route {
	a := access{scope: scope}
	if tpl, _ := rt.r.GetPathTemplate(); strings.HasPrefix(tpl, "/v1/accounts/{id}") {
		a.accounts = perAccount
	}
	rt.s.access[rt.r] = a
	return rt
}

// Filtered lets keys limited to accounts reach the route: its handler
// shows them only their accounts.
func (rt *Route) Filtered() *Route {
	a := rt.s.access[rt.r]
	a.accounts = filtered
	rt.s.access[rt.r] = a
	return rt
}

// Public declares a route open to requests without a key.
func (rt *Route) Public() *Route {
	rt.s.access[rt.r] = access{public: true}
	return rt
}

// RouteAccess reports what a route requires: public, or the scope ("" :
// any key); declared is false for a route that declares nothing (which
// only an admin key reaches). For the tests that walk the router.
func (s *Server) RouteAccess(r *mux.Route) (public bool, scope string, declared bool) {
	a, ok := s.access[r]
	return a.public, a.scope, ok
}

// errUnauthenticated is the 401 of a request without a usable key.
func errUnauthenticated(detail string) *Error {
	return &Error{Status: http.StatusUnauthorized, Slug: "unauthenticated", Title: "Authentication required", Detail: detail}
}

func errForbidden(detail string) *Error {
	return &Error{Status: http.StatusForbidden, Slug: "forbidden", Title: "Forbidden", Detail: detail}
}

// authorize is the router's middleware: every matched route checks the
// request's key against what the route declared. Keys are read from the
// store on each request (no cache): revocation takes effect at once.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, declared := s.access[mux.CurrentRoute(r)]
		if a.public || s.keys == nil { // s.keys nil: http.auth is off
			next.ServeHTTP(w, r)
			return
		}
		if !declared {
			// A route added without Needs: only an admin key reaches it
			// (and TestEveryRouteNeedsAKey fails).
			a = access{scope: apikeys.ScopeAdmin}
		}
		key, err := s.authenticate(r)
		if err != nil {
			s.refuse(w, r, err)
			return
		}
		info := KeyInfo{ID: key.ID, Name: key.Name, Scopes: key.Scopes, Accounts: key.Accounts}
		if ri := requestInfoFrom(r.Context()); ri != nil {
			ri.key = &info
		}
		if a.scope != "" && !key.Has(a.scope) {
			s.refuse(w, r, errForbidden(fmt.Sprintf("key %q lacks the scope %s", key.Name, a.scope)))
			return
		}
		if key.Restricted() {
			switch a.accounts {
			case perAccount:
				if id := mux.Vars(r)["id"]; !key.Allows(id) {
					s.refuse(w, r, errForbidden(fmt.Sprintf("key %q is not allowed account %q", key.Name, id)))
					return
				}
			case spansAccounts:
				s.refuse(w, r, errForbidden(fmt.Sprintf("key %q is limited to accounts %s; this route spans every account", key.Name, strings.Join(key.Accounts, ", "))))
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCtxKey{}, info)))
	})
}

// authenticate finds the request's key; a 401 *Error when there is no
// usable one.
func (s *Server) authenticate(r *http.Request) (*apikeys.Key, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		err := errUnauthenticated("send an API key: Authorization: Bearer wck_…")
		s.authFailed(r, "", err)
		return nil, err
	}
	tok = strings.TrimSpace(tok)
	key, err := s.keys.Authenticate(r.Context(), tok)
	switch {
	case err == nil:
		return key, nil
	case errors.Is(err, apikeys.ErrExpired):
		e := errUnauthenticated(fmt.Sprintf("API key %q expired at %s", key.ID, key.ExpiresAt.Format(time.RFC3339)))
		s.authFailed(r, key.ID, e)
		return nil, e
	case errors.Is(err, apikeys.ErrInvalid):
		e := errUnauthenticated("the API key is not valid (unknown, revoked, rotated, or mistyped)")
		s.authFailed(r, apikeys.ID(tok), e)
		return nil, e
	default:
		return nil, Unavailable("cannot check the API key: %v", err)
	}
}

func (s *Server) authFailed(r *http.Request, keyID string, err error) {
	if ri := requestInfoFrom(r.Context()); ri != nil && keyID != "" {
		ri.key = &KeyInfo{ID: keyID}
	}
	s.failedAuth(r) // rate limits: failures are limited harder
	if s.onAuthFailure != nil {
		s.onAuthFailure(r, keyID, err)
	}
}

// refuse writes a 401/403 (or 503) problem.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var ae *Error
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wildcat"`)
	}
	writeProblem(w, r, err)
	s.log.Debug("request refused", slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
}
