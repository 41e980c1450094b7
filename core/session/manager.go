package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
)

// ManagerOptions configures a Manager.
type ManagerOptions struct {
	// Accounts stores the accounts (NewMongoAccounts, NewSQLiteAccounts).
	Accounts AccountStore
	// ForgetAuth deletes an account's auth state (every driver's) when the
	// account is deleted; nil when there is nothing to delete.
	ForgetAuth func(ctx context.Context, accountID string) error
	Messages   *messages.Store
	Logger     *slog.Logger
	// OnEvent sees every event once it is stored (the pipeline's intake).
	// Redelivered message events that were already stored are passed on
	// again only while their pipelineDone is false. An error fails Emit, so the driver does not acknowledge the
	// event to WhatsApp; the event stays stored, for pipeline recovery.
	OnEvent func(ctx context.Context, ev *event.Event) error
	// BeforeOpen runs before an account's session is opened, so before it
	// can emit anything: the daemon recovers the account's stored but
	// unfinished events there (pipeline.Engine.Recover), which keeps live
	// events from overtaking them. An error is retried like a failed start.
	BeforeOpen func(ctx context.Context, accountID string) error
	// RetryMin and RetryMax bound the backoff between failed Connect calls;
	// zero means 1 s and 1 min.
	RetryMin, RetryMax time.Duration
	// Owns, when set (several daemons on one MongoDB), says whether this
	// daemon holds the account's lease: Start starts only those, and the
	// others start through StartAccount when their lease arrives.
	Owns func(accountID string) bool
	// Guard, when set, is asked before every write of an account's session
	// (its events, its sends): an error refuses the write (a daemon whose
	// lease was superseded); the Writer is recorded on stored messages.
	Guard func(accountID string) (messages.Writer, error)
}

// Manager owns the accounts: their documents, their drivers and the open
// session of each account this daemon runs. It is also the Sink the
// sessions report to.
type Manager struct {
	accounts   AccountStore
	forgetAuth func(ctx context.Context, accountID string) error
	msgs       *messages.Store
	log        *slog.Logger
	onEvent    func(ctx context.Context, ev *event.Event) error
	before     func(ctx context.Context, accountID string) error
	retryMin   time.Duration
	retryMax   time.Duration
	owns       func(accountID string) bool
	guard      func(accountID string) (messages.Writer, error)
	// after waits between connect attempts: time.After, or a test's
	// recorder (export_test.go).
	after func(time.Duration) <-chan time.Time

	// ops serialises lifecycle calls (connect, logout, delete) per account.
	ops stripedLock

	mu       sync.Mutex
	drivers  map[string]Driver
	sessions map[string]*running
	closed   bool
	changed  chan struct{} // closed and replaced when a session's state changes

	// ctx lives as long as the manager; background work derives from it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// running is an open session of this daemon.
type running struct {
	sess Session
	// stop ends the connect retry loop, if one runs.
	stop context.CancelFunc
	// started is when this daemon began starting the session; connected
	// whether its last account state event was account.connected.
	started   time.Time
	connected bool
}

// NewManager returns a Manager with no drivers; Register them, then Start.
func NewManager(opts ManagerOptions) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		accounts:   opts.Accounts,
		forgetAuth: opts.ForgetAuth,
		msgs:       opts.Messages,
		log:        opts.Logger,
		onEvent:    opts.OnEvent,
		before:     opts.BeforeOpen,
		retryMin:   opts.RetryMin,
		retryMax:   opts.RetryMax,
		owns:       opts.Owns,
		guard:      opts.Guard,
		after:      time.After,
		drivers:    map[string]Driver{},
		sessions:   map[string]*running{},
		changed:    make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
	}
}

// Register makes a driver available to accounts naming it.
func (m *Manager) Register(d Driver) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drivers[d.Name()] = d
}

// DriverAvailable reports whether accounts of the named driver can run here.
func (m *Manager) DriverAvailable(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.drivers[name] != nil
}

func (m *Manager) driver(name string) (Driver, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d := m.drivers[name]; d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("driver %s is not available in this build yet: %w", name, ErrDriverUnavailable)
}

// Start creates the declared accounts that do not exist yet and starts a
// session for every account that is not logged out. It returns an error only
// when the store fails (call it again); a session that cannot start is
// logged, recorded as the account's lastError and retried in the background.
// Calling Start again skips accounts that already run.
func (m *Manager) Start(ctx context.Context, declared []AccountSpec) error {
	for _, spec := range declared {
		if err := validateSpec(spec); err != nil {
			return fmt.Errorf("declared account %q: %w", spec.ID, err)
		}
		_, err := m.insert(ctx, spec)
		switch {
		case err == nil:
			m.log.Info("declared account created", slog.String("account", spec.ID), slog.String("driver", spec.Driver))
		case errors.Is(err, ErrAccountExists):
			// A declared proxy stays in force: the config is where the
			// operator keeps it (an unchanged one is no write).
			if spec.Proxy != "" {
				if _, err := m.SetProxy(ctx, spec.ID, spec.Proxy); err != nil {
					return fmt.Errorf("declared account %q: proxy: %w", spec.ID, err)
				}
			}
		default:
			return err
		}
	}
	all, err := m.accounts.List(ctx)
	if err != nil {
		return err
	}
	var firsts []<-chan struct{}
	for _, a := range all {
		if a.State == StateLoggedOut || (m.owns != nil && !m.owns(a.ID)) {
			continue
		}
		d, err := m.driver(a.Driver)
		if err != nil {
			m.log.Warn("account not started", slog.String("account", a.ID), slog.Any("error", err))
			_ = m.accounts.Apply(ctx, a.ID, AccountChange{LastError: err.Error()})
			continue
		}
		if first := m.startInBackground(a, d); first != nil {
			firsts = append(firsts, first)
		}
	}
	// Ready means the accounts have been started: wait for each one's first
	// start attempt (connected, or failed and retrying), so that a request
	// right after start-up does not find a paired account still offline.
	for _, first := range firsts {
		select {
		case <-first:
		case <-ctx.Done():
			m.log.Warn("accounts still starting; going on without waiting for them", slog.Any("error", ctx.Err()))
			return nil
		}
	}
	return nil
}

// StartAccount starts the account's session in the background when its
// lease arrived here: unless it runs already, is logged out, or was
// created and never connected (pairing waits for Connect, as on one
// daemon).
func (m *Manager) StartAccount(ctx context.Context, id string) error {
	a, err := m.accounts.Get(ctx, id)
	if err != nil {
		return err
	}
	if a.State == StateLoggedOut || a.State == StateCreated {
		return nil
	}
	d, err := m.driver(a.Driver)
	if err != nil {
		_ = m.accounts.Apply(ctx, id, AccountChange{LastError: err.Error()})
		return err
	}
	m.startInBackground(a, d)
	return nil
}

// StopAccount closes the account's session here without logging out (its
// lease moved or was lost); another daemon resumes it.
func (m *Manager) StopAccount(ctx context.Context, id string) {
	if sess := m.detach(id); sess != nil {
		if err := sess.Close(ctx); err != nil {
			m.log.Warn("closing the session failed", slog.String("account", id), slog.Any("error", err))
		}
	}
}

// startInBackground opens and connects the account's session, retrying
// with backoff until it connects or the manager closes.
//
// The returned channel is closed once the first attempt has ended, however
// it ended; nil when the account was not started here.
func (m *Manager) startInBackground(a *AccountInfo, d Driver) <-chan struct{} {
	m.mu.Lock()
	if m.closed || m.sessions[a.ID] != nil {
		m.mu.Unlock()
		return nil
	}
	first := make(chan struct{})
	loopCtx, stop := context.WithCancel(m.ctx)
	r := &running{stop: stop, started: time.Now()}
	m.sessions[a.ID] = r
	m.mu.Unlock()

	m.wg.Go(func() {
		defer stop()
		b := m.newBackoff()
		for attempt := 0; ; attempt++ {
			err := m.openAndConnect(loopCtx, a, d, r)
			if attempt == 0 {
				close(first)
			}
			if err == nil || errors.Is(err, ErrWrongState) || loopCtx.Err() != nil {
				return
			}
			wait := b.next()
			m.log.Warn("account failed to start; retrying", slog.String("account", a.ID), slog.Duration("retry_in", wait), slog.Any("error", err))
			_ = m.accounts.Apply(m.ctx, a.ID, AccountChange{LastError: err.Error()})
			select {
			case <-loopCtx.Done():
				return
			case <-m.after(wait):
			}
		}
	})
	return first
}

// openAndConnect opens r's session if it is not open yet, then connects it.
func (m *Manager) openAndConnect(ctx context.Context, a *AccountInfo, d Driver, r *running) error {
	m.mu.Lock()
	sess := r.sess
	m.mu.Unlock()
	if sess == nil {
		if m.before != nil {
			if err := m.before(ctx, a.ID); err != nil {
				return fmt.Errorf("before opening session: %w", err)
			}
		}
		var err error
		sess, err = d.Open(m.ctx, Account{ID: a.ID, Name: a.Name, Proxy: a.Proxy}, &accountSink{m: m, id: a.ID})
		if err != nil {
			return fmt.Errorf("open %s session: %w", d.Name(), err)
		}
		// The loop may have been superseded (logout, delete, an explicit
		// connect, shutdown) while the driver opened: then nobody would
		// ever close this session, so close it here.
		m.mu.Lock()
		current := !m.closed && m.sessions[a.ID] == r && ctx.Err() == nil
		if current {
			r.sess = sess
		}
		m.mu.Unlock()
		if !current {
			_ = sess.Close(m.ctx)
			return fmt.Errorf("session start of %q superseded: %w", a.ID, context.Canceled)
		}
	}
	if err := sess.Connect(ctx); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return nil
}

// CreateAccount stores a new account in state created. It does not connect
// it: pairing needs someone at the phone.
func (m *Manager) CreateAccount(ctx context.Context, spec AccountSpec) (*AccountInfo, error) {
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	a, err := m.insert(ctx, spec)
	if err != nil {
		return nil, err
	}
	m.log.Info("account created", slog.String("account", a.ID), slog.String("driver", a.Driver))
	return a, nil
}

// GetAccount reads one account.
func (m *Manager) GetAccount(ctx context.Context, id string) (*AccountInfo, error) {
	return m.accounts.Get(ctx, id)
}

// ListAccounts reads every account, ordered by id.
func (m *Manager) ListAccounts(ctx context.Context) ([]*AccountInfo, error) {
	return m.accounts.List(ctx)
}

// Connect starts the account's session: an unpaired account starts pairing
// (QR codes appear on GET /qr), a paired one reconnects. It answers
// ErrWrongState when the session already runs and is pairing or connected.
// A failure past that is recorded as lastError and retried with backoff.
func (m *Manager) Connect(ctx context.Context, id string) (*AccountInfo, error) {
	defer m.ops.lock(id)()
	a, err := m.accounts.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	d, err := m.driver(a.Driver)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	r := m.sessions[id]
	m.mu.Unlock()
	if r != nil && (a.State == StatePairing || a.State == StateConnected) {
		return nil, fmt.Errorf("account %q is already %s: %w", id, a.State, ErrWrongState)
	}
	// A session that is open but neither pairing nor connected: its retry
	// loop (if any) is replaced by this explicit attempt.
	if sess := m.detach(id); sess != nil {
		if err := sess.Close(ctx); err != nil {
			m.log.Warn("closing the previous session failed", slog.String("account", id), slog.Any("error", err))
		}
	}
	_ = m.accounts.Apply(ctx, id, AccountChange{ClearLastError: true})
	m.startInBackground(a, d)
	return m.accounts.Get(ctx, id)
}

// Logout unlinks the account from the phone, deletes its auth state and
// closes its session; the account stays, in state logged_out.
func (m *Manager) Logout(ctx context.Context, id string) (*AccountInfo, error) {
	defer m.ops.lock(id)()
	a, err := m.accounts.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.State == StateCreated || a.State == StateLoggedOut {
		return nil, fmt.Errorf("account %q is %s: %w", id, a.State, ErrNotPaired)
	}
	if err := m.logout(ctx, a); err != nil {
		return nil, err
	}
	return m.accounts.Get(ctx, id)
}

// logout runs the driver's Logout (opening a session for it if none runs
// here), closes the session and records logged_out.
func (m *Manager) logout(ctx context.Context, a *AccountInfo) error {
	d, err := m.driver(a.Driver)
	if err != nil {
		return err
	}
	sess := m.detach(a.ID)
	if sess == nil {
		sess, err = d.Open(m.ctx, Account{ID: a.ID, Name: a.Name, Proxy: a.Proxy}, &accountSink{m: m, id: a.ID})
		if err != nil {
			return fmt.Errorf("open %s session to log out: %w", d.Name(), err)
		}
	}
	logoutErr := sess.Logout(ctx)
	if err := sess.Close(ctx); err != nil {
		m.log.Warn("closing session after logout failed", slog.String("account", a.ID), slog.Any("error", err))
	}
	if logoutErr != nil && !errors.Is(logoutErr, ErrNotPaired) {
		return fmt.Errorf("log out %q: %w", a.ID, logoutErr)
	}
	// The driver reports account.logged_out itself; this makes it true even
	// for a driver that had nothing to unlink.
	return m.accounts.Apply(ctx, a.ID, AccountChange{State: StateLoggedOut, Reason: "logged out via API", At: time.Now(),
		ClearPairing: true})
}

// detach removes the account's running entry, stops its retry loop and
// returns its session (nil when none was open yet); the caller closes it.
func (m *Manager) detach(id string) Session {
	m.mu.Lock()
	r := m.sessions[id]
	delete(m.sessions, id)
	var sess Session
	if r != nil {
		sess = r.sess
	}
	m.mu.Unlock()
	if r != nil {
		r.stop()
	}
	return sess
}

// DeleteAccount logs the account out when it is linked, drops its auth
// state and removes it. Its messages stay unless purge is set.
func (m *Manager) DeleteAccount(ctx context.Context, id string, purge bool) error {
	defer m.ops.lock(id)()
	a, err := m.accounts.Get(ctx, id)
	if err != nil {
		return err
	}
	if a.State != StateCreated && a.State != StateLoggedOut && m.DriverAvailable(a.Driver) {
		// Unlinking is a courtesy to the phone; a failure must not keep the
		// account from being deleted (the user can unlink from the phone).
		if err := m.logout(ctx, a); err != nil {
			m.log.Warn("logout before delete failed", slog.String("account", id), slog.Any("error", err))
		}
	}
	if sess := m.detach(id); sess != nil {
		_ = sess.Close(ctx)
	}
	if m.forgetAuth != nil {
		if err := m.forgetAuth(ctx, id); err != nil {
			return fmt.Errorf("drop auth state of %q: %w", id, err)
		}
	}
	if err := m.accounts.Delete(ctx, id); err != nil {
		return err
	}
	n := int64(0)
	if purge {
		if n, err = m.msgs.DeleteAccount(ctx, id); err != nil {
			return err
		}
	}
	m.log.Info("account deleted", slog.String("account", id), slog.Bool("purge", purge), slog.Int64("messages_deleted", n))
	return nil
}

// QR returns the current pairing QR code; ErrWrongState when the account
// is not pairing or its code has expired (a new one follows shortly).
func (m *Manager) QR(ctx context.Context, id string) (*QR, error) {
	a, err := m.accounts.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.State != StatePairing {
		return nil, fmt.Errorf("account %q is %s, not pairing: %w", id, a.State, ErrWrongState)
	}
	if a.QR == nil || !time.Now().Before(a.QR.ExpiresAt) {
		return nil, fmt.Errorf("account %q has no current QR code; a new one follows: %w", id, ErrWrongState)
	}
	return a.QR, nil
}

// PairPhone asks the pairing session for a code to type on the phone
// (phone: digits with country code). The account must be pairing here.
func (m *Manager) PairPhone(ctx context.Context, id, phone string) (string, error) {
	a, err := m.accounts.Get(ctx, id)
	if err != nil {
		return "", err
	}
	if _, err := m.driver(a.Driver); err != nil {
		return "", err
	}
	sess := m.session(id)
	if sess == nil || a.State != StatePairing {
		return "", fmt.Errorf("account %q is %s; connect it and pair while it is pairing: %w", id, a.State, ErrWrongState)
	}
	return sess.PairPhone(ctx, phone)
}

// Send sends a message through the account's session.
func (m *Manager) Send(ctx context.Context, id string, req *SendRequest) (*SendResult, error) {
	sess := m.session(id)
	if sess == nil {
		if err := m.noSession(id); errors.Is(err, ErrClosed) {
			return nil, err
		}
		if _, err := m.accounts.Get(ctx, id); err != nil {
			return nil, err
		}
		return nil, m.noSession(id)
	}
	if m.guard != nil {
		if _, err := m.guard(id); err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
	}
	return sess.Send(ctx, req)
}

// MarkRead sends read receipts for messages of one sender in one chat
// through the account's session (a rule's ctx.markRead).
func (m *Manager) MarkRead(ctx context.Context, id, chatID, senderID string, messageIDs []string) error {
	sess := m.session(id)
	if sess == nil {
		return m.noSession(id)
	}
	return sess.MarkRead(ctx, chatID, senderID, messageIDs)
}

// DownloadMedia streams the decrypted media of a stored message through the
// account's session (the session holds what decryption and re-upload
// requests need).
func (m *Manager) DownloadMedia(ctx context.Context, id, messageID string) (io.ReadCloser, error) {
	msg, err := m.msgs.Get(ctx, id, messageID)
	if err != nil {
		return nil, err
	}
	sess := m.session(id)
	if sess == nil {
		return nil, m.noSession(id)
	}
	em := msg.Message
	em.Raw = msg.RawMessage
	return sess.DownloadMedia(ctx, &em)
}

// Session returns the account's open session on this daemon, or nil.
func (m *Manager) session(id string) Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.sessions[id]; r != nil {
		return r.sess
	}
	return nil
}

// noteState records an account event's connection state on the account's
// running session and wakes AwaitStarted.
func (m *Manager) noteState(ev *event.Event) {
	switch ev.Kind {
	case event.KindAccountConnected, event.KindAccountDisconnected, event.KindAccountLoggedOut:
	default:
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.sessions[ev.AccountID]; r != nil {
		r.connected = ev.Kind == event.KindAccountConnected
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

// AwaitStarted waits while the account's session is starting on this
// daemon — opened or being opened, not connected yet, for at most max since
// its start began — and returns at once for an account that is connected,
// has no session here, or when the manager closes or ctx ends. The pipeline
// calls it before an event of the account runs, so events recovered before
// the session opened (BeforeOpen) can send their replies.
func (m *Manager) AwaitStarted(ctx context.Context, id string, max time.Duration) {
	for {
		m.mu.Lock()
		r := m.sessions[id]
		if m.closed || r == nil || r.connected {
			m.mu.Unlock()
			return
		}
		left := max - time.Since(r.started)
		changed := m.changed
		m.mu.Unlock()
		if left <= 0 {
			return
		}
		t := time.NewTimer(left)
		select {
		case <-changed:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			return
		}
	}
}

// noSession is the error of a call for an account without an open session:
// ErrClosed once Close has begun (the call failed because of the stop, not
// because of the account), ErrWrongState otherwise.
func (m *Manager) noSession(id string) error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return fmt.Errorf("account %q: %w", id, ErrClosed)
	}
	return fmt.Errorf("account %q has no running session: %w", id, ErrWrongState)
}

// Close stops every retry loop and closes every session (without logging
// out), so the accounts resume on the next start.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	close(m.changed)
	m.changed = make(chan struct{})
	open := map[string]Session{}
	for id, r := range m.sessions {
		if r.sess != nil {
			open[id] = r.sess
		}
	}
	m.sessions = map[string]*running{}
	m.mu.Unlock()
	m.cancel()

	var wg sync.WaitGroup
	errs := make(chan error, len(open))
	for id, sess := range open {
		wg.Go(func() {
			if err := sess.Close(ctx); err != nil {
				errs <- fmt.Errorf("close session %q: %w", id, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	var failed []error
	for err := range errs {
		failed = append(failed, err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		failed = append(failed, fmt.Errorf("session start-up still running: %w", ctx.Err()))
	}
	return errors.Join(failed...)
}

// insert stores a new account in state created.
func (m *Manager) insert(ctx context.Context, spec AccountSpec) (*AccountInfo, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := &AccountInfo{ID: spec.ID, Driver: spec.Driver, Name: spec.Name, State: StateCreated, Since: now, CreatedAt: now, UpdatedAt: now,
		Proxy: spec.Proxy}
	if err := m.accounts.Insert(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// backoff is exponential with jitter: the n-th wait (from 0) is random in
// the upper half of ceil = min(max, base·2^n), and never below base, so
// every wait lies within [base, max], each is at least as long as the one
// before until max is reached, and accounts failing together spread out.
type backoff struct {
	base, max, ceil time.Duration
}

func (m *Manager) newBackoff() *backoff {
	return &backoff{base: m.retryMin, max: m.retryMax, ceil: m.retryMin}
}

func (b *backoff) next() time.Duration {
	half := b.ceil / 2
	d := half + time.Duration(rand.Int64N(int64(b.ceil-half)+1))
	b.ceil = min(b.ceil*2, b.max)
	return max(d, b.base)
}
