package session_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

const proxyPassword = "pr0xy-pa55word"

var proxyURL = "socks5://ann:" + proxyPassword + "@10.0.0.5:1080"

// engineStore is an account store on e and a dump of everything e holds.
func engineStore(t *testing.T, e storetest.Engine) (session.AccountStore, func() []byte) {
	t.Helper()
	if e == storetest.SQLite {
		db := storetest.NewSQLite(t, session.SQLiteSchema)
		return session.NewSQLiteAccounts(db), func() []byte { return sealtest.SQLiteBytes(t, db.Path()) }
	}
	db := storetest.NewDatabase(t)
	return session.NewMongoAccounts(db), func() []byte { return sealtest.MongoBytes(t, db) }
}

// TestAccountProxyStored: the proxy is stored with the account, replaced,
// kept by changes that do not name it, cleared by "", and carried by the
// engine-to-engine copy's export and import.
func TestAccountProxyStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s, _ := engineStore(t, e)
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		if err := s.Insert(ctx, &session.AccountInfo{ID: "acme", Driver: "whatsapp", State: session.StateCreated, Since: t0, CreatedAt: t0, UpdatedAt: t0, Proxy: proxyURL}); err != nil {
			t.Fatal(err)
		}
		if a := get(t, s, "acme"); a.Proxy != proxyURL {
			t.Fatalf("stored proxy %q", a.Proxy)
		}
		other := "http://proxy.example.com:3128"
		if err := s.Apply(ctx, "acme", session.AccountChange{Proxy: &other}); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, "acme", session.AccountChange{State: session.StateConnected, At: t0.Add(time.Minute), JID: "1@s.whatsapp.net"}); err != nil {
			t.Fatal(err)
		}
		if a := get(t, s, "acme"); a.Proxy != other || a.State != session.StateConnected {
			t.Fatalf("after a change and a state change: %+v", a)
		}

		// The copy (wildcatd store copy) carries it.
		type copier interface {
			Export(ctx context.Context, batch int, fn func([]*session.AccountInfo) error) error
			Import(ctx context.Context, as []*session.AccountInfo) error
		}
		dst, _ := engineStore(t, e)
		err := s.(copier).Export(ctx, 10, func(as []*session.AccountInfo) error { return dst.(copier).Import(ctx, as) })
		if err != nil {
			t.Fatal(err)
		}
		if a := get(t, dst, "acme"); a.Proxy != other {
			t.Fatalf("copied proxy %q", a.Proxy)
		}

		none := ""
		if err := s.Apply(ctx, "acme", session.AccountChange{Proxy: &none}); err != nil {
			t.Fatal(err)
		}
		if a := get(t, s, "acme"); a.Proxy != "" {
			t.Fatalf("cleared proxy %q", a.Proxy)
		}
	})
}

// TestProxySealedAtRest: with encryption on, the stored proxy URL is
// sealed — the engine's bytes hold no password — and reads back in clear
// through SealedAccounts; ReencryptAccounts seals what was written before.
func TestProxySealedAtRest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		raw, dump := engineStore(t, e)
		keys := sealtest.Ring(t, "", sealtest.Key(t, "k1"))
		s := session.SealedAccounts(raw, keys)
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		if err := s.Insert(ctx, &session.AccountInfo{ID: "acme", Driver: "whatsapp", State: session.StateCreated, Since: now, CreatedAt: now, UpdatedAt: now, Proxy: proxyURL}); err != nil {
			t.Fatal(err)
		}
		if a := get(t, s, "acme"); a.Proxy != proxyURL {
			t.Fatalf("read through the seal: %q", a.Proxy)
		}
		if a := get(t, raw, "acme"); !sealing.IsSealedString(a.Proxy) || strings.Contains(a.Proxy, proxyPassword) {
			t.Fatalf("stored proxy is not sealed: %q", a.Proxy)
		}
		changed := "http://bob:" + proxyPassword + "2@10.0.0.6:3128"
		if err := s.Apply(ctx, "acme", session.AccountChange{Proxy: &changed}); err != nil {
			t.Fatal(err)
		}
		if all, err := s.List(ctx); err != nil || len(all) != 1 || all[0].Proxy != changed {
			t.Fatalf("list through the seal: %+v %v", all, err)
		}
		sealtest.NoPlaintext(t, string(e), dump(), proxyPassword)

		// Written before encryption was on: plaintext until re-encrypted.
		plain := "socks5://carol:" + proxyPassword + "3@10.0.0.7:1080"
		if err := raw.Insert(ctx, &session.AccountInfo{ID: "old", Driver: "whatsapp", State: session.StateCreated, Since: now, CreatedAt: now, UpdatedAt: now, Proxy: plain}); err != nil {
			t.Fatal(err)
		}
		if a := get(t, s, "old"); a.Proxy != plain {
			t.Fatalf("plaintext read through the seal: %q", a.Proxy)
		}
		n, err := session.ReencryptAccounts(ctx, raw, keys)
		if err != nil || n != 1 {
			t.Fatalf("reencrypt: %d, %v; want 1 rewritten", n, err)
		}
		if a := get(t, raw, "old"); !sealing.IsSealedString(a.Proxy) {
			t.Fatalf("not sealed by reencrypt: %q", a.Proxy)
		}
		if a := get(t, s, "old"); a.Proxy != plain {
			t.Fatalf("after reencrypt: %q", a.Proxy)
		}
		if n, err := session.ReencryptAccounts(ctx, raw, keys); err != nil || n != 0 {
			t.Fatalf("second reencrypt: %d, %v; want nothing left", n, err)
		}
	})
}

// proxyDriver records the proxy of every session it opens.
type proxyDriver struct {
	mu     sync.Mutex
	opened []string // Account.Proxy, in order
	closed int
}

func (d *proxyDriver) Name() string { return "sim" }

func (d *proxyDriver) Open(_ context.Context, acct session.Account, sink session.Sink) (session.Session, error) {
	d.mu.Lock()
	d.opened = append(d.opened, acct.Proxy)
	d.mu.Unlock()
	return &proxySession{d: d, acct: acct, sink: sink}, nil
}

func (d *proxyDriver) opens() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.opened...)
}

type proxySession struct {
	session.Session
	d    *proxyDriver
	acct session.Account
	sink session.Sink
}

func (s *proxySession) Connect(ctx context.Context) error {
	ev, err := event.NewAccountEvent(event.KindAccountConnected, s.acct.ID, time.Now(), event.AccountState{State: event.AccountConnected, JID: "1@s.whatsapp.net"})
	if err != nil {
		return err
	}
	return s.sink.Emit(ctx, ev)
}

func (s *proxySession) Close(context.Context) error {
	s.d.mu.Lock()
	s.d.closed++
	s.d.mu.Unlock()
	return nil
}

// TestSetProxyRestartsTheSession: a change of proxy closes the running
// session and opens one with the new proxy; the same proxy again changes
// nothing; an account without a session here only has its setting
// changed; a bad URL is refused naming the field.
func TestSetProxyRestartsTheSession(t *testing.T) {
	d := &proxyDriver{}
	m := session.NewManager(session.ManagerOptions{Accounts: accountStore(t, storetest.SQLite), Messages: messages.New(storetest.NewDatabase(t), nil),
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	m.Register(d)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	ctx := context.Background()

	if _, err := m.CreateAccount(ctx, session.AccountSpec{ID: "acme", Driver: "sim", Proxy: "gopher://x:1"}); !isInvalid(err, "proxy") {
		t.Fatalf("create with a bad proxy: %v", err)
	}
	a, err := m.CreateAccount(ctx, session.AccountSpec{ID: "acme", Driver: "sim", Proxy: proxyURL})
	if err != nil || a.Proxy != proxyURL {
		t.Fatalf("create: %+v %v", a, err)
	}
	if _, err := m.Connect(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "acme", session.StateConnected)
	if got := d.opens(); len(got) != 1 || got[0] != proxyURL {
		t.Fatalf("opened with %q", got)
	}

	next := "http://proxy.example.com:3128"
	if a, err = m.SetProxy(ctx, "acme", next); err != nil || a.Proxy != next {
		t.Fatalf("set proxy: %+v %v", a, err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if got := d.opens(); len(got) != 2 || got[1] != next {
			return errors.New("no session with the new proxy yet")
		}
		return nil
	})
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed != 1 {
		t.Fatalf("%d sessions closed, want the old one", closed)
	}
	if _, err := m.SetProxy(ctx, "acme", next); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetProxy(ctx, "acme", ""); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if got := d.opens(); len(got) != 3 || got[2] != "" {
			return errors.New("no session without a proxy yet")
		}
		return nil
	})
	if _, err := m.SetProxy(ctx, "acme", "socks5://host-without-port"); !isInvalid(err, "proxy") {
		t.Fatalf("bad proxy: %v", err)
	}
	if _, err := m.SetProxy(ctx, "nope", next); !errors.Is(err, session.ErrAccountNotFound) {
		t.Fatalf("missing account: %v", err)
	}

	// Not running here: stored, nothing opened.
	if _, err := m.CreateAccount(ctx, session.AccountSpec{ID: "idle", Driver: "sim"}); err != nil {
		t.Fatal(err)
	}
	if a, err := m.SetProxy(ctx, "idle", next); err != nil || a.Proxy != next {
		t.Fatalf("idle account: %+v %v", a, err)
	}
	if got := d.opens(); len(got) != 3 {
		t.Fatalf("an idle account's proxy change opened a session: %q", got)
	}
}

func isInvalid(err error, field string) bool {
	var inv *session.InvalidError
	return errors.As(err, &inv) && inv.Field == field
}

func waitState(t *testing.T, m *session.Manager, id string, want session.State) {
	t.Helper()
	poll.Until(t, 10*time.Second, func() error {
		a, err := m.GetAccount(context.Background(), id)
		if err != nil {
			return err
		}
		if a.State != want {
			return errors.New("state " + string(a.State))
		}
		return nil
	})
}

// TestDeclaredProxyStaysInForce: an account declared with a proxy starts
// through it; declared again with another at the next start, the stored
// account takes the new one (the config is where the operator keeps it),
// and a declaration without a proxy leaves the stored one alone.
func TestDeclaredProxyStaysInForce(t *testing.T) {
	store := accountStore(t, storetest.SQLite)
	msgs := messages.New(storetest.NewDatabase(t), nil)
	ctx := context.Background()
	start := func(spec session.AccountSpec) (*proxyDriver, *session.Manager) {
		d := &proxyDriver{}
		m := session.NewManager(session.ManagerOptions{Accounts: store, Messages: msgs,
			RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
		m.Register(d)
		if err := m.Start(ctx, []session.AccountSpec{spec}); err != nil {
			t.Fatal(err)
		}
		waitState(t, m, "acme", session.StateConnected)
		return d, m
	}
	next := "http://proxy.example.com:3128"
	for i, tt := range []struct{ declared, want string }{
		{proxyURL, proxyURL}, // created with it
		{next, next},         // changed in the config
		{"", next},           // no longer declared: the stored one stays
	} {
		d, m := start(session.AccountSpec{ID: "acme", Driver: "sim", Proxy: tt.declared})
		if got := d.opens(); len(got) != 1 || got[0] != tt.want {
			t.Fatalf("start %d: opened with %q, want %q", i, got, tt.want)
		}
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
