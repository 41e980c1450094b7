package daemon_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestWhatsAppSealedKeysEndToEnd pairs a whatsapp account with encryption
// at rest on, on either engine, against the protocol double: contacts'
// first messages decrypt with the device's sealed identity key and
// one-time pre-keys, replies reach them, a restart under a rotated key
// logs in with the sealed noise key and keeps talking; and the database
// (file, or every collection) holds none of the device's private keys or
// pre-keys.
func TestWhatsAppSealedKeysEndToEnd(t *testing.T) {
	storetest.Each(t, testWhatsAppSealedKeysEndToEnd)
}

func testWhatsAppSealedKeysEndToEnd(t *testing.T, e storetest.Engine) {
	wa := watest.New(t)
	cfg := engineConfig(t, e)
	cfg.Encryption.Keys = "k1:" + sealKey1
	rec := &recorder{}
	d, c := waDaemon(t, cfg, wa, rec)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c.must(c.post("/v1/accounts", `{"id":"vault","driver":"whatsapp","name":"Vault"}`), 201)
	c.must(c.post("/v1/accounts/vault/connect", ""), 202)
	qr := rec.waitFor(t, "account.qr", func(ev *event.Event) bool { return ev.Kind == event.KindAccountQR && ev.AccountID == "vault" })
	phone, err := wa.ScanQR(ctx, qr.Account.QRCode)
	if err != nil {
		t.Fatal(err)
	}
	c.waitState("vault", "connected")
	own := phone.JID().ToNonAD()
	talk(t, ctx, d, rec, wa.Contact("15557770001"), own, "first")

	// Restart with a second key active: the old key still opens the
	// device's keys, and the double accepts the login only with the noise
	// key the device paired with.
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	logins := phone.Logins()
	cfg.Encryption.Keys = fmt.Sprintf("k1:%s,k2:%s", sealKey1, sealKey2)
	rec = &recorder{}
	d, c = waDaemon(t, cfg, wa, rec)
	if err := phone.WaitLogins(ctx, logins+1); err != nil {
		t.Fatal(err)
	}
	c.waitState("vault", "connected")
	talk(t, ctx, d, rec, wa.Contact("15557770002"), own, "after restart")

	keys, err := sealing.Load("", cfg.Encryption.Keys, "")
	if err != nil {
		t.Fatal(err)
	}
	if e == storetest.MongoDB {
		dev, err := authstore.New(d.Store().DB(), "vault", nil).Seal(keys).GetDevice(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sealtest.NoPlaintext(t, "the MongoDB database", sealtest.MongoBytes(t, d.Store().DB()), privateKeys(t, ctx, dev)...)
		return
	}
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(cfg.DataDir, daemon.DatabaseFile)
	db, err := sqlite.Open(ctx, sqlite.Options{Path: file, Schemas: daemon.SQLiteSchemas()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, err := db.Conn()
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authstore.OpenSQLite(ctx, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	dev, err := auth.Seal(keys).Account("vault").GetDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sealtest.NoPlaintext(t, "the database file", sealtest.SQLiteBytes(t, file), privateKeys(t, ctx, dev)...)
}

// talk has contact send the account its first message (a Signal pre-key
// message: the device's identity key and a one-time pre-key decrypt it)
// and the account reply.
func talk(t *testing.T, ctx context.Context, d *daemon.Daemon, rec *recorder, contact *watest.Contact, own types.JID, text string) {
	t.Helper()
	id, err := contact.SendText(ctx, own, "hello "+text)
	if err != nil {
		t.Fatal(err)
	}
	if ev := rec.waitFor(t, "message.received", messageEvent(id)); ev.Message.Text != "hello "+text {
		t.Fatalf("received %q", ev.Message.Text)
	}
	res, err := d.Sessions().Send(ctx, "vault", &session.SendRequest{To: contact.JID().String(), Text: "reply " + text, Source: event.SourceAPI})
	if err != nil {
		t.Fatal(err)
	}
	in, err := contact.NextMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != res.MessageID || in.Message.GetConversation()+in.Message.GetExtendedTextMessage().GetText() != "reply "+text {
		t.Fatalf("contact received %v", in.Message)
	}
}

// privateKeys are dev's private keys and every stored pre-key, as markers
// for raw-byte checks.
func privateKeys(t *testing.T, ctx context.Context, dev *store.Device) []string {
	t.Helper()
	if dev.ID == nil {
		t.Fatal("the account's device is not stored")
	}
	out := []string{string(dev.NoiseKey.Priv[:]), string(dev.IdentityKey.Priv[:]), string(dev.SignedPreKey.Priv[:]), string(dev.AdvSecretKey)}
	// whatsmeow uploads its pre-keys with ids from 1.
	for id := uint32(1); id <= 1000; id++ {
		k, err := dev.PreKeys.GetPreKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if k != nil {
			out = append(out, string(k.Priv[:]))
		}
	}
	if len(out) < 4+10 {
		t.Fatalf("only %d pre-keys stored", len(out)-4)
	}
	return out
}
