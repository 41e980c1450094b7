package webhooks_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// TestSealedEndpoints: with encryption on, no secret or header value is in
// the engine's bytes; rotation and Reencrypt keep every endpoint readable;
// endpoints stored before encryption was on are read and then sealed; a
// missing key is an error naming it.
func TestSealedEndpoints(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		var (
			raw  webhooks.EndpointStore
			dump func() []byte
		)
		if e == storetest.MongoDB {
			db := storetest.NewDatabase(t)
			raw, dump = webhooks.NewMongoEndpoints(db, ""), func() []byte { return sealtest.MongoBytes(t, db) }
		} else {
			db := storetest.NewSQLite(t, webhooks.SQLiteSchema)
			raw, dump = webhooks.NewSQLiteEndpoints(db), func() []byte { return vacuumed(t, db) }
		}
		t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		until := t0.Add(time.Hour)
		ep := func(id, secret string) *webhooks.Endpoint {
			return &webhooks.Endpoint{ID: id, URL: "https://crm.example.com/h", Events: []string{"*"}, Accounts: []string{"*"},
				Headers: map[string]string{"Authorization": "Bearer HDRMARK-" + id}, Enabled: true, Source: webhooks.SourceAPI,
				Secret: secret, PreviousSecret: "whsec_PREVMARK-" + id, PreviousSecretUntil: &until, CreatedAt: t0, UpdatedAt: t0}
		}
		k1, k2 := sealtest.Key(t, "k1"), sealtest.Key(t, "k2")

		// Before encryption: plaintext.
		old := ep("old", "whsec_SECRETMARK-old")
		if err := webhooks.Sealed(raw, nil).Insert(ctx, old); err != nil {
			t.Fatal(err)
		}
		sealtest.HasPlaintext(t, "before encryption", dump(), "SECRETMARK-old")

		// On: new endpoints are sealed, the old one still reads.
		on := webhooks.Sealed(raw, sealtest.Ring(t, "", k1))
		fresh := ep("new", "whsec_SECRETMARK-new")
		if err := on.Insert(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		sealtest.NoPlaintext(t, "after insert", dump(), "SECRETMARK-new", "HDRMARK-new", "PREVMARK-new")
		for _, want := range []*webhooks.Endpoint{old, fresh} {
			got, err := on.Get(ctx, want.ID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("read back %s:\n got %+v %v\nwant %+v", want.ID, got, err, want)
			}
		}
		all, err := on.List(ctx)
		if err != nil || len(all) != 2 || all[0].Secret != "whsec_SECRETMARK-new" {
			t.Fatalf("list %+v %v", all, err)
		}

		// Rotation to k2, then reencrypt: everything under k2, k1 can go.
		rotated := sealtest.Ring(t, "k2", k1, k2)
		n, err := webhooks.Reencrypt(ctx, raw, rotated)
		if err != nil || n != 2 {
			t.Fatalf("Reencrypt = %d, %v; want 2", n, err)
		}
		if n, err := webhooks.Reencrypt(ctx, raw, rotated); err != nil || n != 0 {
			t.Fatalf("second Reencrypt = %d, %v; want 0", n, err)
		}
		sealtest.NoPlaintext(t, "after reencrypt", dump(), "SECRETMARK-old", "HDRMARK-old", "PREVMARK-old", "SECRETMARK-new")
		only2 := webhooks.Sealed(raw, sealtest.Ring(t, "", k2))
		for _, want := range []*webhooks.Endpoint{old, fresh} {
			if got, err := only2.Get(ctx, want.ID); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("with k2 alone %s: %+v %v", want.ID, got, err)
			}
		}
		// Without the key: an error naming it, never a garbage secret.
		if _, err := webhooks.Sealed(raw, sealtest.Ring(t, "", k1)).Get(ctx, "new"); !errors.Is(err, sealing.ErrUnknownKey) {
			t.Fatalf("Get without k2: %v", err)
		}
		if _, err := webhooks.Sealed(raw, nil).List(ctx); !errors.Is(err, sealing.ErrUnknownKey) {
			t.Fatalf("List with encryption off: %v", err)
		}
	})
}

// vacuumed is the SQLite file's bytes once overwritten rows are gone.
func vacuumed(t *testing.T, db *sqlite.DB) []byte {
	t.Helper()
	if err := db.Vacuum(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sealtest.SQLiteBytes(t, db.Path())
}
