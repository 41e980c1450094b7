package sim_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// world is a manager with a sim network on a fresh database.
type world struct {
	t    *testing.T
	net  *sim.Network
	mgr  *session.Manager
	msgs *messages.Store

	mu  sync.Mutex
	evs []*event.Event
	// gate, when set, may refuse an event before it is recorded (the
	// store failing): the session then does not acknowledge it.
	gate func(ev *event.Event) error
}

// stores are one engine's sim auth state and accounts, shared by the
// daemons (worlds) a test starts one after the other.
type stores struct {
	auth     sim.AuthStore
	accounts session.AccountStore
	groups   sim.GroupStore
}

func newStores(t *testing.T, e storetest.Engine) stores {
	t.Helper()
	if e == storetest.SQLite {
		db := storetest.NewSQLite(t, sim.SQLiteSchema, session.SQLiteSchema)
		return stores{auth: sim.NewSQLiteAuth(db), accounts: session.NewSQLiteAccounts(db), groups: sim.NewSQLiteGroups(db)}
	}
	db := storetest.NewDatabase(t)
	return stores{auth: sim.NewMongoAuth(db), accounts: session.NewMongoAccounts(db), groups: sim.NewMongoGroups(db)}
}

// newWorld runs a network on the embedded engine.
func newWorld(t *testing.T, opts sim.Options) *world {
	return newWorldOn(t, newStores(t, storetest.SQLite), opts)
}

func newWorldOn(t *testing.T, st stores, opts sim.Options) *world {
	db := storetest.NewDatabase(t) // messages: another package's store
	w := &world{t: t}
	opts.Auth, opts.Groups = st.auth, st.groups
	if opts.QRInterval == 0 {
		opts.QRInterval = 50 * time.Millisecond
	}
	for _, d := range []*time.Duration{&opts.PairDelay, &opts.DeliveredDelay, &opts.ReadDelay, &opts.ReconnectDelay} {
		if *d == 0 {
			*d = time.Millisecond
		}
	}
	w.net = sim.New(opts)
	w.msgs = messages.New(db, nil)
	w.mgr = session.NewManager(session.ManagerOptions{Accounts: st.accounts, Messages: w.msgs, OnEvent: func(_ context.Context, ev *event.Event) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.gate != nil {
			if err := w.gate(ev); err != nil {
				return err
			}
		}
		w.evs = append(w.evs, ev)
		return nil
	}})
	w.mgr.Register(w.net)
	t.Cleanup(func() {
		_ = w.mgr.Close(context.Background())
		_ = w.net.Close(context.Background())
	})
	return w
}

func (w *world) events(accountID string, kind event.Kind) []*event.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*event.Event
	for _, ev := range w.evs {
		if ev.AccountID == accountID && ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func (w *world) connect(id string) {
	w.t.Helper()
	ctx := context.Background()
	if _, err := w.mgr.CreateAccount(ctx, session.AccountSpec{ID: id, Driver: sim.Name, Name: "Name " + id}); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.mgr.Connect(ctx, id); err != nil {
		w.t.Fatal(err)
	}
	w.waitState(id, session.StateConnected)
}

func (w *world) waitState(id string, want session.State) {
	w.t.Helper()
	poll.Until(w.t, 30*time.Second, func() error {
		a, err := w.mgr.GetAccount(context.Background(), id)
		if err != nil {
			return err
		}
		if a.State != want {
			return fmt.Errorf("%s is %s, want %s", id, a.State, want)
		}
		return nil
	})
}

func (w *world) send(from, to, text string) *session.SendResult {
	w.t.Helper()
	res, err := w.mgr.Send(context.Background(), from, &session.SendRequest{To: sim.JID(to).String(), Text: text})
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

func (w *world) waitStatus(account, id string, want messages.Status) {
	w.t.Helper()
	poll.Until(w.t, 30*time.Second, func() error {
		m, err := w.msgs.Get(context.Background(), account, id)
		if err != nil {
			return err
		}
		if m.Status != want {
			return fmt.Errorf("%s is %s, want %s", id, m.Status, want)
		}
		return nil
	})
}

func TestJIDsAreStableAndDistinct(t *testing.T) {
	if sim.JID("demo") != sim.JID("demo") || sim.LID("demo") != sim.LID("demo") {
		t.Fatal("JIDs are not deterministic")
	}
	if sim.JID("demo") == sim.JID("demo2") || sim.LID("demo") == sim.LID("demo2") {
		t.Fatal("two accounts share a JID")
	}
	if j := sim.JID("demo"); j.Server != "s.whatsapp.net" || len(j.User) != 11 || j.User[:4] != "1555" {
		t.Fatalf("JID %s", j)
	}
	if l := sim.LID("demo"); l.Server != "lid" {
		t.Fatalf("LID %s", l)
	}
}

func TestFailedAndSlowSends(t *testing.T) {
	w := newWorld(t, sim.Options{})
	w.connect("a")
	w.connect("b")
	boom := errors.New("network on fire")
	w.net.SetFaults("a", sim.Faults{FailSends: boom})
	if _, err := w.mgr.Send(context.Background(), "a", &session.SendRequest{To: sim.JID("b").String(), Text: "x"}); !errors.Is(err, boom) {
		t.Fatalf("send with FailSends: %v", err)
	}
	w.net.SetFaults("a", sim.Faults{SendDelay: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.mgr.Send(ctx, "a", &session.SendRequest{To: sim.JID("b").String(), Text: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("delayed send with a cancelled context: %v", err)
	}
	res := w.send("a", "b", "slow but sure")
	w.waitStatus("a", res.MessageID, messages.StatusRead)
}

// TestDroppedSendsNeverArrive sends a lost message, then a good one: once
// the good one is read, the lost one has neither arrived nor been receipted
// (the network delivers one account's traffic in order).
func TestDroppedSendsNeverArrive(t *testing.T) {
	w := newWorld(t, sim.Options{})
	w.connect("a")
	w.connect("b")
	w.net.SetFaults("a", sim.Faults{DropSends: true})
	lost := w.send("a", "b", "lost")
	w.net.SetFaults("a", sim.Faults{})
	good := w.send("a", "b", "good")
	w.waitStatus("a", good.MessageID, messages.StatusRead)
	if _, err := w.msgs.Get(context.Background(), "b", lost.MessageID); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("dropped message arrived: %v", err)
	}
	if m, _ := w.msgs.Get(context.Background(), "a", lost.MessageID); m.Status != messages.StatusSent {
		t.Fatalf("dropped message is %s, want sent", m.Status)
	}
}

// TestDroppedConnectionQueuesAndReconnects sends to an account whose
// connection dropped: it reconnects on its own and then receives.
func TestDroppedConnectionQueuesAndReconnects(t *testing.T) {
	w := newWorld(t, sim.Options{ReconnectDelay: 200 * time.Millisecond})
	w.connect("a")
	w.connect("b")
	if err := w.net.DropConnection("b"); err != nil {
		t.Fatal(err)
	}
	a, _ := w.mgr.GetAccount(context.Background(), "b")
	if a.State != session.StateDisconnected || a.Reason == "" {
		t.Fatalf("after the drop: %+v", a)
	}
	res := w.send("a", "b", "while you were away")
	w.waitState("b", session.StateConnected)
	w.waitStatus("a", res.MessageID, messages.StatusRead)
	if m, err := w.msgs.Get(context.Background(), "b", res.MessageID); err != nil || m.Text != "while you were away" {
		t.Fatalf("queued message: %+v %v", m, err)
	}
	if n := len(w.events("b", event.KindAccountDisconnected)); n != 1 {
		t.Fatalf("%d disconnected events", n)
	}
}

func TestMediaRoundTrip(t *testing.T) {
	w := newWorld(t, sim.Options{})
	w.connect("a")
	w.connect("b")
	data := []byte("pretend this is a voice note")
	res, err := w.mgr.Send(context.Background(), "a", &session.SendRequest{
		To: sim.JID("b").String(), Media: &session.MediaSend{Kind: session.MediaVoice, Data: data, Seconds: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got *messages.Message
	poll.Until(t, 30*time.Second, func() error {
		got, err = w.msgs.Get(context.Background(), "b", res.MessageID)
		return err
	})
	if got.Type != event.TypeVoice || !got.HasMedia || got.Media.Size != uint64(len(data)) || got.Media.DurationSeconds != 3 {
		t.Fatalf("received media %+v / %+v", got.Message, got.Media)
	}
	sess, err := w.net.Open(context.Background(), session.Account{ID: "reader"}, session.SinkFunc(func(context.Context, *event.Event) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close(context.Background())
	rc, err := sess.DownloadMedia(context.Background(), &got.Message)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	if string(b) != string(data) {
		t.Fatalf("downloaded %q", b)
	}
	if _, err := sess.DownloadMedia(context.Background(), &event.Message{Type: event.TypeText}); !errors.Is(err, session.ErrNoMedia) {
		t.Fatalf("download of a text: %v", err)
	}
}

// TestEveryContentKind sends each kind the session contract names and
// checks what the recipient stores, and that edits and revokes apply.
func TestEveryContentKind(t *testing.T) {
	w := newWorld(t, sim.Options{})
	w.connect("a")
	w.connect("b")
	ctx := context.Background()
	to := sim.JID("b").String()
	orig := w.send("a", "b", "first draft")
	reqs := []*session.SendRequest{
		{To: to, Text: "reply", ReplyTo: &session.QuoteRef{MessageID: orig.MessageID}, Mentions: []string{to}},
		{To: to, Location: &event.Location{Latitude: 1.5, Longitude: 2.5, Name: "Somewhere"}},
		{To: to, Contacts: []event.Contact{{DisplayName: "Ann", VCard: "BEGIN:VCARD\nEND:VCARD"}}},
		{To: to, Contacts: []event.Contact{{DisplayName: "Ann"}, {DisplayName: "Bob"}}},
		{To: to, Reaction: &session.ReactionSend{MessageID: orig.MessageID, FromMe: true, Emoji: "🎉"}},
		{To: to, Media: &session.MediaSend{Kind: session.MediaDocument, Data: []byte("%PDF"), Filename: "x.pdf", Caption: "doc"}},
		{To: to, Edit: &session.EditSend{MessageID: orig.MessageID, Text: "final text"}},
	}
	wantType := []event.MessageType{event.TypeText, event.TypeLocation, event.TypeContact, event.TypeContacts, event.TypeReaction, event.TypeDocument, event.TypeEdit}
	var last string
	for i, req := range reqs {
		res, err := w.mgr.Send(ctx, "a", req)
		if err != nil {
			t.Fatalf("send #%d: %v", i, err)
		}
		if res.Event.Message.Type != wantType[i] {
			t.Fatalf("send #%d stored as %s, want %s", i, res.Event.Message.Type, wantType[i])
		}
		last = res.MessageID
	}
	w.waitStatus("a", last, messages.StatusRead)
	for _, acct := range []string{"a", "b"} {
		m, err := w.msgs.Get(ctx, acct, orig.MessageID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Text != "final text" || !m.Edited || len(m.EditHistory) != 1 || m.EditHistory[0].Text != "first draft" {
			t.Fatalf("%s: edited message %+v", acct, m)
		}
	}
	rv, err := w.mgr.Send(ctx, "a", &session.SendRequest{To: to, Revoke: &session.RevokeSend{MessageID: orig.MessageID}})
	if err != nil {
		t.Fatal(err)
	}
	w.waitStatus("a", rv.MessageID, messages.StatusRead)
	if m, _ := w.msgs.Get(ctx, "b", orig.MessageID); !m.Revoked {
		t.Fatalf("revoke did not reach b: %+v", m)
	}
	for _, bad := range []*session.SendRequest{
		{To: to},
		{To: to, Text: "x", Location: &event.Location{}},
		{To: "123-456@g.us", Text: "groups"},
		{To: "", Text: "nobody"},
		{To: to, Media: &session.MediaSend{Kind: "hologram"}},
	} {
		if _, err := w.mgr.Send(ctx, "a", bad); !errors.Is(err, session.ErrInvalidRequest) {
			t.Errorf("send %+v: %v, want ErrInvalidRequest", bad, err)
		}
	}
}

func TestExternalContactsGetReceipts(t *testing.T) {
	w := newWorld(t, sim.Options{})
	w.connect("a")
	res, err := w.mgr.Send(context.Background(), "a", &session.SendRequest{To: "4915112345678@s.whatsapp.net", Text: "hallo"})
	if err != nil {
		t.Fatal(err)
	}
	w.waitStatus("a", res.MessageID, messages.StatusRead)
}

func TestSendWhenNotConnected(t *testing.T) {
	w := newWorld(t, sim.Options{PairDelay: -1})
	ctx := context.Background()
	if _, err := w.mgr.CreateAccount(ctx, session.AccountSpec{ID: "p", Driver: sim.Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.mgr.Send(ctx, "p", &session.SendRequest{To: sim.JID("x").String(), Text: "x"}); !errors.Is(err, session.ErrWrongState) {
		t.Fatalf("send before connect: %v", err)
	}
	if _, err := w.mgr.Connect(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	w.waitState("p", session.StatePairing)
	if _, err := w.mgr.Send(ctx, "p", &session.SendRequest{To: sim.JID("x").String(), Text: "x"}); !errors.Is(err, session.ErrWrongState) {
		t.Fatalf("send while pairing: %v", err)
	}
	if _, err := w.net.Inject(ctx, "p", &sim.Inbound{From: "15551234567", Text: "x"}); !errors.Is(err, session.ErrWrongState) {
		t.Fatalf("inject while pairing: %v", err)
	}
	if err := w.net.Scan("nobody"); !errors.Is(err, sim.ErrNotOnNetwork) {
		t.Fatalf("scan of an unknown account: %v", err)
	}
}
