package authstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	wcstore "github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// newTestStore returns the stores of a fresh account in a fresh database.
func newTestStore(t *testing.T) (*Store, context.Context) {
	t.Helper()
	c, ctx := newTestContainer(t, storetest.NewDatabase(t), "acct")
	return c.Store(), ctx
}

func newTestContainer(t *testing.T, db *mongo.Database, accountID string) (*Container, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return New(db, accountID, nil), ctx
}

func pnJID(user string) types.JID  { return types.NewJID(user, types.DefaultUserServer) }
func lidJID(user string) types.JID { return types.NewJID(user, types.HiddenUserServer) }

func key32(b byte) [32]byte { return [32]byte(bytes.Repeat([]byte{b}, 32)) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// countKind counts the documents of one kind in the store's collection.
func countKind(t *testing.T, ctx context.Context, s *Store, kind string) int {
	t.Helper()
	n, err := s.coll.CountDocuments(ctx, bson.D{{Key: "kind", Value: kind}})
	must(t, err)
	return int(n)
}

// TestAccountsIsolated checks that two accounts in one database never see
// each other's state, and that the collection is the one the design names.
func TestAccountsIsolated(t *testing.T) {
	db := storetest.NewDatabase(t)
	a, ctx := newTestContainer(t, db, "alice")
	b, _ := newTestContainer(t, db, "bob")
	if got, want := a.coll.Name(), wcstore.AuthCollection("alice"); got != want {
		t.Fatalf("collection %q, want %q", got, want)
	}
	must(t, a.Store().PutSession(ctx, "1:0", []byte("a")))
	must(t, a.Store().PutIdentity(ctx, "1:0", key32(1)))
	_, err := a.Store().GetOrGenPreKeys(ctx, 3)
	must(t, err)

	if got, _ := b.Store().GetSession(ctx, "1:0"); got != nil {
		t.Fatalf("bob sees alice's session %q", got)
	}
	if ok, _ := b.Store().IsTrustedIdentity(ctx, "1:0", key32(9)); !ok {
		t.Fatal("bob sees alice's identity")
	}
	ks, err := b.Store().GetOrGenPreKeys(ctx, 3)
	must(t, err)
	if ks[0].KeyID != 1 {
		t.Fatalf("bob's first pre-key id %d, want 1 (own counter)", ks[0].KeyID)
	}
}

// TestConcurrentWriters runs many goroutines writing sessions, identities,
// sender keys and pre-keys at once; every write must land exactly once.
func TestConcurrentWriters(t *testing.T) {
	s, ctx := newTestStore(t)
	const workers, each = 20, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	preKeyIDs := make(chan uint32, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				addr := fmt.Sprintf("%d:%d", w, i)
				if err := s.PutSession(ctx, addr, []byte(addr)); err != nil {
					errs <- err
					return
				}
				if err := s.PutIdentity(ctx, addr, key32(byte(w))); err != nil {
					errs <- err
					return
				}
				if err := s.PutSenderKey(ctx, "g@g.us", addr, []byte(addr)); err != nil {
					errs <- err
					return
				}
				k, err := s.GenOnePreKey(ctx)
				if err != nil {
					errs <- err
					return
				}
				preKeyIDs <- k.KeyID
			}
			// Overwrite one of our own sessions concurrently with others.
			if err := s.PutSession(ctx, fmt.Sprintf("%d:0", w), []byte("final")); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	close(preKeyIDs)
	for err := range errs {
		t.Fatal(err)
	}

	for _, kind := range []string{kindSession, kindIdentity, kindSenderKey, kindPreKey} {
		if n := countKind(t, ctx, s, kind); n != workers*each {
			t.Errorf("%d %s documents, want %d", n, kind, workers*each)
		}
	}
	seen := map[uint32]bool{}
	for id := range preKeyIDs {
		if seen[id] {
			t.Fatalf("pre-key id %d handed out twice", id)
		}
		seen[id] = true
	}
	for w := range workers {
		got, err := s.GetSession(ctx, fmt.Sprintf("%d:0", w))
		must(t, err)
		if string(got) != "final" {
			t.Errorf("session %d:0 = %q, want final", w, got)
		}
		got, err = s.GetSession(ctx, fmt.Sprintf("%d:%d", w, each-1))
		must(t, err)
		if want := fmt.Sprintf("%d:%d", w, each-1); string(got) != want {
			t.Errorf("session = %q, want %q", got, want)
		}
	}
	if n, err := s.UploadedPreKeyCount(ctx); err != nil || n != workers*each {
		t.Fatalf("uploaded pre-keys %d, %v; want %d", n, err, workers*each)
	}
}

// TestConcurrentGetOrGenPreKeys checks that concurrent callers agree on the
// same un-uploaded keys instead of each generating a batch.
func TestConcurrentGetOrGenPreKeys(t *testing.T) {
	s, ctx := newTestStore(t)
	var wg sync.WaitGroup
	results := make([][]uint32, 10)
	for i := range results {
		wg.Go(func() {
			ks, err := s.GetOrGenPreKeys(ctx, 30)
			if err != nil {
				t.Error(err)
				return
			}
			for _, k := range ks {
				results[i] = append(results[i], k.KeyID)
			}
		})
	}
	wg.Wait()
	for i, r := range results {
		if fmt.Sprint(r) != fmt.Sprint(results[0]) {
			t.Fatalf("caller %d got %v, caller 0 got %v", i, r, results[0])
		}
	}
	if n := countKind(t, ctx, s, kindPreKey); n != 30 {
		t.Fatalf("%d pre-keys stored, want 30", n)
	}
}

// TestPreKeysTwoDaemons has two containers of one account (two daemons, no
// shared lock) generate pre-keys at once: ids collide and the unique _id
// sorts them out, so every key returned is stored under its id exactly once.
func TestPreKeysTwoDaemons(t *testing.T) {
	db := storetest.NewDatabase(t)
	a, ctx := newTestContainer(t, db, "acct")
	b, _ := newTestContainer(t, db, "acct")
	var mu sync.Mutex
	got := map[uint32][32]byte{}
	var wg sync.WaitGroup
	for i := range 8 {
		s := a.Store()
		if i%2 == 1 {
			s = b.Store()
		}
		wg.Go(func() {
			for range 3 {
				k, err := s.GenOnePreKey(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if _, dup := got[k.KeyID]; dup {
					t.Errorf("pre-key id %d returned twice", k.KeyID)
				}
				got[k.KeyID] = *k.Priv
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != 24 {
		t.Fatalf("%d distinct pre-keys, want 24", len(got))
	}
	for id, priv := range got {
		k, err := a.Store().GetPreKey(ctx, id)
		must(t, err)
		if k == nil || *k.Priv != priv {
			t.Fatalf("pre-key %d returned but not stored as returned", id)
		}
	}
	if n := countKind(t, ctx, a.Store(), kindPreKey); n != 24 {
		t.Fatalf("%d pre-keys stored, want 24", n)
	}
}
