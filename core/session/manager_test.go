package session_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// flaky is a driver whose sessions fail Connect a number of times, then
// report connected.
type flaky struct {
	failures atomic.Int32
	attempts atomic.Int32
	closed   atomic.Int32

	mu    sync.Mutex
	sinks map[string]session.Sink
}

func (f *flaky) Name() string { return "sim" }

func (f *flaky) Open(ctx context.Context, acct session.Account, sink session.Sink) (session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sinks == nil {
		f.sinks = map[string]session.Sink{}
	}
	f.sinks[acct.ID] = sink
	return &flakySession{f: f, acct: acct, sink: sink}, nil
}

type flakySession struct {
	session.Session // methods the tests do not call
	f               *flaky
	acct            session.Account
	sink            session.Sink
}

func (s *flakySession) Connect(ctx context.Context) error {
	s.f.attempts.Add(1)
	if s.f.failures.Add(-1) >= 0 {
		return errors.New("server unreachable")
	}
	ev, err := event.NewAccountEvent(event.KindAccountConnected, s.acct.ID, time.Now(), event.AccountState{State: event.AccountConnected, JID: "1@s.whatsapp.net"})
	if err != nil {
		return err
	}
	return s.sink.Emit(ctx, ev)
}

func (s *flakySession) Close(context.Context) error { s.f.closed.Add(1); return nil }

// accountStore is a fresh account store on the engine.
func accountStore(t *testing.T, e storetest.Engine) session.AccountStore {
	t.Helper()
	if e == storetest.SQLite {
		return session.NewSQLiteAccounts(storetest.NewSQLite(t, session.SQLiteSchema))
	}
	return session.NewMongoAccounts(storetest.NewDatabase(t))
}

// newManager runs a manager with its accounts on the engine (messages stay
// on MongoDB: another package's store).
func newManager(t *testing.T, e storetest.Engine, d session.Driver) *session.Manager {
	db := storetest.NewDatabase(t)
	m := session.NewManager(session.ManagerOptions{Accounts: accountStore(t, e), Messages: messages.New(db, nil), RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if d != nil {
		m.Register(d)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// TestConnectRetriesWithBackoff: a session that fails to connect is retried
// after waits that the manager draws from an exponential backoff: each
// within [RetryMin, RetryMax], none shorter than the one before until the
// cap, the n-th at least half of RetryMin·2^n. The waits are recorded where
// the manager waits (SetAfter), so the scheduler's delays on a loaded
// machine do not enter the assertions.
func TestConnectRetriesWithBackoff(t *testing.T) {
	const failures = 7
	const retryMin, retryMax = time.Millisecond, 16 * time.Millisecond
	f := &flaky{}
	f.failures.Store(failures)
	m := session.NewManager(session.ManagerOptions{Accounts: accountStore(t, storetest.SQLite), Messages: messages.New(storetest.NewDatabase(t), nil), RetryMin: retryMin, RetryMax: retryMax})
	m.Register(f)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	var (
		mu    sync.Mutex
		waits []time.Duration
	)
	session.SetAfter(m, func(d time.Duration) <-chan time.Time {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return time.After(d)
	})
	ctx := context.Background()
	if err := m.Start(ctx, []session.AccountSpec{{ID: "acme", Driver: "sim"}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		a, err := m.GetAccount(ctx, "acme")
		if err != nil {
			return err
		}
		if a.State != session.StateConnected || a.LastError != "" {
			return fmt.Errorf("state %s, lastError %q", a.State, a.LastError)
		}
		return nil
	})
	if got := f.attempts.Load(); got != failures+1 {
		t.Fatalf("%d connect attempts, want %d", got, failures+1)
	}
	mu.Lock()
	got := append([]time.Duration(nil), waits...)
	mu.Unlock()
	if len(got) != failures {
		t.Fatalf("waited %d times (%v), want once after each of %d failures", len(got), got, failures)
	}
	ceil, prevCeil := retryMin, time.Duration(0)
	for n, w := range got {
		if w < retryMin || w > retryMax {
			t.Fatalf("wait %d is %s, outside [%s, %s]: %v", n, w, retryMin, retryMax, got)
		}
		if w < ceil/2 || w > ceil {
			t.Fatalf("wait %d is %s, want within [%s, %s]: %v", n, w, ceil/2, ceil, got)
		}
		if n > 0 && w < got[n-1] && prevCeil < retryMax {
			// Until the cap, a wait's lower bound is the previous ceiling.
			t.Fatalf("wait %d (%s) is shorter than the one before (%s): %v", n, w, got[n-1], got)
		}
		ceil, prevCeil = min(2*ceil, retryMax), ceil
	}
	if last := got[len(got)-1]; last < retryMax/2 {
		t.Fatalf("the waits never grew to the cap: %v", got)
	}
	// Start again (a retried daemon start-up) neither duplicates the
	// account nor opens a second session.
	if err := m.Start(ctx, []session.AccountSpec{{ID: "acme", Driver: "sim"}}); err != nil {
		t.Fatal(err)
	}
	if all, _ := m.ListAccounts(ctx); len(all) != 1 || f.attempts.Load() != failures+1 {
		t.Fatalf("second Start: %d accounts, %d attempts", len(all), f.attempts.Load())
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if f.closed.Load() != 1 {
		t.Fatalf("%d sessions closed, want 1", f.closed.Load())
	}
}

func TestSinkRefusesAnotherAccountsEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testSinkRefusesAnotherAccountsEvents(t, e) })
}

func testSinkRefusesAnotherAccountsEvents(t *testing.T, e storetest.Engine) {
	f := &flaky{}
	m := newManager(t, e, f)
	ctx := context.Background()
	if _, err := m.CreateAccount(ctx, session.AccountSpec{ID: "a", Driver: "sim"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Connect(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.sinks["a"] == nil {
			return errors.New("not opened yet")
		}
		return nil
	})
	f.mu.Lock()
	sink := f.sinks["a"]
	f.mu.Unlock()
	ev, _ := event.NewAccountEvent(event.KindAccountLoggedOut, "b", time.Now(), event.AccountState{State: event.AccountLoggedOut})
	if err := sink.Emit(ctx, ev); err == nil || !strings.Contains(err.Error(), `account "b"`) {
		t.Fatalf("foreign event: %v", err)
	}
	if err := sink.Emit(ctx, &event.Event{ID: "x", Kind: "nonsense", AccountID: "a"}); err == nil {
		t.Fatal("invalid event accepted")
	}
}

func TestUnavailableDriverAndValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testUnavailableDriverAndValidation(t, e) })
}

func testUnavailableDriverAndValidation(t *testing.T, e storetest.Engine) {
	m := newManager(t, e, nil)
	ctx := context.Background()
	if _, err := m.CreateAccount(ctx, session.AccountSpec{ID: "wa", Driver: "whatsapp"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Connect(ctx, "wa"); !errors.Is(err, session.ErrDriverUnavailable) || !strings.Contains(err.Error(), "not available in this build") {
		t.Fatalf("connect without the driver: %v", err)
	}
	var inv *session.InvalidError
	for spec, field := range map[session.AccountSpec]string{
		{ID: "Bad", Driver: "sim"}:                                "id",
		{ID: "ok", Driver: "pigeon"}:                              "driver",
		{ID: "ok", Driver: "sim", Name: strings.Repeat("n", 300)}: "name",
	} {
		if _, err := m.CreateAccount(ctx, spec); !errors.As(err, &inv) || inv.Field != field {
			t.Errorf("create %+v: %v, want field %s", spec, err, field)
		}
	}
	if _, err := m.CreateAccount(ctx, session.AccountSpec{ID: "wa", Driver: "sim"}); !errors.Is(err, session.ErrAccountExists) {
		t.Fatalf("duplicate: %v", err)
	}
	for name, call := range map[string]func() error{
		"get":     func() error { _, err := m.GetAccount(ctx, "nope"); return err },
		"connect": func() error { _, err := m.Connect(ctx, "nope"); return err },
		"logout":  func() error { _, err := m.Logout(ctx, "nope"); return err },
		"delete":  func() error { return m.DeleteAccount(ctx, "nope", false) },
		"qr":      func() error { _, err := m.QR(ctx, "nope"); return err },
		"pair":    func() error { _, err := m.PairPhone(ctx, "nope", "15551234567"); return err },
		"send":    func() error { _, err := m.Send(ctx, "nope", &session.SendRequest{}); return err },
	} {
		if err := call(); !errors.Is(err, session.ErrAccountNotFound) {
			t.Errorf("%s of an unknown account: %v", name, err)
		}
	}
}

// TestEmitFailsWhenOnEventFails: an event the pipeline could not take is
// not acknowledged, so the driver does not tell WhatsApp it was handled.
func TestEmitFailsWhenOnEventFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testEmitFailsWhenOnEventFails(t, e) })
}

func testEmitFailsWhenOnEventFails(t *testing.T, e storetest.Engine) {
	db := storetest.NewDatabase(t)
	refuse := errors.New("pipeline is closed")
	var seen atomic.Int32
	m := session.NewManager(session.ManagerOptions{Accounts: accountStore(t, e), Messages: messages.New(db, nil),
		OnEvent: func(context.Context, *event.Event) error { seen.Add(1); return refuse }})
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	ctx := context.Background()
	if _, err := m.CreateAccount(ctx, session.AccountSpec{ID: "a", Driver: "sim"}); err != nil {
		t.Fatal(err)
	}
	ev, _ := event.NewAccountEvent(event.KindAccountDisconnected, "a", time.Now(), event.AccountState{State: event.AccountDisconnected})
	if err := m.Emit(ctx, ev); !errors.Is(err, refuse) {
		t.Fatalf("Emit = %v, want the hook's error", err)
	}
	if seen.Load() != 1 {
		t.Fatalf("hook called %d times", seen.Load())
	}
}

// slowConnect is flaky with a Connect that takes a while: long enough that a
// Start which only launched the sessions would return before they are up.
type slowConnect struct{ flaky }

func (s *slowConnect) Open(ctx context.Context, acct session.Account, sink session.Sink) (session.Session, error) {
	inner, err := s.flaky.Open(ctx, acct, sink)
	return &slowSession{inner.(*flakySession)}, err
}

type slowSession struct{ *flakySession }

func (s *slowSession) Connect(ctx context.Context) error {
	select {
	case <-time.After(200 * time.Millisecond): // the slow driver under test, not synchronisation
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.flakySession.Connect(ctx)
}

// Start returns once every account it started has had its first attempt:
// the daemon turns ready right after it, and ready must mean the accounts
// are up (issue 16.24: inbound calls right after a restart got 409).
func TestStartWaitsForTheFirstAttempt(t *testing.T) {
	m := newManager(t, storetest.SQLite, &slowConnect{})
	ctx := context.Background()
	if err := m.Start(ctx, []session.AccountSpec{{ID: "acme", Driver: "sim"}}); err != nil {
		t.Fatal(err)
	}
	a, err := m.GetAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != session.StateConnected {
		t.Fatalf("Start returned with the account %s", a.State)
	}
}
