// Package api is wildcatd's REST API: one gorilla/mux router, JSON in and
// out, RFC 9457 problem documents for every error, everything but the
// probes under /v1.
package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/ratelimit"
)

// ReadinessFunc reports why the daemon cannot serve yet, or nil when it can.
type ReadinessFunc func(ctx context.Context) error

// Options configures a Server.
type Options struct {
	Logger       *slog.Logger
	MaxBodyBytes int64
	// Ready backs /readyz.
	Ready ReadinessFunc
	// Accounts serves /v1/accounts; nil leaves those routes out.
	Accounts Accounts
	// Sim serves /v1/accounts/{id}/sim/inbound; nil leaves it out.
	Sim SimInjector
	// Channels serves /v1/accounts/{id}/channels; nil leaves it out.
	Channels ChannelSource
	// Groups serves /v1/accounts/{id}/groups; nil leaves it out.
	Groups Groups
	// Messages, Sender and Media serve history, sending and /v1/media; nil
	// leaves those routes out. Fetcher downloads media named by URL.
	Messages    MessageStore
	Sender      Sender
	Media       MediaStore
	Fetcher     MediaFetcher
	Idempotency IdempotencyStore
	// Pipeline serves /v1/pipeline and Deliveries /v1/deliveries (the
	// outbox); nil leaves those routes out.
	Pipeline   Pipeline
	Deliveries Deliveries
	// Traces serves GET /v1/accounts/{id}/messages/{messageId}/trace (with
	// Accounts; the event's jobs from Deliveries); nil leaves it out.
	Traces Traces
	// Plugins serves GET /v1/plugins; nil leaves it out.
	Plugins Plugins
	// Webhooks serves /v1/webhooks (the endpoint registry); nil leaves it
	// out.
	Webhooks Webhooks
	// MediaArchive serves POST /v1/media/archive (the media archive's
	// backfill); nil leaves it out.
	MediaArchive MediaArchiver
	// Rules serves GET /v1/rules (the rules of the pipeline's rules
	// stages); nil leaves it out.
	Rules Rules
	// Events serves GET /v1/events (nil leaves it out); StoredEvents lets a
	// client resume after an event the stream no longer remembers.
	// EventsKeepAlive is the interval of keep-alive comments (default 15 s).
	Events          EventStream
	StoredEvents    StoredEvents
	EventsKeepAlive time.Duration
	// ConfigReloader lets POST /v1/pipeline/reload without a body re-read
	// the configuration; nil requires the stages in the body.
	ConfigReloader ConfigReloader
	// Metrics serves GET /metrics (Prometheus); nil leaves it out.
	// MetricsOpen serves it without a key (http.metrics_auth).
	Metrics     http.Handler
	MetricsOpen bool
	// UI serves the web dashboard under /ui without a key; nil leaves it
	// out.
	UI http.Handler
	// Keys checks every request's API key and serves /v1/keys; nil turns
	// authentication off (http.auth: false).
	Keys Keys
	// AuthFailed, when set, hears of every failed authentication.
	AuthFailed AuthFailure
	// TrustedProxies are the peers whose X-Forwarded-For / Forwarded
	// headers name the client (ClientAddr).
	TrustedProxies []netip.Prefix
	// TLSCertFile and TLSKeyFile, when set, serve HTTPS; the files are
	// read again when they change.
	TLSCertFile, TLSKeyFile string
	// RateLimiter limits requests per client address (and API key); nil
	// limits nothing.
	RateLimiter *ratelimit.Limiter

	// Hosts are the names (Host header, port ignored) the API answers to
	// besides loopback names and IP address literals; "*" allows any
	// (http.hosts). AllowedOrigins are the web origins a browser may call
	// it from besides its own (http.allowed_origins).
	Hosts          []string
	AllowedOrigins []string
	// ReadTimeout bounds reading a whole request, body included
	// (http.read_timeout); 0 means 60 s. UploadTimeout replaces it on
	// routes whose bodies may carry media (http.upload_timeout); 0 means
	// 10 min.
	ReadTimeout   time.Duration
	UploadTimeout time.Duration
	// Cluster says where each account's session runs: requests that need
	// it are forwarded to its daemon, and GET /v1/instances lists the
	// daemons. nil: every account runs here and the route is left out.
	Cluster Cluster
	// RuleDirs are the directories POST /v1/pipeline/reload may name rule
	// files in (config's EffectiveRuleDirs).
	RuleDirs []string
}

// Server owns the router and the HTTP listener.
type Server struct {
	log     *slog.Logger
	maxBody int64
	ready   ReadinessFunc
	root    *mux.Router
	srv     *http.Server
	ln      net.Listener
	addr    atomic.Pointer[string] // read by other goroutines while Listen runs
	serveCh chan error
	// stopping is closed when Shutdown begins, so long-lived responses
	// (the event stream) end instead of holding the drain to its deadline.
	stopping chan struct{}

	keys          Keys
	onAuthFailure AuthFailure
	// access is what each route requires, declared in routes.go; written
	// only while the routes are built.
	access  map[*mux.Route]access
	proxies []netip.Prefix
	tlsCert *certReloader
	tlsErr  error
	// limiter is the rate limiter (nil: none); failedAuth feeds it.
	limiter  *ratelimit.Limiter
	reqGuard *requestGuard
	// cluster forwards requests for accounts running elsewhere; nil: none.
	cluster Cluster
	// uploadTimeout is the read deadline of routes whose body limit is
	// above maxBody (media).
	uploadTimeout time.Duration
}

// New builds the server and its routes; Listen starts it.
func New(opts Options) *Server {
	s := &Server{log: opts.Logger, maxBody: opts.MaxBodyBytes, ready: opts.Ready, stopping: make(chan struct{}),
		reqGuard: newRequestGuard(opts.Hosts, opts.AllowedOrigins),
		keys:     opts.Keys, cluster: opts.Cluster, onAuthFailure: opts.AuthFailed, access: map[*mux.Route]access{}, proxies: opts.TrustedProxies}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.TLSCertFile != "" || opts.TLSKeyFile != "" {
		s.tlsCert, s.tlsErr = newCertReloader(opts.TLSCertFile, opts.TLSKeyFile, s.log)
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = time.Minute
	}
	s.uploadTimeout = opts.UploadTimeout
	if s.uploadTimeout <= 0 {
		s.uploadTimeout = 10 * time.Minute
	}
	if s.ready == nil {
		s.ready = func(context.Context) error { return nil }
	}
	// Paths are matched as sent: cleaning would answer /v1/media/.. with a
	// redirect elsewhere instead of refusing the id.
	s.root = mux.NewRouter().SkipClean(true)
	s.root.NotFoundHandler = s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &Error{Status: http.StatusNotFound, Slug: "no-route", Title: "Not found", Detail: fmt.Sprintf("no route for %s", r.URL.Path)}
	})
	s.root.MethodNotAllowedHandler = s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &Error{Status: http.StatusMethodNotAllowed, Slug: "method-not-allowed", Title: "Method not allowed",
			Detail: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)}
	})
	s.limiter = opts.RateLimiter
	// Routed requests: the key is checked, then counted against its own
	// buckets (rate limits per key need the authenticated key).
	s.root.Use(s.authorize)
	if s.limiter != nil {
		s.root.Use(s.rateLimits().Keys)
	}
	// Authorised and counted here, then served by the account's daemon.
	s.root.Use(s.forward)
	s.routes(opts)
	var h http.Handler = s.root
	if s.limiter != nil {
		// Before routing: an address that keeps failing is turned away
		// before its key is even looked up.
		h = s.rateLimits().Guard(h)
	}
	s.srv = &http.Server{
		Handler:           s.instrument(s.guard(h)),
		ReadHeaderTimeout: 10 * time.Second,
		// A client trickling a body is cut here: without it only the
		// headers had a deadline. No WriteTimeout: it would cut the event
		// stream and large media downloads; a slow reader of a response
		// costs a goroutine, not memory.
		ReadTimeout: opts.ReadTimeout,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s
}

// Handle registers a handler under /v1. Routes sit on the root router, not a
// /v1 subrouter: mux reports a method mismatch inside a subrouter as 404,
// and a client deserves the 405.
func (s *Server) Handle(path string, h HandlerFunc, methods ...string) *Route {
	limit := s.maxBody
	if l, ok := smallBodies[path]; ok && l < limit {
		limit = l
	}
	return &Route{s: s, r: s.root.Handle("/v1"+path, s.handleLimit(h, limit)).Methods(methods...)}
}

// smallBodies are the body limits of routes whose requests are a few
// fields, below http.max_body_bytes: nothing legitimate comes near them.
var smallBodies = map[string]int64{
	"/accounts":                   16 << 10,
	"/accounts/{id}/pairing-code": 4 << 10,
	"/accounts/{id}/connect":      4 << 10,
	"/accounts/{id}/logout":       4 << 10,
	"/webhooks":                   64 << 10,
	"/webhooks/{id}":              64 << 10,
	"/media/archive":              4 << 10,
	"/deliveries/replay":          16 << 10,
	"/deliveries/{id}/retry":      4 << 10,
}

// HandleLimit is Handle for a route whose bodies may exceed the server's
// limit (media), up to maxBody bytes.
func (s *Server) HandleLimit(path string, maxBody int64, h HandlerFunc, methods ...string) *Route {
	return &Route{s: s, r: s.root.Handle("/v1"+path, s.handleLimit(h, maxBody)).Methods(methods...)}
}

// HandleBody is HandleLimit for a route taking bodies of the given kind
// (multipart or a file's own type, not only JSON).
func (s *Server) HandleBody(path string, maxBody int64, kind bodyKind, h HandlerFunc, methods ...string) *Route {
	return &Route{s: s, r: s.root.Handle("/v1"+path, s.handleBody(h, maxBody, kind)).Methods(methods...)}
}

// Router is the server's router, for walking the routes (the OpenAPI test).
func (s *Server) Router() *mux.Router { return s.root }

// Listen binds addr and serves in the background (HTTPS when a
// certificate is configured).
func (s *Server) Listen(addr string) error {
	if s.tlsErr != nil {
		return s.tlsErr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if s.tlsCert != nil {
		ln = tls.NewListener(ln, s.tlsCert.config())
	}
	s.ln = ln
	// The name the API is bound to is one it answers to.
	if h, _, err := net.SplitHostPort(addr); err == nil {
		s.reqGuard.allowHost(h)
	}
	a := ln.Addr().String()
	s.addr.Store(&a)
	s.serveCh = make(chan error, 1)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveCh <- err
	}()
	return nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// Shutdown stops accepting connections and waits for in-flight requests until
// ctx ends; then it closes whatever is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	s.srv.RegisterOnShutdown(func() { close(s.stopping) })
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("drain HTTP requests: %w", err)
	}
	return <-s.serveCh
}
