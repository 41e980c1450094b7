package rules

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestSealedRuleKV: with encryption on no value a rule stored is in the
// engine's bytes; counters still count; values stored before encryption
// was on read and are sealed by ReencryptKV, which also moves everything to
// a new active key; a missing key is an error naming it.
func TestSealedRuleKV(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		var (
			raw  Store
			ents KVEntries
			dump func() []byte
		)
		if e == storetest.SQLite {
			db := storetest.NewSQLite(t, SQLiteSchema)
			kv := NewSQLiteKV(db, nil)
			raw, ents = kv, kv
			dump = func() []byte {
				if err := db.Vacuum(ctx); err != nil {
					t.Fatal(err)
				}
				return sealtest.SQLiteBytes(t, db.Path())
			}
		} else {
			db := storetest.NewDatabase(t)
			kv := NewMongoKV(db, nil)
			raw, ents, dump = kv, kv, func() []byte { return sealtest.MongoBytes(t, db) }
		}
		k1, k2 := sealtest.Key(t, "k1"), sealtest.Key(t, "k2")

		if err := SealedKV(raw, nil).Set(ctx, "r", "old", json.RawMessage(`{"note":"OLDKVMARK"}`), 0); err != nil {
			t.Fatal(err)
		}
		sealtest.HasPlaintext(t, "before encryption", dump(), "OLDKVMARK")

		on := SealedKV(raw, sealtest.Ring(t, "", k1))
		if err := on.Set(ctx, "r", "new", json.RawMessage(`"NEWKVMARK"`), 0); err != nil {
			t.Fatal(err)
		}
		if err := on.Set(ctx, "r", "n", json.RawMessage(`41`), 0); err != nil {
			t.Fatal(err)
		}
		if n, err := on.Incr(ctx, "r", "n", 1, 0); err != nil || n != 42 {
			t.Fatalf("Incr = %v, %v", n, err)
		}
		sealtest.NoPlaintext(t, "after set", dump(), "NEWKVMARK")
		for key, want := range map[string]string{"old": `{"note":"OLDKVMARK"}`, "new": `"NEWKVMARK"`, "n": `42`} {
			if got, ok, err := on.Get(ctx, "r", key); err != nil || !ok || !jsonEqual(got, json.RawMessage(want)) {
				t.Fatalf("Get %s = %s %v %v", key, got, ok, err)
			}
		}

		rotated := sealtest.Ring(t, "k2", k1, k2)
		if n, err := ReencryptKV(ctx, ents, rotated); err != nil || n != 2 {
			t.Fatalf("ReencryptKV = %d, %v; want 2 (the counter stays clear)", n, err)
		}
		if n, err := ReencryptKV(ctx, ents, rotated); err != nil || n != 0 {
			t.Fatalf("second ReencryptKV = %d, %v", n, err)
		}
		sealtest.NoPlaintext(t, "after reencrypt", dump(), "OLDKVMARK", "NEWKVMARK")
		only2 := SealedKV(raw, sealtest.Ring(t, "", k2))
		for key, want := range map[string]string{"old": `{"note":"OLDKVMARK"}`, "new": `"NEWKVMARK"`} {
			if got, ok, err := only2.Get(ctx, "r", key); err != nil || !ok || !jsonEqual(got, json.RawMessage(want)) {
				t.Fatalf("with k2 alone, Get %s = %s %v %v", key, got, ok, err)
			}
		}
		if _, _, err := SealedKV(raw, sealtest.Ring(t, "", k1)).Get(ctx, "r", "new"); !errors.Is(err, sealing.ErrUnknownKey) {
			t.Fatalf("Get without k2: %v", err)
		}
		// A value that looks like a sealed one, stored with encryption off,
		// reads back as itself.
		look := json.RawMessage(`"\u001bwc:AAAA"`)
		if err := SealedKV(raw, nil).Set(ctx, "r", "look", look, 0); err != nil {
			t.Fatal(err)
		}
		if got, _, err := only2.Get(ctx, "r", "look"); err != nil || !jsonEqual(got, look) {
			t.Fatalf("lookalike = %s, %v", got, err)
		}
	})
}
