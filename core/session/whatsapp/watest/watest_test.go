package watest_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	_ "modernc.org/sqlite"

	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
)

// ceiling bounds every wait; nothing here should come close to it.
const ceiling = 15 * time.Second

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), ceiling)
	t.Cleanup(cancel)
	return ctx
}

// logLevel for whatsmeow's own log; WATEST_LOG=DEBUG shows every node.
func logLevel() string {
	if l := os.Getenv("WATEST_LOG"); l != "" {
		return l
	}
	return "WARN"
}

type client struct {
	*whatsmeow.Client
	events chan any
	// fail makes the next n message handlers report failure, so whatsmeow
	// (with SynchronousAck) does not acknowledge those messages.
	fail atomic.Int32
}

// deviceDir is a temporary directory for a whatsmeow device store. Its
// removal is retried: whatsmeow's handlers may still be finishing a write
// (SQLite's -wal and -shm files come and go) after Disconnect returns, as
// Disconnect does not wait for them.
func deviceDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "watest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		poll.Until(t, ceiling, func() error { return os.RemoveAll(dir) })
	})
	return dir
}

// newClient opens (or reopens) a whatsmeow device stored in SQLite at path
// and points its client at srv.
func newClient(t *testing.T, srv *watest.Server, path string) *client {
	t.Helper()
	ctx := ctxFor(t)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	container := sqlstore.NewWithDB(db, "sqlite", watest.Logger(t, logLevel()).Sub("DB"))
	if err := container.Upgrade(ctx); err != nil {
		t.Fatalf("upgrade store: %v", err)
	}
	device, err := container.GetFirstDevice(ctx)
	if err != nil {
		t.Fatalf("get device: %v", err)
	}
	c := &client{
		Client: whatsmeow.NewClient(device, watest.Logger(t, logLevel()).Sub("Client")),
		events: make(chan any, 256),
	}
	srv.Configure(c.Client)
	c.EnableAutoReconnect = true
	c.SynchronousAck = true
	c.EnableDecryptedEventBuffer = true
	c.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		if _, ok := evt.(*events.Message); ok && c.fail.Load() > 0 {
			c.fail.Add(-1)
			return false
		}
		select {
		case c.events <- evt:
		default:
		}
		return true
	})
	t.Cleanup(c.Disconnect)
	return c
}

// await returns the next event of type T that satisfies match (nil: any).
func await[T any](t *testing.T, c *client, match func(T) bool) T {
	t.Helper()
	timeout := time.After(ceiling)
	for {
		select {
		case e := <-c.events:
			if v, ok := e.(T); ok && (match == nil || match(v)) {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("timed out waiting for %T", zero)
			return zero
		}
	}
}

// pairNew connects a fresh device, scans its QR code and waits until it is
// connected as the new account.
func pairNew(t *testing.T, srv *watest.Server) (*client, *watest.Account) {
	t.Helper()
	c := newClient(t, srv, filepath.Join(deviceDir(t), "device.db"))
	if err := c.Connect(); err != nil {
		t.Fatalf("connect: %v", err)
	}
	qr := await[*events.QR](t, c, nil)
	if len(qr.Codes) == 0 {
		t.Fatal("QR event without codes")
	}
	acct, err := srv.ScanQR(ctxFor(t), qr.Codes[0])
	if err != nil {
		t.Fatalf("scan QR: %v", err)
	}
	ps := await[*events.PairSuccess](t, c, nil)
	if ps.ID != acct.JID() || ps.LID != acct.LID() {
		t.Fatalf("paired as %s/%s, the double says %s/%s", ps.ID, ps.LID, acct.JID(), acct.LID())
	}
	await[*events.Connected](t, c, nil)
	if err := acct.WaitLogins(ctxFor(t), 1); err != nil {
		t.Fatal(err)
	}
	return c, acct
}

func textOf(m *waE2E.Message) string {
	if m.GetExtendedTextMessage() != nil {
		return m.GetExtendedTextMessage().GetText()
	}
	return m.GetConversation()
}

func TestPairByQRAndLogin(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, acct := pairNew(t, srv)
	if got := *c.Store.ID; got != acct.JID() {
		t.Fatalf("store ID %s, want %s", got, acct.JID())
	}
	if c.Store.LID != acct.LID() {
		t.Fatalf("store LID %s, want %s", c.Store.LID, acct.LID())
	}
	if n := acct.PreKeysUploaded(); n != 1 {
		t.Fatalf("%d pre-key uploads, want 1", n)
	}
	if !c.IsLoggedIn() || !acct.Connected() {
		t.Fatal("not logged in")
	}
}

func TestPairByPhoneCode(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c := newClient(t, srv, filepath.Join(deviceDir(t), "device.db"))
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	await[*events.QR](t, c, nil)
	const phone = "15557654321"
	code, err := c.PairPhone(ctxFor(t), "+"+phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatalf("PairPhone: %v", err)
	}
	acct, err := srv.EnterPairingCode(ctxFor(t), phone, code)
	if err != nil {
		t.Fatalf("enter code: %v", err)
	}
	if acct.Phone() != phone {
		t.Fatalf("paired phone %s, want %s", acct.Phone(), phone)
	}
	ps := await[*events.PairSuccess](t, c, nil)
	if ps.ID != acct.JID() {
		t.Fatalf("paired as %s, want %s", ps.ID, acct.JID())
	}
	await[*events.Connected](t, c, nil)
}

func TestContactSendsText(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, acct := pairNew(t, srv)
	bob := srv.Contact("15550001111")
	ctx := ctxFor(t)

	for i, text := range []string{"hello (pkmsg)", "again (msg)"} {
		id, err := bob.SendText(ctx, acct.JID(), text)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		msg := await[*events.Message](t, c, nil)
		if msg.Info.ID != id || msg.Info.Sender.User != bob.JID().User || textOf(msg.Message) != text {
			t.Fatalf("got %s from %s: %q, want %s from %s: %q", msg.Info.ID, msg.Info.Sender, textOf(msg.Message), id, bob.JID(), text)
		}
		if msg.Info.PushName != bob.PushName() {
			t.Fatalf("push name %q, want %q", msg.Info.PushName, bob.PushName())
		}
		ack, err := srv.WaitAck(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !ack.Receipt || ack.Type == types.ReceiptTypeRetry {
			t.Fatalf("message %d acknowledged with %+v, want a delivery receipt", i, ack)
		}
	}
}

func TestClientSendsToContact(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, acct := pairNew(t, srv)
	alice := srv.Contact("15550002222")
	ctx := ctxFor(t)

	for _, text := range []string{"first, a pkmsg", "second, a msg"} {
		resp, err := c.SendMessage(ctx, alice.JID(), &waE2E.Message{Conversation: proto.String(text)})
		if err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		got, err := alice.NextMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != resp.ID || got.From != acct.JID() || textOf(got.Message) != text {
			t.Fatalf("contact got %s from %s: %q, want %s from %s: %q", got.ID, got.From, textOf(got.Message), resp.ID, acct.JID(), text)
		}
	}

	// The session the client started carries the contact's answer too.
	id, err := alice.SendText(ctx, acct.JID(), "answer")
	if err != nil {
		t.Fatal(err)
	}
	msg := await[*events.Message](t, c, func(m *events.Message) bool { return m.Info.ID == id })
	if textOf(msg.Message) != "answer" {
		t.Fatalf("got %q", textOf(msg.Message))
	}
	// whatsmeow acknowledges in the background; its FrameSocket reads its
	// connection unlocked, so a receipt still being sent when the test's
	// cleanup disconnects is a data race inside whatsmeow. Wait for it.
	if _, err := srv.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestReceiptsFromContact(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, _ := pairNew(t, srv)
	carol := srv.Contact("15550003333")
	ctx := ctxFor(t)

	resp, err := c.SendMessage(ctx, carol.JID(), &waE2E.Message{Conversation: proto.String("read me")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.NextMessage(ctx); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []types.ReceiptType{types.ReceiptTypeDelivered, types.ReceiptTypeRead} {
		if err := carol.SendReceipt(ctx, resp.ID, typ); err != nil {
			t.Fatal(err)
		}
		r := await[*events.Receipt](t, c, nil)
		if r.Type != typ || len(r.MessageIDs) != 1 || r.MessageIDs[0] != resp.ID || r.Sender.User != carol.JID().User {
			t.Fatalf("receipt %+v, want %q for %s from %s", r, typ, resp.ID, carol.JID())
		}
	}

	// And the other way: the client marks a contact's message read.
	id, err := carol.SendText(ctx, c.Store.ID.ToNonAD(), "hi")
	if err != nil {
		t.Fatal(err)
	}
	await[*events.Message](t, c, nil)
	if _, err := srv.WaitAck(ctx, id); err != nil { // see TestClientSendsToContact
		t.Fatal(err)
	}
	if err := c.MarkRead(ctx, []types.MessageID{id}, time.Now(), carol.JID(), types.EmptyJID); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitReceipt(ctx, id, types.ReceiptTypeRead); err != nil {
		t.Fatal(err)
	}
}

func TestDropConnectionReconnectsAndDeliversOffline(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, acct := pairNew(t, srv)
	dave := srv.Contact("15550004444")
	ctx := ctxFor(t)

	// Hold the login so the message below is sent while the client is away.
	stall := srv.StallIQ("passive")
	if !acct.DropConnection() {
		t.Fatal("no connection to drop")
	}
	await[*events.Disconnected](t, c, nil)
	if err := stall.WaitHeld(ctx, 1); err != nil {
		t.Fatal(err)
	}
	id, err := dave.SendText(ctx, acct.JID(), "sent during the outage")
	if err != nil {
		t.Fatal(err)
	}
	stall.Release()
	// The offline message may be handled before or after events.Connected
	// (whatsmeow decrypts it while the passive IQ is still answered), so
	// wait for the message itself; the login count shows the reconnect.
	msg := await[*events.Message](t, c, nil)
	if msg.Info.ID != id {
		t.Fatalf("got %s, want %s", msg.Info.ID, id)
	}
	if err := acct.WaitLogins(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestRedeliverUnacked(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, acct := pairNew(t, srv)
	erin := srv.Contact("15550005555")
	ctx := ctxFor(t)

	c.fail.Store(1) // the application fails to store the first delivery
	id, err := erin.SendText(ctx, acct.JID(), "do not lose me")
	if err != nil {
		t.Fatal(err)
	}
	// A second message shows when the client has handled the first.
	marker, err := erin.SendText(ctx, acct.JID(), "marker")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAck(ctx, marker); err != nil {
		t.Fatal(err)
	}
	if acks := srv.Acks(id); len(acks) != 0 {
		t.Fatalf("failed message was acknowledged: %+v", acks)
	}
	if got := acct.Unacked(); len(got) != 1 || got[0] != id {
		t.Fatalf("unacked %v, want [%s]", got, id)
	}

	if n := srv.RedeliverUnacked(); n != 1 {
		t.Fatalf("redelivered %d, want 1", n)
	}
	msg := await[*events.Message](t, c, func(m *events.Message) bool { return m.Info.ID == id })
	if textOf(msg.Message) != "do not lose me" {
		t.Fatalf("redelivered %q", textOf(msg.Message))
	}
	ack, err := srv.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !ack.Receipt || ack.Attempts != 2 {
		t.Fatalf("ack %+v, want a receipt after 2 attempts", ack)
	}
}

func TestLogOutFromPhone(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, acct := pairNew(t, srv)
	acct.LogOutFromPhone()
	lo := await[*events.LoggedOut](t, c, nil)
	if lo.OnConnect || lo.Reason != events.ConnectFailureLoggedOut {
		t.Fatalf("logged out %+v", lo)
	}
	if !acct.LoggedOut() {
		t.Fatal("the double still links the device")
	}
}

func TestRefusedLoginLogsOut(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, acct := pairNew(t, srv)
	acct.RefuseLogin(events.ConnectFailureLoggedOut)
	acct.DropConnection()
	lo := await[*events.LoggedOut](t, c, nil)
	if !lo.OnConnect || lo.Reason != events.ConnectFailureLoggedOut {
		t.Fatalf("logged out %+v", lo)
	}
	if !acct.LoggedOut() {
		t.Fatal("the double still links the device")
	}
}

func TestReconnectFromStoredState(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	path := filepath.Join(deviceDir(t), "device.db")
	c := newClient(t, srv, path)
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	qr := await[*events.QR](t, c, nil)
	acct, err := srv.ScanQR(ctxFor(t), qr.Codes[0])
	if err != nil {
		t.Fatal(err)
	}
	await[*events.Connected](t, c, nil)
	c.Disconnect()

	// A new process: same store, new client, no pairing.
	c2 := newClient(t, srv, path)
	if err := c2.Connect(); err != nil {
		t.Fatal(err)
	}
	await[*events.Connected](t, c2, nil)
	if err := acct.WaitLogins(ctxFor(t), 2); err != nil {
		t.Fatal(err)
	}
	if n := acct.PreKeysUploaded(); n != 1 {
		t.Fatalf("%d pre-key uploads after a plain reconnect, want 1", n)
	}
}

func TestStallIQ(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, _ := pairNew(t, srv)
	frank := srv.Contact("15550006666")
	ctx := ctxFor(t)

	stall := srv.StallIQ("usync")
	done := make(chan error, 1)
	go func() {
		_, err := c.SendMessage(ctx, frank.JID(), &waE2E.Message{Conversation: proto.String("slow")})
		done <- err
	}()
	if err := stall.WaitHeld(ctx, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("send finished while its device lookup was stalled: %v", err)
	default:
	}
	stall.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m, err := frank.NextMessage(ctx); err != nil || textOf(m.Message) != "slow" {
		t.Fatalf("got %v, %v", m, err)
	}
}

func TestMedia(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, acct := pairNew(t, srv)
	gina := srv.Contact("15550007777")
	ctx := ctxFor(t)

	image := bytes.Repeat([]byte("not really a png "), 1000)
	id, err := gina.SendImage(ctx, acct.JID(), image, "image/png", "look")
	if err != nil {
		t.Fatal(err)
	}
	msg := await[*events.Message](t, c, func(m *events.Message) bool { return m.Info.ID == id })
	if _, err := srv.WaitAck(ctx, id); err != nil { // see TestClientSendsToContact
		t.Fatal(err)
	}
	img := msg.Message.GetImageMessage()
	if img == nil || img.GetCaption() != "look" {
		t.Fatalf("got %v", msg.Message)
	}
	data, err := c.Download(ctx, img)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	if !bytes.Equal(data, image) {
		t.Fatal("downloaded image differs")
	}

	doc := []byte(fmt.Sprintf("%%PDF-1.4 %s", bytes.Repeat([]byte{0xAB}, 4000)))
	up, err := c.Upload(ctx, doc, whatsmeow.MediaDocument)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	_, err = c.SendMessage(ctx, gina.JID(), &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
		FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: proto.Uint64(up.FileLength),
		Mimetype: proto.String("application/pdf"), FileName: proto.String("a.pdf"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := gina.NextMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != "media" || got.Message.GetDocumentMessage() == nil {
		t.Fatalf("contact got %s %v", got.Type, got.Message)
	}
	data, err = srv.DownloadMedia(got.Message.GetDocumentMessage())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, doc) {
		t.Fatal("document differs")
	}
}

// TestMediaRetry: expired media answers 404; whatsmeow's media retry
// receipt reaches the phone, which opens it with the media key, uploads
// the file again and answers with a mediaretry notification that
// whatsmeow parses and decrypts into the new direct path. A request for a
// message the phone does not have is answered with error code 2.
func TestMediaRetry(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, acct := pairNew(t, srv)
	hana := srv.Contact("15550008888")
	ctx := ctxFor(t)

	image := bytes.Repeat([]byte("expiring png "), 1500)
	id, err := hana.SendImage(ctx, acct.JID(), image, "image/png", "")
	if err != nil {
		t.Fatal(err)
	}
	msg := await[*events.Message](t, c, func(m *events.Message) bool { return m.Info.ID == id })
	if _, err := srv.WaitAck(ctx, id); err != nil { // see TestClientSendsToContact
		t.Fatal(err)
	}
	img := msg.Message.GetImageMessage()
	if err := srv.ExpireMedia(id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Download(ctx, img); !errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith404) {
		t.Fatalf("download of expired media: %v, want 404", err)
	}
	if err := c.SendMediaRetryReceipt(ctx, &msg.Info, img.GetMediaKey()); err != nil {
		t.Fatal(err)
	}
	retry := await[*events.MediaRetry](t, c, func(e *events.MediaRetry) bool { return e.MessageID == id })
	if retry.ChatID != hana.JID() || retry.FromMe {
		t.Fatalf("retry answer for chat %s from_me=%t", retry.ChatID, retry.FromMe)
	}
	notif, err := whatsmeow.DecryptMediaRetryNotification(retry, img.GetMediaKey())
	if err != nil {
		t.Fatal(err)
	}
	if notif.GetResult() != waMmsRetry.MediaRetryNotification_SUCCESS || notif.GetStanzaID() != id {
		t.Fatalf("retry answer %v", notif)
	}
	reqs := srv.MediaRetryRequests(id)
	if len(reqs) != 1 || reqs[0].Err != nil || reqs[0].DirectPath != notif.GetDirectPath() {
		t.Fatalf("the double recorded %+v, the client got path %q", reqs, notif.GetDirectPath())
	}
	if err := srv.WaitNotificationAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	img.DirectPath = proto.String(notif.GetDirectPath())
	img.URL = nil
	data, err := c.Download(ctx, img)
	if err != nil {
		t.Fatalf("download from the new path: %v", err)
	}
	if !bytes.Equal(data, image) {
		t.Fatal("re-uploaded image differs")
	}

	// A message the phone never had: it cannot re-upload.
	unknown := msg.Info
	unknown.ID = "3EB0UNKNOWN"
	if err := c.SendMediaRetryReceipt(ctx, &unknown, img.GetMediaKey()); err != nil {
		t.Fatal(err)
	}
	failed := await[*events.MediaRetry](t, c, func(e *events.MediaRetry) bool { return e.MessageID == unknown.ID })
	if _, err := whatsmeow.DecryptMediaRetryNotification(failed, img.GetMediaKey()); !errors.Is(err, whatsmeow.ErrMediaNotAvailableOnPhone) {
		t.Fatalf("answer for an unknown message: %v", err)
	}
	if reqs := srv.MediaRetryRequests(unknown.ID); len(reqs) != 1 || reqs[0].Err == nil {
		t.Fatalf("the double recorded %+v", reqs)
	}
}
