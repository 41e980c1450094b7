package daemon_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/core/storecopy"
)

// TestPairedAccountMovesToMongoDB is wildcatd store copy's promise: an
// account paired on the embedded engine, copied to MongoDB, connects from
// a daemon on MongoDB with the same linked phone — no QR code, no pairing —
// and its Signal sessions still decrypt what a contact sends.
func TestPairedAccountMovesToMongoDB(t *testing.T) {
	wa := watest.New(t)
	cfg := testConfig(t, "")
	cfg.HTTP.MaxBodyBytes = testMaxBody
	rec := &recorder{}
	d, c := waDaemon(t, cfg, wa, rec)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c.must(c.post("/v1/accounts", `{"id":"shop","driver":"whatsapp","name":"Shop"}`), 201)
	c.must(c.post("/v1/accounts/shop/connect", ""), 202)
	rec.waitFor(t, "account.qr", func(ev *event.Event) bool { return ev.Kind == event.KindAccountQR && ev.AccountID == "shop" })
	c.waitState("shop", "pairing")
	code, _ := c.must(c.get("/v1/accounts/shop/qr"), 200).json(t)["code"].(string)
	phone, err := wa.ScanQR(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	c.waitState("shop", "connected")
	own := phone.JID().ToNonAD()
	alice := wa.Contact("15557770001")
	before, err := alice.SendText(ctx, own, "before the move")
	if err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "message before the move", messageEvent(before))
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	logins := phone.Logins()

	// The copy, as wildcatd store copy runs it.
	mcfg := testConfig(t, storetest.URI(t))
	mcfg.HTTP.MaxBodyBytes = testMaxBody
	res, err := storecopy.Copy(ctx, cfg.DataDir, mcfg.MongoDB.URI, storecopy.OpenOptions{Database: mcfg.MongoDB.Database},
		false, storecopy.NewLines(io.Discard, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range res.Kinds {
		if k.Source != k.Copied {
			t.Fatalf("%s: %d in the source, %d copied", k.Name, k.Source, k.Copied)
		}
		if k.Name == storecopy.KindWhatsAppAuth && k.Copied != 1 {
			t.Fatalf("%d whatsapp auth states copied", k.Copied)
		}
	}

	rec = &recorder{}
	_, c = waDaemon(t, mcfg, wa, rec)
	if err := phone.WaitLogins(ctx, logins+1); err != nil {
		t.Fatal(err)
	}
	c.waitState("shop", "connected")
	if qrs := rec.matching(func(ev *event.Event) bool { return ev.Kind == event.KindAccountQR }); len(qrs) > 0 {
		t.Fatal("the copied account paired again")
	}
	if got := c.must(c.get("/v1/accounts/shop"), 200).json(t)["jid"]; got != own.String() {
		t.Fatalf("account jid %v after the copy, the phone paired %s", got, own)
	}
	after, err := alice.SendText(ctx, own, "after the move")
	if err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "message after the move", messageEvent(after))
	// The history came along: the message from before is served by the
	// daemon on MongoDB.
	c.must(c.get("/v1/accounts/shop/messages/"+before), 200)
}
