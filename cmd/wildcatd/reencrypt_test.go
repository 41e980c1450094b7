package main

import (
	"context"
	"strings"
	"testing"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
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
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	sealtest.HasPlaintext(t, "before", sealtest.SQLiteBytes(t, dir+"/wildcat.db"), "CLIMARK-5f0c")

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
}
