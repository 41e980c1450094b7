package watest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// Server is an in-process WhatsApp: the chat and media servers, the phones of
// the accounts that pair with it, and the contacts that message them.
// Create it with New; it shuts down when the test ends.
type Server struct {
	tb        testing.TB
	opts      options
	http      *httptest.Server
	mux       *http.ServeMux
	static    *keys.KeyPair
	certChain []byte

	ctx    context.Context // cancelled by Close; bounds every connection
	cancel context.CancelFunc
	wg     sync.WaitGroup

	logMu  sync.Mutex
	closed bool

	// mu guards everything below and the mutable state of Accounts, Contacts
	// and deliveries. It is never held across network writes.
	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every state change
	conns      map[*conn]struct{}
	pairing    map[string]*conn // QR ref → connection that displayed it
	accounts   map[string]*Account
	lids       map[string]*Account // LID user → account
	contacts   map[string]*Contact
	groups     map[string]*group // by the group JID's user part
	channels   []*channel
	deliveries map[string]*delivery
	stalls     []*Stall
	media      map[string][]byte // download path → encrypted blob
	// phoneMedia: contact message ID → its attachment as the phone keeps
	// it; strayRetries: media retry requests for messages it has not.
	phoneMedia   map[types.MessageID]*phoneMedia
	strayRetries map[types.MessageID][]MediaRetryRequest
	nextID       int
	nextPhone    int
	nextDevice   uint16
	nextGroup    int
}

type options struct {
	wait          time.Duration
	trace         bool
	firstPhone    int
	reportedCount int
}

// Option configures a Server.
type Option func(*options)

// WithWaitTimeout bounds every wait inside the double (for example ScanQR
// waiting for the client's pairing confirmation). Default 15 s.
func WithWaitTimeout(d time.Duration) Option { return func(o *options) { o.wait = d } }

// WithTrace logs every node exchanged with clients through t.Logf.
func WithTrace() Option { return func(o *options) { o.trace = true } }

// New starts a Server on 127.0.0.1 and registers its shutdown with t.Cleanup.
// It installs the test root key (InstallRootKey) first.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	InstallRootKey()
	o := options{wait: 15 * time.Second, firstPhone: 15550100001, reportedCount: whatsmeow.MinPreKeyCount}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{
		tb:           t,
		opts:         o,
		static:       keys.NewKeyPair(),
		changed:      make(chan struct{}),
		conns:        map[*conn]struct{}{},
		pairing:      map[string]*conn{},
		accounts:     map[string]*Account{},
		lids:         map[string]*Account{},
		contacts:     map[string]*Contact{},
		groups:       map[string]*group{},
		deliveries:   map[string]*delivery{},
		media:        map[string][]byte{},
		phoneMedia:   map[types.MessageID]*phoneMedia{},
		strayRetries: map[types.MessageID][]MediaRetryRequest{},
		nextPhone:    o.firstPhone,
		nextDevice:   1,
	}
	var err error
	if s.certChain, err = makeCertChain(s.static.Pub); err != nil {
		t.Fatalf("watest: %v", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/chat", s.serveWebsocket)
	mux.HandleFunc("/mms/", s.serveUpload)
	mux.HandleFunc("/v/", s.serveDownload)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.logf("unhandled HTTP %s %s%s", r.Method, r.Host, r.URL.Path)
		http.NotFound(w, r)
	})
	s.mux = mux
	s.http = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// Addr is the server's listening address (host:port).
func (s *Server) Addr() string { return s.http.Listener.Addr().String() }

// HTTPClient returns a client whose every connection, whatever host and
// scheme the URL names, goes to this server in plain TCP: whatsmeow's
// websocket (wss://web.whatsapp.com) and media (https://mmg.whatsapp.net)
// requests reach the double unchanged. It has no timeout, as a websocket
// client must not.
func (s *Server) HTTPClient() *http.Client {
	addr := s.Addr()
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:       nil,
		DialContext: dial,
		// The transport treats whatever DialTLSContext returns as already
		// past TLS, so a plain connection serves https and wss URLs.
		DialTLSContext:      dial,
		MaxIdleConnsPerHost: 4,
	}}
}

// Configure points cli at this server: its pre-login, websocket and media
// HTTP clients. Call it before cli.Connect and again after anything that
// replaces them (SetProxy, SetSOCKSProxy).
func (s *Server) Configure(cli *whatsmeow.Client) {
	hc := s.HTTPClient()
	cli.SetPreLoginHTTPClient(hc)
	cli.SetWebsocketHTTPClient(hc)
	cli.SetMediaHTTPClient(hc)
}

// Handler serves the double's HTTP endpoints (websocket, media upload and
// download), for a test that serves them itself: over TLS behind a proxy,
// or with a check of where each connection comes from. Close still ends
// the websocket connections it accepted.
func (s *Server) Handler() http.Handler { return s.mux }

// Close disconnects every client and stops the server. It runs at test
// cleanup; calling it earlier simulates WhatsApp becoming unreachable.
func (s *Server) Close() {
	s.logMu.Lock()
	already := s.closed
	s.closed = true
	s.logMu.Unlock()
	if already {
		return
	}
	s.cancel()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow("server closed")
	}
	s.http.CloseClientConnections()
	s.http.Close()
	s.wg.Wait()
}

// logf logs through the test until the server closes; goroutines that
// outlive the test must not call t.Logf.
func (s *Server) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if !s.closed {
		s.tb.Helper()
		s.tb.Logf("watest: "+format, args...)
	}
}

// notify wakes every waiter; callers hold s.mu.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor blocks until cond (evaluated under s.mu) holds, ctx ends or the
// server closes.
func (s *Server) waitFor(ctx context.Context, what string, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("watest: waiting for %s: %w", what, ctx.Err())
		case <-s.ctx.Done():
			return fmt.Errorf("watest: waiting for %s: server closed", what)
		}
	}
}

// waitCtx bounds ctx by the server's wait timeout.
func (s *Server) waitCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.wait)
}

// newID returns a server-unique request ID; callers hold s.mu or not.
func (s *Server) newID(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return fmt.Sprintf("%s%d", prefix, s.nextID)
}

func (s *Server) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "websocket only", http.StatusBadRequest)
		return
	}
	s.logMu.Lock()
	closed := s.closed
	if !closed {
		s.wg.Add(1)
	}
	s.logMu.Unlock()
	if closed {
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	c, err := s.accept(w, r)
	if err != nil {
		s.logf("websocket accept: %v", err)
		return
	}
	c.serve()
}
