package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/store/sqlite"
)

const testKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// TestStoreReencryptCommand: turning encryption on for a store written in
// the clear is a key plus `wildcatd store reencrypt`; without a key, or
// with a bad one, the command exits 2 naming the configuration key.
func TestStoreReencryptCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openDataDir(t, dir)
	ev := &event.Event{ID: "shop:M1", Kind: event.KindMessageReceived, AccountID: "shop", ChatID: "15550001111@s.whatsapp.net",
		Source: event.SourcePhone, Message: &event.Message{AccountID: "shop", MessageID: "M1", ChatID: "15550001111@s.whatsapp.net",
			From: "15550001111@s.whatsapp.net", Timestamp: 1700000000, Type: event.TypeText, Text: "CLIMARK-5f0c before encryption"}}
	if _, err := messages.NewSQLite(db, nil).Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
	devKeys := pairDevice(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	sealtest.HasPlaintext(t, "before", sealtest.SQLiteBytes(t, dir+"/wildcat.db"), "CLIMARK-5f0c")
	sealtest.HasPlaintext(t, "before", sealtest.SQLiteBytes(t, dir+"/wildcat.db"), devKeys...)

	dataDir := "WILDCAT_DATA_DIR=" + dir
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"no key", []string{dataDir}, "encryption.keys: no encryption key is configured"},
		{"short key", []string{dataDir, "WILDCAT_ENCRYPTION_KEYS=k1:c2hvcnQ="}, `encryption.keys: key "k1": has 5 bytes`},
	} {
		r := wildcatd(t, tc.env, "store", "reencrypt")
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Fatalf("%s: exit %d, stderr %q; want 2 and %q", tc.name, r.code, r.stderr, tc.want)
		}
	}

	// While a daemon holds the store, it is refused.
	held := openDataDir(t, dir)
	r := wildcatd(t, []string{dataDir, "WILDCAT_ENCRYPTION_KEYS=k1:" + testKey}, "store", "reencrypt")
	if r.code != exitFailure || !strings.Contains(r.stderr, "stop it before re-encrypting") {
		t.Fatalf("a store in use: exit %d, %q", r.code, r.stderr)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}

	r = wildcatd(t, []string{dataDir, "WILDCAT_ENCRYPTION_KEYS=k1:" + testKey}, "store", "reencrypt")
	if r.code != exitOK || !strings.Contains(r.stdout, `sealed under key "k1"`) || !strings.Contains(r.stdout, "messages and chats") {
		t.Fatalf("reencrypt: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sealtest.NoPlaintext(t, "after reencrypt", sealtest.SQLiteBytes(t, dir+"/wildcat.db"), "CLIMARK-5f0c")
	sealtest.NoPlaintext(t, "after reencrypt", sealtest.SQLiteBytes(t, dir+"/wildcat.db"), devKeys...)

	keys, err := sealing.Load("", "k1:"+testKey, "")
	if err != nil {
		t.Fatal(err)
	}
	db = openDataDir(t, dir)
	defer db.Close()
	s := messages.NewSQLite(db, nil)
	s.Seal(keys)
	m, err := s.Get(ctx, "shop", "M1")
	if err != nil || m.Text != "CLIMARK-5f0c before encryption" {
		t.Fatalf("read back: %+v, %v", m, err)
	}
	if got := deviceKeys(t, db, keys); !slices.Equal(got, devKeys) {
		t.Fatal("the paired device's keys read back differently")
	}
}

// pairDevice stores a paired whatsapp device for account "shop" with
// three pre-keys, as the daemon does, and returns its private keys.
func pairDevice(t *testing.T, db *sqlite.DB) []string {
	t.Helper()
	auth := openAuth(t, db, nil)
	defer auth.Close()
	acct := auth.Account("shop")
	dev, err := acct.GetDevice(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	jid := types.NewJID("15550001111", types.DefaultUserServer)
	jid.Device = 4
	dev.ID = &jid
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte("details"), AccountSignatureKey: bytes.Repeat([]byte{1}, 32),
		AccountSignature: bytes.Repeat([]byte{2}, 64), DeviceSignature: bytes.Repeat([]byte{3}, 64)}
	if err := acct.PutDevice(context.Background(), dev); err != nil {
		t.Fatal(err)
	}
	return deviceKeys(t, db, nil)
}

// deviceKeys reads account "shop"'s device with keys: its private keys and
// three pre-keys (generated if missing).
func deviceKeys(t *testing.T, db *sqlite.DB, keys *sealing.Keyring) []string {
	t.Helper()
	ctx := context.Background()
	auth := openAuth(t, db, keys)
	defer auth.Close()
	dev, err := auth.Account("shop").GetDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dev.ID == nil {
		t.Fatal("the device is gone")
	}
	pks, err := dev.PreKeys.GetOrGenPreKeys(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{string(dev.NoiseKey.Priv[:]), string(dev.IdentityKey.Priv[:]), string(dev.SignedPreKey.Priv[:]), string(dev.AdvSecretKey)}
	for _, k := range pks {
		out = append(out, string(k.Priv[:]))
	}
	return out
}

// openAuth opens the whatsapp auth state on db, sealing with keys.
func openAuth(t *testing.T, db *sqlite.DB, keys *sealing.Keyring) *authstore.SQLite {
	t.Helper()
	h, err := db.Conn()
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authstore.OpenSQLite(context.Background(), h, nil)
	if err != nil {
		t.Fatal(err)
	}
	return auth.Seal(keys)
}
