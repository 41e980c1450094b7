package api

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

// Cross-site and DNS-rebinding guard. A web page the operator visits can
// send requests to the API (it listens on loopback, the browser is on the
// same machine) without a CORS preflight when they look like form posts,
// and a page on a name the attacker re-points at 127.0.0.1 is even
// same-origin with it. Three checks stop both, with keys or without:
//
//   - Host must be a name the API is known by (http.hosts), a loopback name
//     or an IP address literal: a rebinding page's requests carry its own
//     name, never one of these.
//   - Origin, when a browser sends one, must be the API's own origin or one
//     listed in http.allowed_origins.
//   - A request body must be JSON (Content-Type application/json or
//     *+json), or what the route documents (multipart/form-data or a
//     file's own type for POST /v1/media): the content types a page can
//     send without a preflight are refused everywhere else.

// requestGuard holds the names and origins the API answers to.
type requestGuard struct {
	hosts   map[string]bool // lower-case host names without port
	anyHost bool
	origins map[string]bool // scheme://host[:port], lower case
}

func newRequestGuard(hosts, origins []string) *requestGuard {
	g := &requestGuard{hosts: map[string]bool{}, origins: map[string]bool{}}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "*" {
			g.anyHost = true
			continue
		}
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		g.allowHost(h)
	}
	// The machine's own name: a rebinding page cannot be served under it.
	if name, err := os.Hostname(); err == nil {
		g.allowHost(name)
	}
	for _, o := range origins {
		g.origins[strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")] = true
	}
	return g
}

// allowHost adds a name; call it before serving.
func (g *requestGuard) allowHost(h string) {
	if h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), "."); h != "" {
		g.hosts[h] = true
	}
}

// hostAllowed reports whether a request's Host header names this API.
func (g *requestGuard) hostAllowed(hostport string) bool {
	if g.anyHost {
		return true
	}
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if h == "" {
		return false
	}
	// An address literal cannot be re-pointed by DNS, so it is not a
	// rebinding vector: a page at http://192.168.1.5:8080 is that address.
	if a, err := netip.ParseAddr(h); err == nil && a.Zone() == "" {
		return true
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	return g.hosts[h]
}

// originAllowed reports whether a browser's Origin may use the API: its own
// origin (same host and port as the request's Host) or a listed one.
func (g *requestGuard) originAllowed(origin, host string) bool {
	o := strings.ToLower(origin)
	if g.origins["*"] || g.origins[o] {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // includes "null" (sandboxed frames, file: pages)
	}
	norm := func(hostport string) string {
		return strings.TrimSuffix(strings.ToLower(hostport), ":"+defaultPort(u.Scheme))
	}
	return norm(u.Host) == norm(host)
}

// listed reports whether origin is explicitly allowed (and so gets CORS
// headers).
func (g *requestGuard) listed(origin string) bool {
	return g.origins["*"] || g.origins[strings.ToLower(origin)]
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// guard wraps the router: Host and Origin are checked before any route
// runs, and allowed cross-origin callers get their CORS answers.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isProbe(r) {
			// Probes tell nothing and change nothing; load balancers call
			// them under names of their own.
			next.ServeHTTP(w, r)
			return
		}
		if !s.reqGuard.hostAllowed(r.Host) {
			writeProblem(w, r, &Error{Status: http.StatusMisdirectedRequest, Slug: "unknown-host", Title: "Unknown host", Field: "Host",
				Detail: fmt.Sprintf("this API does not answer to %q; add the name to http.hosts (names a proxy or LAN clients use to reach it)", r.Host)})
			return
		}
		origin := r.Header.Get("Origin")
		if origin == "" && r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			origin = "null"
		}
		if origin != "" {
			if !s.reqGuard.originAllowed(origin, r.Host) {
				writeProblem(w, r, &Error{Status: http.StatusForbidden, Slug: "cross-origin", Title: "Cross-origin request refused", Field: "Origin",
					Detail: fmt.Sprintf("requests from %q are refused; list trusted web origins in http.allowed_origins", origin)})
				return
			}
			if s.reqGuard.listed(origin) {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", origin)
				h.Add("Vary", "Origin")
				if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
					h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PATCH, DELETE")
					h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, X-Request-Id, Last-Event-ID")
					h.Set("Access-Control-Max-Age", "600")
					w.WriteHeader(http.StatusNoContent)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// bodyKind says which request bodies a route takes.
type bodyKind int

const (
	jsonBody   bodyKind = iota // application/json or *+json
	uploadBody                 // anything; the route checks it (POST /v1/media)
)

// hasBody reports whether the request carries a body (a known length above
// zero, or chunked).
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// isJSONType reports whether a Content-Type header names JSON.
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// checkBodyType refuses a body that is not JSON on a JSON route, whether
// or not the handler reads it: a form post must not reach a handler that
// acts without reading its body.
func checkBodyType(r *http.Request, kind bodyKind) error {
	if kind != jsonBody || !hasBody(r) || isJSONType(r.Header.Get("Content-Type")) {
		return nil
	}
	return unsupportedType(r.Header.Get("Content-Type"))
}

func unsupportedType(ct string) *Error {
	detail := "send the body as application/json (Content-Type header missing)"
	if ct != "" {
		detail = fmt.Sprintf("send application/json, not %q", ct)
	}
	return &Error{Status: http.StatusUnsupportedMediaType, Slug: "unsupported-media-type", Title: "Unsupported media type",
		Field: "Content-Type", Detail: detail}
}
