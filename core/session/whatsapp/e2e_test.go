package whatsapp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

const wait = 20 * time.Second

// storeSink stores every event in MongoDB by its id, as the account
// manager does: a duplicate id means "already stored". refuse makes it fail
// like a database that is down.
type storeSink struct {
	coll   *mongo.Collection
	refuse atomic.Bool
	mu     sync.Mutex
	seen   []*event.Event
	stored []*event.Event // inserted, not refused nor a duplicate id
}

func (s *storeSink) Emit(ctx context.Context, ev *event.Event) error {
	if s.refuse.Load() {
		return errors.New("store refused the write")
	}
	doc, err := bson.Marshal(ev)
	if err != nil {
		return err
	}
	var m bson.M
	_ = bson.Unmarshal(doc, &m)
	m["_id"] = ev.ID
	_, err = s.coll.InsertOne(ctx, m)
	if err != nil && !store.IsDuplicateKey(err) {
		return err
	}
	s.mu.Lock()
	s.seen = append(s.seen, ev)
	if err == nil {
		s.stored = append(s.stored, ev)
	}
	s.mu.Unlock()
	return nil
}

// next waits for the first event after index from that matches.
func (s *storeSink) waitFor(t *testing.T, what string, match func(*event.Event) bool) *event.Event {
	t.Helper()
	var found *event.Event
	poll.Until(t, wait, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, ev := range s.seen {
			if match(ev) {
				found = ev
				return nil
			}
		}
		return fmt.Errorf("no %s event yet", what)
	})
	return found
}

// stored counts the stored events that carry WhatsApp message id. It counts
// by the message id, not by the event id the sink dedupes on: an event id
// is unique by construction, so a duplicate (the same message stored under
// a second event id) would not show when counting by it.
func (s *storeSink) storedCount(id types.MessageID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ev := range s.stored {
		if ev.Message != nil && ev.Message.MessageID == id {
			n++
		}
	}
	return n
}

type rig struct {
	srv    *watest.Server
	db     *mongo.Database
	driver *whatsapp.Driver
	sink   *storeSink
	engine storetest.Engine // where the auth state lives
	file   *sqlite.DB       // the database file on SQLite
	keys   *sealing.Keyring // seals the auth state's secrets; nil: none
	proxy  string           // the account's proxy; "": none
}

// newRig keeps the auth state on the embedded engine, the daemon's default.
func newRig(t *testing.T) *rig { return newRigOn(t, storetest.SQLite) }

// newRigOn keeps the auth state on engine e.
func newRigOn(t *testing.T, e storetest.Engine) *rig {
	t.Helper()
	srv := watest.New(t)
	db := storetest.NewDatabase(t)
	hc := srv.HTTPClient()
	r := &rig{
		srv: srv,
		db:  db,
		driver: &whatsapp.Driver{
			MediaRetries: whatsapp.NewMongoMediaRetries(db),
			Logger:       slog.New(slog.DiscardHandler),
			HTTP:         whatsapp.HTTPClients{PreLogin: hc, Websocket: hc, Media: hc},
			ReconnectMin: 20 * time.Millisecond,
			ReconnectMax: 200 * time.Millisecond,
		},
		sink:   &storeSink{coll: db.Collection("events")},
		engine: e,
	}
	if e == storetest.SQLite {
		r.file = storetest.NewSQLite(t, authstore.SQLiteSchema)
	}
	r.openAuth(t)
	return r
}

// openAuth gives the driver the auth state, as the daemon does at start:
// on SQLite a new sqlstore on the file, with nothing kept in memory from
// before.
func (r *rig) openAuth(t *testing.T) {
	t.Helper()
	switch r.engine {
	case storetest.MongoDB:
		db := r.db
		keys := r.keys
		r.driver.Devices = func(id string) whatsapp.DeviceStore { return authstore.New(db, id, nil).Seal(keys) }
	case storetest.SQLite:
		h, err := r.file.Conn()
		if err != nil {
			t.Fatal(err)
		}
		auth, err := authstore.OpenSQLite(t.Context(), h, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = auth.Close() })
		auth.Seal(r.keys)
		r.driver.Devices = func(id string) whatsapp.DeviceStore { return auth.Account(id) }
	}
}

// authItems counts everything stored of the account's auth state: its
// collection's documents (MongoDB), or every device and account row
// (SQLite; the rig has one account).
func (r *rig) authItems(t *testing.T, accountID string) int64 {
	t.Helper()
	if r.engine == storetest.MongoDB {
		n, err := r.db.Collection(store.AuthCollection(accountID)).CountDocuments(context.Background(), bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var n int64
	for _, table := range []string{"whatsapp_devices", "whatsmeow_device", "whatsmeow_sessions", "whatsmeow_identity_keys", "whatsmeow_pre_keys", "whatsapp_device_keys", "whatsapp_pre_keys"} {
		var c int64
		if err := r.file.Reader().QueryRow("SELECT count(*) FROM " + table).Scan(&c); err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

// paired reports whether the account has a stored device.
func (r *rig) paired(t *testing.T, accountID string) bool {
	t.Helper()
	dev, err := r.driver.Devices(accountID).GetDevice(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dev.ID != nil
}

func (r *rig) open(t *testing.T) session.Session {
	t.Helper()
	s, err := r.driver.Open(context.Background(), session.Account{ID: "wa1", Proxy: r.proxy}, r.sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func isKind(k event.Kind) func(*event.Event) bool {
	return func(ev *event.Event) bool { return ev.Kind == k }
}

// pair connects a new account and scans its first QR code.
func (r *rig) pair(t *testing.T) (session.Session, *watest.Account) {
	t.Helper()
	s := r.open(t)
	qr := r.sink.waitFor(t, "account.qr", isKind(event.KindAccountQR))
	if qr.Account.QRCode == "" || qr.Account.ExpiresAt == nil || !qr.Account.ExpiresAt.After(time.Now()) {
		t.Fatalf("QR event without a usable code: %+v", qr.Account)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	acct, err := r.srv.ScanQR(ctx, qr.Account.QRCode)
	if err != nil {
		t.Fatal(err)
	}
	conn := r.sink.waitFor(t, "account.connected", isKind(event.KindAccountConnected))
	if conn.Account.JID != acct.JID().ToNonAD().String() {
		t.Fatalf("connected as %q, the phone paired %q", conn.Account.JID, acct.JID())
	}
	return s, acct
}

func TestPairReceiveSendAndRestart(t *testing.T) { storetest.Each(t, testPairReceiveSendAndRestart) }

func testPairReceiveSendAndRestart(t *testing.T, e storetest.Engine) {
	r := newRigOn(t, e)
	s, acct := r.pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	own := acct.JID().ToNonAD()

	// A contact writes: stored once, as message.received.
	alice := r.srv.Contact("15551230001")
	id, err := alice.SendText(ctx, own, "hello from alice")
	if err != nil {
		t.Fatal(err)
	}
	got := r.sink.waitFor(t, "message from alice", func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == id })
	if got.Kind != event.KindMessageReceived || got.Message.Text != "hello from alice" || got.Message.From != alice.JID().String() {
		t.Fatalf("received %+v", got.Message)
	}
	if n := r.sink.storedCount(id); n != 1 {
		t.Fatalf("message stored %d times", n)
	}

	// Media from a contact downloads and decrypts byte for byte.
	img := bytes.Repeat([]byte("image-bytes "), 4000)
	imgID, err := alice.SendImage(ctx, own, img, "image/jpeg", "a picture")
	if err != nil {
		t.Fatal(err)
	}
	imgEv := r.sink.waitFor(t, "image", func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == imgID })
	if imgEv.Message.Type != event.TypeImage || imgEv.Message.Media.Caption != "a picture" {
		t.Fatalf("image event: %+v", imgEv.Message)
	}
	rc, err := s.DownloadMedia(ctx, imgEv.Message)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	if !bytes.Equal(data, img) {
		t.Fatalf("downloaded %d bytes, want the %d sent", len(data), len(img))
	}

	// Sending: the contact decrypts exactly what was asked for; its
	// receipts come back as status events.
	res, err := s.Send(ctx, &session.SendRequest{To: alice.JID().String(), Text: "hi alice", Source: event.SourceAPI})
	if err != nil {
		t.Fatal(err)
	}
	in, err := alice.NextMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != res.MessageID || in.Message.GetConversation() != "hi alice" {
		t.Fatalf("contact got %q (%s), want %q (%s)", in.Message.GetConversation(), in.ID, "hi alice", res.MessageID)
	}
	doc := bytes.Repeat([]byte("%PDF-1.7 "), 3000)
	docRes, err := s.Send(ctx, &session.SendRequest{To: alice.JID().String(), Source: event.SourceAPI,
		Media: &session.MediaSend{Kind: session.MediaDocument, Data: doc, Mimetype: "application/pdf", Filename: "invoice.pdf"}})
	if err != nil {
		t.Fatal(err)
	}
	in, err = alice.NextMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != docRes.MessageID || in.Message.GetDocumentMessage().GetFileName() != "invoice.pdf" {
		t.Fatalf("contact got %v", in.Message)
	}
	sentDoc, err := r.srv.DownloadMedia(in.Message.GetDocumentMessage())
	if err != nil || !bytes.Equal(sentDoc, doc) {
		t.Fatalf("the document the contact received differs (%v)", err)
	}
	for _, rt := range []types.ReceiptType{types.ReceiptTypeDelivered, types.ReceiptTypeRead} {
		if err := alice.SendReceipt(ctx, res.MessageID, rt); err != nil {
			t.Fatal(err)
		}
	}
	r.sink.waitFor(t, "read receipt", func(ev *event.Event) bool {
		return ev.Status != nil && ev.Status.MessageID == res.MessageID && ev.Status.Status == event.StatusRead
	})

	// Restart: a new session from the stored auth state alone logs in
	// without pairing.
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r.openAuth(t)
	logins := acct.Logins()
	r.sink.mu.Lock()
	r.sink.seen = nil
	r.sink.mu.Unlock()
	r.open(t)
	r.sink.waitFor(t, "account.connected after restart", isKind(event.KindAccountConnected))
	if err := acct.WaitLogins(ctx, logins+1); err != nil {
		t.Fatal(err)
	}
	for _, ev := range r.sink.seen {
		if ev.Kind == event.KindAccountQR {
			t.Fatal("a restarted, paired account asked for a QR code")
		}
	}
}

// TestNoMessageLostToAStoreFailure: while the store refuses writes, a
// message is not acknowledged; WhatsApp redelivers it, and once the store
// is back it is stored exactly once.
func TestNoMessageLostToAStoreFailure(t *testing.T) {
	storetest.Each(t, testNoMessageLostToAStoreFailure)
}

func testNoMessageLostToAStoreFailure(t *testing.T, e storetest.Engine) {
	r := newRigOn(t, e)
	_, acct := r.pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	bob := r.srv.Contact("15551230002")

	r.sink.refuse.Store(true)
	id, err := bob.SendText(ctx, acct.JID().ToNonAD(), "do not lose me")
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, wait, func() error {
		for _, u := range acct.Unacked() {
			if u == id {
				return nil
			}
		}
		return errors.New("message not yet seen unacked")
	})
	if ack, ok := ackOf(r.srv, id); ok {
		t.Fatalf("the client acknowledged a message it could not store: %+v", ack)
	}

	r.sink.refuse.Store(false)
	if n := r.srv.RedeliverUnacked(); n == 0 {
		t.Fatal("nothing to redeliver")
	}
	got := r.sink.waitFor(t, "redelivered message", func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == id })
	if got.Message.Text != "do not lose me" {
		t.Fatalf("redelivered text %q", got.Message.Text)
	}
	if _, err := r.srv.WaitAck(ctx, id); err != nil {
		t.Fatalf("stored message never acknowledged: %v", err)
	}
	if n := r.sink.storedCount(id); n != 1 {
		t.Fatalf("stored %d times", n)
	}
}

func ackOf(srv *watest.Server, id string) (watest.ClientAck, bool) {
	acks := srv.Acks(id)
	if len(acks) == 0 {
		return watest.ClientAck{}, false
	}
	return acks[0], true
}

// TestReconnectAfterDrop: the driver's own backoff brings the session back
// and a message sent meanwhile arrives.
func TestReconnectAfterDrop(t *testing.T) { storetest.Each(t, testReconnectAfterDrop) }

func testReconnectAfterDrop(t *testing.T, e storetest.Engine) {
	r := newRigOn(t, e)
	_, acct := r.pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	logins := acct.Logins()
	if !acct.DropConnection() {
		t.Fatal("no connection to drop")
	}
	r.sink.waitFor(t, "account.disconnected", func(ev *event.Event) bool {
		return ev.Kind == event.KindAccountDisconnected && ev.Account.Reason == "connection lost"
	})
	carol := r.srv.Contact("15551230003")
	id, err := carol.SendText(ctx, acct.JID().ToNonAD(), "while you were away")
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.WaitLogins(ctx, logins+1); err != nil {
		t.Fatalf("no reconnect: %v", err)
	}
	r.sink.waitFor(t, "message sent during the drop", func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == id })
}

func TestLoggedOutFromPhone(t *testing.T) { storetest.Each(t, testLoggedOutFromPhone) }

func testLoggedOutFromPhone(t *testing.T, e storetest.Engine) {
	r := newRigOn(t, e)
	_, acct := r.pair(t)
	acct.LogOutFromPhone()
	ev := r.sink.waitFor(t, "account.logged_out", isKind(event.KindAccountLoggedOut))
	if ev.Account.Reason == "" {
		t.Fatal("logged_out without a reason")
	}
	// whatsmeow deleted the device, and with it all auth state.
	poll.Until(t, wait, func() error {
		if n := r.authItems(t, "wa1"); n != 0 {
			return fmt.Errorf("%d auth state items still stored after logout", n)
		}
		return nil
	})
	if r.paired(t, "wa1") {
		t.Fatal("the account still has a device after logout")
	}
}

// TestLogoutOnRequest: Logout unlinks the device and deletes the auth
// state; the account starts over with a QR code.
func TestLogoutOnRequest(t *testing.T) { storetest.Each(t, testLogoutOnRequest) }

func testLogoutOnRequest(t *testing.T, e storetest.Engine) {
	r := newRigOn(t, e)
	s, _ := r.pair(t)
	if !r.paired(t, "wa1") {
		t.Fatal("no device stored after pairing")
	}
	if err := s.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.sink.waitFor(t, "account.logged_out", isKind(event.KindAccountLoggedOut))
	if n := r.authItems(t, "wa1"); n != 0 {
		t.Fatalf("%d auth state items still stored after logout", n)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.sink.mu.Lock()
	r.sink.seen = nil
	r.sink.mu.Unlock()
	r.openAuth(t)
	r.open(t)
	r.sink.waitFor(t, "account.qr after logout", isKind(event.KindAccountQR))
}

func TestPairByPhoneCode(t *testing.T) { storetest.Each(t, testPairByPhoneCode) }

func testPairByPhoneCode(t *testing.T, e storetest.Engine) {
	r := newRigOn(t, e)
	s := r.open(t)
	r.sink.waitFor(t, "account.qr", isKind(event.KindAccountQR))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	code, err := s.PairPhone(ctx, "15550004444")
	if err != nil {
		t.Fatal(err)
	}
	ev := r.sink.waitFor(t, "account.pairing_code", isKind(event.KindAccountPairingCode))
	if ev.Account.PairingCode != code {
		t.Fatalf("event code %q, returned %q", ev.Account.PairingCode, code)
	}
	if _, err := r.srv.EnterPairingCode(ctx, "15550004444", code); err != nil {
		t.Fatal(err)
	}
	conn := r.sink.waitFor(t, "account.connected", isKind(event.KindAccountConnected))
	if conn.Account.JID != "15550004444@s.whatsapp.net" {
		t.Fatalf("connected as %q", conn.Account.JID)
	}
}
