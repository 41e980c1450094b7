package apikeys_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func newStore(t *testing.T, e storetest.Engine) interface {
	apikeys.Store
	Export(ctx context.Context, batch int, fn func([]*apikeys.Key) error) error
	Import(ctx context.Context, ks []*apikeys.Key) error
} {
	t.Helper()
	if e == storetest.MongoDB {
		return apikeys.NewMongo(storetest.NewDatabase(t))
	}
	return apikeys.NewSQLite(storetest.NewSQLite(t, apikeys.SQLiteSchema))
}

// TestStore is the Store conformance suite: every field round-trips,
// errors are the documented ones, rotation changes only the hash, and the
// copy's export and import keep keys whole.
func TestStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newStore(t, e)
		ctx := context.Background()
		t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		exp := t0.Add(48 * time.Hour)
		full := &apikeys.Key{ID: "crm", Name: "CRM", Scopes: []string{"messages:read", "messages:send"}, Accounts: []string{"acme", "beta"},
			Hash: []byte{1, 2, 3, 0, 255}, ExpiresAt: &exp, CreatedAt: t0}
		minimal := &apikeys.Key{ID: "a", Name: "admin", Scopes: []string{"admin"}, Hash: []byte{9}, CreatedAt: t0}
		if n, err := s.Count(ctx); n != 0 || err != nil {
			t.Fatalf("count of an empty store: %d %v", n, err)
		}
		for _, k := range []*apikeys.Key{full, minimal} {
			if err := s.Insert(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Insert(ctx, &apikeys.Key{ID: "crm", Name: "x", Scopes: []string{"admin"}, Hash: []byte{1}, CreatedAt: t0}); !errors.Is(err, apikeys.ErrExists) {
			t.Fatalf("duplicate insert: %v", err)
		}
		if got, err := s.Get(ctx, "crm"); err != nil || !reflect.DeepEqual(got, full) {
			t.Fatalf("round trip:\n got %+v (%v)\nwant %+v", got, err, full)
		}
		all, err := s.List(ctx)
		if err != nil || len(all) != 2 || !reflect.DeepEqual(all[0], minimal) || !reflect.DeepEqual(all[1], full) {
			t.Fatalf("list: %+v %v", all, err)
		}
		if n, err := s.Count(ctx); n != 2 || err != nil {
			t.Fatalf("count: %d %v", n, err)
		}

		rot := t0.Add(time.Hour)
		if err := s.SetHash(ctx, "crm", []byte{7, 7}, rot); err != nil {
			t.Fatal(err)
		}
		want := *full
		want.Hash, want.RotatedAt = []byte{7, 7}, &rot
		if got, _ := s.Get(ctx, "crm"); !reflect.DeepEqual(got, &want) {
			t.Fatalf("rotated:\n got %+v\nwant %+v", got, &want)
		}
		if err := s.SetHash(ctx, "nope", []byte{1}, rot); !errors.Is(err, apikeys.ErrNotFound) {
			t.Fatalf("rotate of a missing key: %v", err)
		}

		// The copy: export everything, import into a fresh store of the
		// same engine, read it back equal.
		var exported []*apikeys.Key
		if err := s.Export(ctx, 1, func(ks []*apikeys.Key) error { exported = append(exported, ks...); return nil }); err != nil {
			t.Fatal(err)
		}
		dst := newStore(t, e)
		if err := dst.Import(ctx, exported); err != nil {
			t.Fatal(err)
		}
		if err := dst.Import(ctx, exported); err != nil {
			t.Fatalf("second import: %v", err)
		}
		copied, _ := dst.List(ctx)
		if !reflect.DeepEqual(copied, []*apikeys.Key{minimal, &want}) {
			t.Fatalf("copied:\n got %+v\nwant %+v", copied, []*apikeys.Key{minimal, &want})
		}

		if err := s.Delete(ctx, "crm"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "crm"); !errors.Is(err, apikeys.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := s.Get(ctx, "crm"); !errors.Is(err, apikeys.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
	})
}

// TestKeyring: a created token authenticates, a wrong secret, a rotated
// one, a deleted key and an expired key do not; the database holds no
// token; a keyring with another server secret accepts none of them.
// TestKeyring: create, authenticate, expiry, rotation and revocation, on
// each engine, straight and through Cached (the embedded engine's cache of
// keys, which must change nothing a caller sees).
func TestKeyring(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		for _, cachedStore := range []bool{false, true} {
			t.Run(map[bool]string{false: "direct", true: "cached"}[cachedStore], func(t *testing.T) {
				ctx := context.Background()
				var s apikeys.Store = newStore(t, e)
				if cachedStore {
					s = apikeys.Cached(s)
				}
				now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
				kr := apikeys.NewKeyring(s, []byte("server secret"), func() time.Time { return now })

				exp := now.Add(time.Hour)
				key, tok, err := kr.Create(ctx, apikeys.Spec{Name: "crm", Scopes: []string{"messages:read"}, Accounts: []string{"acme"}, ExpiresAt: &exp})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(tok, "wck_"+key.ID+"_") {
					t.Fatalf("token %q does not carry the key id %q", tok, key.ID)
				}
				if got, err := kr.Authenticate(ctx, tok); err != nil || got.ID != key.ID || !got.Allows("acme") || got.Allows("beta") {
					t.Fatalf("authenticate: %+v %v", got, err)
				}
				stored, _ := s.Get(ctx, key.ID)
				if strings.Contains(string(stored.Hash), tok[len(tok)-64:]) {
					t.Fatal("the store holds the secret")
				}
				other := apikeys.NewKeyring(s, []byte("another secret"), func() time.Time { return now })
				if _, err := other.Authenticate(ctx, tok); !errors.Is(err, apikeys.ErrInvalid) {
					t.Fatalf("a keyring without the server secret accepted the token: %v", err)
				}
				wrong := tok[:len(tok)-1] + map[bool]string{true: "0", false: "1"}[tok[len(tok)-1] != '0']
				for _, bad := range []string{"", "wck_", "Bearer " + tok, wrong, "wck_nope_" + tok[len(tok)-64:], tok + "0"} {
					if _, err := kr.Authenticate(ctx, bad); !errors.Is(err, apikeys.ErrInvalid) {
						t.Errorf("token %q: %v, want ErrInvalid", bad, err)
					}
				}

				// Expiry, by the clock.
				now = exp
				if _, err := kr.Authenticate(ctx, tok); !errors.Is(err, apikeys.ErrExpired) {
					t.Fatalf("expired key: %v", err)
				}
				now = exp.Add(-time.Minute)

				_, newTok, err := kr.Rotate(ctx, key.ID)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := kr.Authenticate(ctx, tok); !errors.Is(err, apikeys.ErrInvalid) {
					t.Fatalf("old secret after rotation: %v", err)
				}
				if _, err := kr.Authenticate(ctx, newTok); err != nil {
					t.Fatalf("new secret: %v", err)
				}
				if err := kr.Delete(ctx, key.ID); err != nil {
					t.Fatal(err)
				}
				if _, err := kr.Authenticate(ctx, newTok); !errors.Is(err, apikeys.ErrInvalid) {
					t.Fatalf("deleted key: %v", err)
				}
			})
		}
	})
}

func TestKeyringRefusesBadSpecs(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	kr := apikeys.NewKeyring(apikeys.NewSQLite(storetest.NewSQLite(t, apikeys.SQLiteSchema)), []byte("s"), func() time.Time { return now })
	past := now.Add(-time.Second)
	for field, spec := range map[string]apikeys.Spec{
		"name":        {Scopes: []string{"admin"}},
		"scopes":      {Name: "x"},
		"scopes[1]":   {Name: "x", Scopes: []string{"admin", "root"}},
		"accounts[0]": {Name: "x", Scopes: []string{"admin"}, Accounts: []string{"../etc"}},
		"expiresAt":   {Name: "x", Scopes: []string{"admin"}, ExpiresAt: &past},
		"id":          {ID: "a_b", Name: "x", Scopes: []string{"admin"}},
	} {
		_, _, err := kr.Create(context.Background(), spec)
		var fe *apikeys.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
}

// TestBootstrap: the first call creates an admin key and writes it 0600;
// later calls create nothing.
func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	secret, err := apikeys.LoadSecret("", filepath.Join(dir, apikeys.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := apikeys.LoadSecret("", filepath.Join(dir, apikeys.SecretFile))
	if string(again) != string(secret) || len(secret) < 32 {
		t.Fatalf("server secret not kept: %q then %q", secret, again)
	}
	kr := apikeys.NewKeyring(apikeys.NewSQLite(storetest.NewSQLite(t, apikeys.SQLiteSchema)), secret, nil)
	file := filepath.Join(dir, apikeys.AdminKeyFile)
	tok, err := kr.Bootstrap(ctx, file, "")
	if err != nil || tok == "" {
		t.Fatalf("bootstrap: %q %v", tok, err)
	}
	b, _ := os.ReadFile(file)
	if strings.TrimSpace(string(b)) != tok {
		t.Fatalf("admin.key holds %q, want %q", b, tok)
	}
	for _, f := range []string{file, filepath.Join(dir, apikeys.SecretFile)} {
		if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", f, fi.Mode())
		}
	}
	k, err := kr.Authenticate(ctx, tok)
	if err != nil || !k.Has("webhooks:manage") {
		t.Fatalf("admin key: %+v %v", k, err)
	}
	if tok2, err := kr.Bootstrap(ctx, file, ""); tok2 != "" || err != nil {
		t.Fatalf("second bootstrap created %q (%v)", tok2, err)
	}
}

// barrierStore holds every Count until n callers have counted, so that
// concurrent first starts both see an empty store, as two daemons starting
// together on one MongoDB database can.
type barrierStore struct {
	apikeys.Store
	counted *sync.WaitGroup
}

func (b barrierStore) Count(ctx context.Context) (int64, error) {
	n, err := b.Store.Count(ctx)
	b.counted.Done()
	b.counted.Wait()
	return n, err
}

// TestBootstrapRace: two daemons starting at once on one database create
// one admin key between them, not two.
func TestBootstrapRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		st := newStore(t, e)
		var counted sync.WaitGroup
		counted.Add(2)
		toks := make([]string, 2)
		errs := make([]error, 2)
		var done sync.WaitGroup
		for i := range 2 {
			done.Add(1)
			go func() {
				defer done.Done()
				kr := apikeys.NewKeyring(barrierStore{st, &counted}, []byte("shared server secret"), nil)
				toks[i], errs[i] = kr.Bootstrap(ctx, filepath.Join(t.TempDir(), apikeys.AdminKeyFile), "")
			}()
		}
		done.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if (toks[0] == "") == (toks[1] == "") {
			t.Fatalf("want exactly one daemon to create the admin key, got tokens %q", toks)
		}
		if n, err := st.Count(ctx); n != 1 || err != nil {
			t.Fatalf("keys after two concurrent first starts: %d (%v), want 1", n, err)
		}
	})
}

// countingStore counts the reads that reach the store.
type countingStore struct {
	apikeys.Store
	gets atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, id string) (*apikeys.Key, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, id)
}

// Cached answers repeated reads from memory and reads the store again
// after every write to the key, so nothing it answers is older than the
// last write.
func TestCachedReadsOnceAndForgetsOnWrite(t *testing.T) {
	ctx := context.Background()
	under := &countingStore{Store: newStore(t, storetest.SQLite)}
	kr := apikeys.NewKeyring(apikeys.Cached(under), []byte("server secret"), nil)
	key, tok, err := kr.Create(ctx, apikeys.Spec{Name: "crm", Scopes: []string{"messages:read"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := kr.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := under.gets.Load(); n != 1 {
		t.Fatalf("%d store reads for 5 authentications, want 1", n)
	}
	_, tok2, err := kr.Rotate(ctx, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Authenticate(ctx, tok); !errors.Is(err, apikeys.ErrInvalid) {
		t.Fatalf("the old secret after rotation: %v", err)
	}
	if _, err := kr.Authenticate(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if err := kr.Delete(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Authenticate(ctx, tok2); !errors.Is(err, apikeys.ErrInvalid) {
		t.Fatalf("a revoked key: %v", err)
	}
}
