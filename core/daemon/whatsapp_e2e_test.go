package daemon_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// waDaemon starts a daemon core whose whatsapp accounts reach srv.
func waDaemon(t *testing.T, cfg config.Config, srv *watest.Server, rec *recorder) (*daemon.Daemon, *client) {
	t.Helper()
	d, err := daemon.New(cfg, daemon.Options{
		NoSignals:       true,
		WhatsApp:        whatsappDriver(srv),
		OnEvent:         rec.OnEvent,
		ConnectRetryMin: 10 * time.Millisecond, ConnectRetryMax: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, base: "http://" + d.Addr()}
	poll.Until(t, 30*time.Second, wantStatus(c.base+"/readyz", 200))
	return d, c
}

func (r *recorder) waitFor(t *testing.T, what string, f func(*event.Event) bool) *event.Event {
	t.Helper()
	var found *event.Event
	poll.Until(t, 30*time.Second, func() error {
		if evs := r.matching(f); len(evs) > 0 {
			found = evs[len(evs)-1]
			return nil
		}
		return fmt.Errorf("no %s event yet", what)
	})
	return found
}

func messageEvent(id string) func(*event.Event) bool {
	return func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == id }
}

// TestWhatsAppAccountEndToEnd runs a whatsapp account through the daemon
// core — REST, account manager, auth store, message store — with the
// unmodified whatsmeow client talking to the protocol double, on each
// engine: the auth state in MongoDB, or in whatsmeow's sqlstore on the
// embedded database file.
func TestWhatsAppAccountEndToEnd(t *testing.T) { storetest.Each(t, testWhatsAppAccountEndToEnd) }

func testWhatsAppAccountEndToEnd(t *testing.T, e storetest.Engine) {
	wa := watest.New(t)
	cfg := engineConfig(t, e)
	rec := &recorder{}
	d, c := waDaemon(t, cfg, wa, rec)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Pairing: QR events, the same code over REST, scanned by the phone.
	c.must(c.post("/v1/accounts", `{"id":"shop","driver":"whatsapp","name":"Shop"}`), 201)
	c.must(c.post("/v1/accounts/shop/connect", ""), 202)
	rec.waitFor(t, "account.qr", func(ev *event.Event) bool { return ev.Kind == event.KindAccountQR && ev.AccountID == "shop" })
	c.waitState("shop", "pairing")
	qr := c.must(c.get("/v1/accounts/shop/qr"), 200).json(t)
	code, _ := qr["code"].(string)
	emitted := rec.matching(func(ev *event.Event) bool { return ev.Kind == event.KindAccountQR && ev.Account.QRCode == code })
	if code == "" || len(emitted) == 0 {
		t.Fatalf("GET /qr served %q, which no account.qr event carried", code)
	}
	phone, err := wa.ScanQR(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	c.waitState("shop", "connected")
	own := phone.JID().ToNonAD()
	if got := c.must(c.get("/v1/accounts/shop"), 200).json(t)["jid"]; got != own.String() {
		t.Fatalf("account jid %v, phone paired %s", got, own)
	}
	if e == storetest.SQLite {
		if jid := embeddedDevice(t, cfg, "shop"); jid != phone.JID().String() {
			t.Fatalf("the database file holds device %q for the account, the phone paired %s", jid, phone.JID())
		}
	}

	// Restart: the account reconnects from the stored auth state alone —
	// in MongoDB (so with a fresh data directory), or in the data
	// directory's database file.
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	logins := phone.Logins()
	if e == storetest.MongoDB {
		cfg.DataDir = t.TempDir()
	}
	rec = &recorder{}
	d, c = waDaemon(t, cfg, wa, rec)
	if err := phone.WaitLogins(ctx, logins+1); err != nil {
		t.Fatal(err)
	}
	c.waitState("shop", "connected")
	if qrs := rec.matching(func(ev *event.Event) bool { return ev.Kind == event.KindAccountQR }); len(qrs) > 0 {
		t.Fatal("the restarted account paired again")
	}

	// A contact sends text and media: stored once, emitted as received,
	// media downloadable byte for byte.
	alice := wa.Contact("15557770001")
	textID, err := alice.SendText(ctx, own, "is the shop open?")
	if err != nil {
		t.Fatal(err)
	}
	img := bytes.Repeat([]byte("jpeg "), 9000)
	imgID, err := alice.SendImage(ctx, own, img, "image/jpeg", "this one")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{textID, imgID} {
		ev := rec.waitFor(t, "message.received", messageEvent(id))
		if ev.Kind != event.KindMessageReceived || ev.Message.From != alice.JID().String() {
			t.Fatalf("event %+v", ev)
		}
		m, err := d.Messages().Get(ctx, "shop", id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Source != event.SourcePhone || m.FromMe {
			t.Fatalf("stored %+v", m)
		}
	}
	if n := storedMessages(t, d, "shop"); n != 2 {
		t.Fatalf("stored %d messages, want 2", n)
	}
	rc, err := d.Sessions().DownloadMedia(ctx, "shop", imgID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, img) {
		t.Fatalf("downloaded %d bytes, want the %d sent", len(got), len(img))
	}
	// A redelivery of the same message is not stored twice.
	if err := wa.Redeliver(textID); err != nil {
		t.Fatal(err)
	}
	if _, err := wa.WaitAck(ctx, textID); err != nil {
		t.Fatal(err)
	}
	if n := storedMessages(t, d, "shop"); n != 2 {
		t.Fatalf("%d messages stored after a redelivery, want 2", n)
	}

	// Sending text and media: the contact decrypts exactly what was asked;
	// its receipts move the stored status to delivered, then read.
	res, err := d.Sessions().Send(ctx, "shop", &session.SendRequest{To: alice.JID().String(), Text: "yes, until 6", Source: event.SourceAPI,
		ReplyTo: &session.QuoteRef{MessageID: textID, Sender: alice.JID().String()}})
	if err != nil {
		t.Fatal(err)
	}
	in, err := alice.NextMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != res.MessageID || in.Message.GetExtendedTextMessage().GetText() != "yes, until 6" ||
		in.Message.GetExtendedTextMessage().GetContextInfo().GetStanzaID() != textID {
		t.Fatalf("contact received %v", in.Message)
	}
	pic := bytes.Repeat([]byte("png "), 5000)
	mres, err := d.Sessions().Send(ctx, "shop", &session.SendRequest{To: alice.JID().String(), Source: event.SourceAPI,
		Media: &session.MediaSend{Kind: session.MediaImage, Data: pic, Mimetype: "image/png", Caption: "our sign"}})
	if err != nil {
		t.Fatal(err)
	}
	in, err = alice.NextMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != mres.MessageID || in.Message.GetImageMessage().GetCaption() != "our sign" {
		t.Fatalf("contact received %v", in.Message)
	}
	if b, err := wa.DownloadMedia(in.Message.GetImageMessage()); err != nil || !bytes.Equal(b, pic) {
		t.Fatalf("the contact's copy of the image differs (%v)", err)
	}
	for _, step := range []struct {
		rt   types.ReceiptType
		want messages.Status
	}{{types.ReceiptTypeDelivered, messages.StatusDelivered}, {types.ReceiptTypeRead, messages.StatusRead}} {
		if err := alice.SendReceipt(ctx, res.MessageID, step.rt); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 30*time.Second, func() error {
			m, err := d.Messages().Get(ctx, "shop", res.MessageID)
			if err != nil {
				return err
			}
			if m.Status != step.want {
				return fmt.Errorf("status %q, want %q", m.Status, step.want)
			}
			return nil
		})
	}

	// The connection drops: the driver reconnects and nothing is lost.
	logins = phone.Logins()
	phone.DropConnection()
	bob := wa.Contact("15557770002")
	dropID, err := bob.SendText(ctx, own, "sent while you were offline")
	if err != nil {
		t.Fatal(err)
	}
	if err := phone.WaitLogins(ctx, logins+1); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "message sent during the drop", messageEvent(dropID))
	c.waitState("shop", "connected")

	// The phone unlinks the device: logged_out with the reason.
	phone.LogOutFromPhone()
	c.waitState("shop", "logged_out")
	if reason := c.must(c.get("/v1/accounts/shop"), 200).json(t)["reason"]; reason == "" {
		t.Fatal("logged_out without a reason")
	}
	if e == storetest.SQLite {
		poll.Until(t, 30*time.Second, func() error {
			if jid := embeddedDevice(t, cfg, "shop"); jid != "" {
				return fmt.Errorf("device %s still stored after logout", jid)
			}
			return nil
		})
	}
}

// embeddedDevice reads which whatsmeow device the embedded database file
// holds for an account ("" for none), the way an operator would look.
func embeddedDevice(t *testing.T, cfg config.Config, accountID string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(cfg.DataDir, daemon.DatabaseFile)+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var jid string
	err = db.QueryRow(`SELECT d.jid FROM whatsapp_devices a JOIN whatsmeow_device d ON d.jid = a.jid WHERE a.account_id = ?`, accountID).Scan(&jid)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return jid
}
