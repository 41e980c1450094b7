package pluginhost

import (
	"context"
	"errors"
	"testing"

	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestSealedPluginKV: with encryption on no value a plugin stored is in the
// engine's bytes; values stored before encryption was on read and are
// sealed by ReencryptKV, which also moves everything to a new active key; a
// missing key or a value moved to another plugin's namespace is an error.
func TestSealedPluginKV(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		var (
			raw  KV
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

		if err := SealedKV(raw, nil).Set(ctx, "p", "old", []byte("OLDKVMARK"), 0); err != nil {
			t.Fatal(err)
		}
		sealtest.HasPlaintext(t, "before encryption", dump(), "OLDKVMARK")
		on := SealedKV(raw, sealtest.Ring(t, "", k1))
		if err := on.Set(ctx, "p", "new", []byte("NEWKVMARK"), 0); err != nil {
			t.Fatal(err)
		}
		sealtest.NoPlaintext(t, "after set", dump(), "NEWKVMARK")
		for key, want := range map[string]string{"old": "OLDKVMARK", "new": "NEWKVMARK"} {
			if got, ok, err := on.Get(ctx, "p", key); err != nil || !ok || string(got) != want {
				t.Fatalf("Get %s = %q %v %v", key, got, ok, err)
			}
		}
		// The namespace is bound to the value.
		sealed, _, _ := raw.Get(ctx, "p", "new")
		if err := raw.Set(ctx, "q", "new", sealed, 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := on.Get(ctx, "q", "new"); !errors.Is(err, sealing.ErrAuth) {
			t.Fatalf("a value moved to another plugin: %v", err)
		}
		if err := raw.Delete(ctx, "q", "new"); err != nil {
			t.Fatal(err)
		}

		rotated := sealtest.Ring(t, "k2", k1, k2)
		if n, err := ReencryptKV(ctx, ents, rotated); err != nil || n != 2 {
			t.Fatalf("ReencryptKV = %d, %v; want 2", n, err)
		}
		if n, err := ReencryptKV(ctx, ents, rotated); err != nil || n != 0 {
			t.Fatalf("second ReencryptKV = %d, %v", n, err)
		}
		sealtest.NoPlaintext(t, "after reencrypt", dump(), "OLDKVMARK", "NEWKVMARK")
		only2 := SealedKV(raw, sealtest.Ring(t, "", k2))
		for key, want := range map[string]string{"old": "OLDKVMARK", "new": "NEWKVMARK"} {
			if got, ok, err := only2.Get(ctx, "p", key); err != nil || !ok || string(got) != want {
				t.Fatalf("with k2 alone, Get %s = %q %v %v", key, got, ok, err)
			}
		}
		if _, _, err := SealedKV(raw, nil).Get(ctx, "p", "new"); !errors.Is(err, sealing.ErrUnknownKey) {
			t.Fatalf("Get with encryption off: %v", err)
		}
	})
}
