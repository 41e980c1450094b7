package authstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestPreKeys: the pre-key store's semantics, on each engine, with the
// keys stored as they are and sealed.
func TestPreKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		for _, sealed := range []bool{false, true} {
			t.Run(fmt.Sprintf("sealed=%v", sealed), func(t *testing.T) {
				d, ctx := newTestDB(t, e)
				if sealed {
					d.keys = sealtest.Ring(t, "", sealtest.Key(t, "k1"))
				}
				testPreKeys(t, ctx, e, d.store(t, "acct"))
			})
		}
	})
}

func testPreKeys(t *testing.T, ctx context.Context, e storetest.Engine, s *testStore) {

	if k, err := s.GetPreKey(ctx, 1); err != nil || k != nil {
		t.Fatalf("missing pre-key = %v, %v; want nil, nil", k, err)
	}
	if n, err := s.UploadedPreKeyCount(ctx); err != nil || n != 0 {
		t.Fatalf("UploadedPreKeyCount = %d, %v", n, err)
	}

	first, err := s.GetOrGenPreKeys(ctx, 5)
	must(t, err)
	for i, k := range first {
		if k.KeyID != uint32(i+1) {
			t.Fatalf("key %d has id %d, want %d", i, k.KeyID, i+1)
		}
	}
	// Not uploaded yet: the same keys come back, none generated.
	again, err := s.GetOrGenPreKeys(ctx, 5)
	must(t, err)
	for i := range first {
		if again[i].KeyID != first[i].KeyID || *again[i].Priv != *first[i].Priv || *again[i].Pub != *first[i].Pub {
			t.Fatalf("second call returned key %d differently", i)
		}
	}
	// Asking for more returns the same five plus new ones.
	more, err := s.GetOrGenPreKeys(ctx, 7)
	must(t, err)
	if len(more) != 7 || more[0].KeyID != 1 || more[6].KeyID != 7 {
		t.Fatalf("GetOrGenPreKeys(7) ids %d..%d (len %d)", more[0].KeyID, more[len(more)-1].KeyID, len(more))
	}

	got, err := s.GetPreKey(ctx, 3)
	must(t, err)
	if got == nil || got.KeyID != 3 || *got.Priv != *first[2].Priv || *got.Pub != *first[2].Pub {
		t.Fatalf("GetPreKey(3) = %+v", got)
	}

	must(t, s.MarkPreKeysAsUploaded(ctx, 5))
	if n, _ := s.UploadedPreKeyCount(ctx); n != 5 {
		t.Fatalf("uploaded = %d, want 5", n)
	}
	next, err := s.GetOrGenPreKeys(ctx, 3)
	must(t, err)
	if ids := [3]uint32{next[0].KeyID, next[1].KeyID, next[2].KeyID}; ids != [3]uint32{6, 7, 8} {
		t.Fatalf("after upload got ids %v, want 6 7 8", ids)
	}

	one, err := s.GenOnePreKey(ctx)
	must(t, err)
	if one.KeyID != 9 {
		t.Fatalf("GenOnePreKey id %d, want 9", one.KeyID)
	}
	if n, _ := s.UploadedPreKeyCount(ctx); n != 6 {
		t.Fatalf("GenOnePreKey's key not counted as uploaded: %d", n)
	}

	must(t, s.RemovePreKey(ctx, 3))
	must(t, s.RemovePreKey(ctx, 3))
	if k, _ := s.GetPreKey(ctx, 3); k != nil {
		t.Fatal("pre-key 3 survived RemovePreKey")
	}
	if n, _ := s.UploadedPreKeyCount(ctx); n != 5 {
		t.Fatalf("uploaded = %d after removal, want 5", n)
	}
	// Ids are never reused on MongoDB, even after removing the highest;
	// sqlstore counts on from the highest stored.
	must(t, s.RemovePreKey(ctx, 9))
	k, err := s.GenOnePreKey(ctx)
	must(t, err)
	if want := map[storetest.Engine]uint32{storetest.MongoDB: 10, storetest.SQLite: 9}[e]; k.KeyID != want {
		t.Fatalf("id after removing 9 is %d, want %d", k.KeyID, want)
	}
	if ks, err := s.GetOrGenPreKeys(ctx, 0); err != nil || len(ks) != 0 {
		t.Fatalf("GetOrGenPreKeys(0) = %d keys, %v", len(ks), err)
	}
}
