package authstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	wcstore "github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// testDB is one fresh database on an engine, in which tests open the auth
// state of accounts as the driver does.
type testDB struct {
	e     storetest.Engine
	mongo *mongo.Database  // MongoDB
	file  *sqlite.DB       // SQLite: the database file…
	sql   *SQLite          // …and whatsmeow's sqlstore on it
	users int              // SQLite: phone numbers handed out by store
	keys  *sealing.Keyring // what accounts seal with (sealed_test.go)
}

func newTestDB(t *testing.T, e storetest.Engine) (*testDB, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	d := &testDB{e: e}
	switch e {
	case storetest.MongoDB:
		d.mongo = storetest.NewDatabase(t)
	case storetest.SQLite:
		d.file = storetest.NewSQLite(t, SQLiteSchema)
		d.sql = openSQLiteAuth(t, d.file)
	default:
		t.Fatalf("unknown engine %q", e)
	}
	return d, ctx
}

// openSQLiteAuth opens whatsmeow's sqlstore on the database file, as the
// daemon does at start; it is closed (before the file) when the test ends.
func openSQLiteAuth(t *testing.T, file *sqlite.DB) *SQLite {
	t.Helper()
	h, err := file.Conn()
	must(t, err)
	s, err := OpenSQLite(t.Context(), h, nil)
	must(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// reopen is the same database as a restarted daemon (SQLite) or another
// daemon (MongoDB) sees it: nothing is shared in memory.
func (d *testDB) reopen(t *testing.T) *testDB {
	t.Helper()
	again := *d
	if d.e == storetest.SQLite {
		again.sql = openSQLiteAuth(t, d.file)
		again.sql.Seal(d.keys)
	}
	return &again
}

// testAccount is one account's auth state as the driver holds it
// (whatsapp.DeviceStore) and as whatsmeow sees it (the device container).
type testAccount interface {
	GetDevice(ctx context.Context) (*store.Device, error)
	Delete(ctx context.Context) error
	store.DeviceContainer
}

func (d *testDB) account(accountID string) testAccount {
	if d.e == storetest.SQLite {
		return d.sql.Seal(d.keys).Account(accountID)
	}
	return New(d.mongo, accountID, nil).Seal(d.keys)
}

// lids is the LID map shared by all accounts.
func (d *testDB) lids() store.LIDStore {
	if d.e == storetest.SQLite {
		return d.sql.LIDs()
	}
	return NewLIDMap(d.mongo)
}

// testStore is one account's session-specific stores.
type testStore struct {
	store.AllSessionSpecificStores
	preKeys store.PreKeyStore // the device's, not sqlstore's (SQLite)
	lids    store.LIDStore
	db      *testDB
	account string
}

func (s *testStore) GetOrGenPreKeys(ctx context.Context, count uint32) ([]*keys.PreKey, error) {
	return s.preKeys.GetOrGenPreKeys(ctx, count)
}
func (s *testStore) GenOnePreKey(ctx context.Context) (*keys.PreKey, error) {
	return s.preKeys.GenOnePreKey(ctx)
}
func (s *testStore) GetPreKey(ctx context.Context, id uint32) (*keys.PreKey, error) {
	return s.preKeys.GetPreKey(ctx, id)
}
func (s *testStore) RemovePreKey(ctx context.Context, id uint32) error {
	return s.preKeys.RemovePreKey(ctx, id)
}
func (s *testStore) MarkPreKeysAsUploaded(ctx context.Context, upToID uint32) error {
	return s.preKeys.MarkPreKeysAsUploaded(ctx, upToID)
}
func (s *testStore) UploadedPreKeyCount(ctx context.Context) (int, error) {
	return s.preKeys.UploadedPreKeyCount(ctx)
}

// newTestStore returns the stores of a fresh account in a fresh database.
func newTestStore(t *testing.T, e storetest.Engine) (*testStore, context.Context) {
	t.Helper()
	d, ctx := newTestDB(t, e)
	return d.store(t, "acct"), ctx
}

// store returns the stores of accountID. On SQLite they belong to a paired
// device (whatsmeow's tables refer to the device record), which this
// stores first if needed; MongoDB needs no device record.
func (d *testDB) store(t *testing.T, accountID string) *testStore {
	t.Helper()
	ts := &testStore{lids: d.lids(), db: d, account: accountID}
	if d.e == storetest.MongoDB {
		ts.AllSessionSpecificStores = New(d.mongo, accountID, nil).Seal(d.keys).Store()
		ts.preKeys = ts.AllSessionSpecificStores
		return ts
	}
	acct := d.account(accountID)
	dev, err := acct.GetDevice(t.Context())
	must(t, err)
	if dev.ID == nil {
		d.users++
		dev = pairedAs(t, acct, fmt.Sprint(15550000000+d.users))
	}
	ts.AllSessionSpecificStores = dev.Identities.(store.AllSessionSpecificStores)
	ts.preKeys = dev.PreKeys
	return ts
}

// mongoStore is the MongoDB implementation behind s, for checks of how it
// stores documents.
func (s *testStore) mongoStore() *Store { return s.AllSessionSpecificStores.(*Store) }

func pnJID(user string) types.JID  { return types.NewJID(user, types.DefaultUserServer) }
func lidJID(user string) types.JID { return types.NewJID(user, types.HiddenUserServer) }

func key32(b byte) [32]byte { return [32]byte(bytes.Repeat([]byte{b}, 32)) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sqlTables maps a document kind of the MongoDB store to sqlstore's table
// and the column naming the device.
var sqlTables = map[string][2]string{
	kindIdentity:    {"whatsmeow_identity_keys", "our_jid"},
	kindSession:     {"whatsmeow_sessions", "our_jid"},
	kindPreKey:      {"whatsapp_pre_keys", "jid"},
	kindDeviceKeys:  {"whatsapp_device_keys", "jid"},
	kindSenderKey:   {"whatsmeow_sender_keys", "our_jid"},
	kindAppStateKey: {"whatsmeow_app_state_sync_keys", "jid"},
	kindAppState:    {"whatsmeow_app_state_version", "jid"},
	kindAppStateMAC: {"whatsmeow_app_state_mutation_macs", "jid"},
	kindContact:     {"whatsmeow_contacts", "our_jid"},
	kindChat:        {"whatsmeow_chat_settings", "our_jid"},
	kindMsgSecret:   {"whatsmeow_message_secrets", "our_jid"},
	kindPrivacy:     {"whatsmeow_privacy_tokens", "our_jid"},
	kindEventBuf:    {"whatsmeow_event_buffer", "our_jid"},
	kindDevice:      {"whatsmeow_device", "jid"},
}

// kindDeviceKeys is the SQLite table of the device's private keys (on
// MongoDB they are in the device document).
const kindDeviceKeys = "devicekeys"

// countKind counts the stored items of one kind of the store's account.
func countKind(t *testing.T, ctx context.Context, s *testStore, kind string) int {
	t.Helper()
	if s.db.e == storetest.MongoDB {
		n, err := s.mongoStore().coll.CountDocuments(ctx, bson.D{{Key: "kind", Value: kind}})
		must(t, err)
		return int(n)
	}
	jid, found, err := s.db.sql.Account(s.account).jid(ctx)
	must(t, err)
	if !found {
		return 0
	}
	return s.db.countSQL(t, kind, jid.String())
}

func (d *testDB) countSQL(t *testing.T, kind, jid string) int {
	t.Helper()
	tbl, ok := sqlTables[kind]
	if !ok {
		t.Fatalf("no sqlstore table for kind %q", kind)
	}
	var n int
	must(t, d.file.Reader().QueryRowContext(t.Context(),
		"SELECT count(*) FROM "+tbl[0]+" WHERE "+tbl[1]+" = ?", jid).Scan(&n))
	return n
}

// stateCount counts everything stored for an account whose device is jid:
// the documents of its collection (MongoDB) or the rows of every sqlstore
// table under that device (SQLite).
func (d *testDB) stateCount(t *testing.T, accountID string, jid types.JID) int {
	t.Helper()
	if d.e == storetest.MongoDB {
		n, err := d.mongo.Collection(wcstore.AuthCollection(accountID)).CountDocuments(t.Context(), bson.D{})
		must(t, err)
		return int(n)
	}
	n := 0
	for kind := range sqlTables {
		n += d.countSQL(t, kind, jid.String())
	}
	var mapped int
	must(t, d.file.Reader().QueryRowContext(t.Context(),
		"SELECT count(*) FROM whatsapp_devices WHERE account_id = ? OR jid = ?", accountID, jid.String()).Scan(&mapped))
	return n + mapped
}

// TestAccountsIsolated checks that two accounts in one database never see
// each other's state, and, on MongoDB, that the collection is the one the
// design names.
func TestAccountsIsolated(t *testing.T) { storetest.Each(t, testAccountsIsolated) }

func testAccountsIsolated(t *testing.T, e storetest.Engine) {
	d, ctx := newTestDB(t, e)
	a, b := d.store(t, "alice"), d.store(t, "bob")
	if e == storetest.MongoDB {
		if got, want := a.mongoStore().coll.Name(), wcstore.AuthCollection("alice"); got != want {
			t.Fatalf("collection %q, want %q", got, want)
		}
	}
	must(t, a.PutSession(ctx, "1:0", []byte("a")))
	must(t, a.PutIdentity(ctx, "1:0", key32(1)))
	_, err := a.GetOrGenPreKeys(ctx, 3)
	must(t, err)

	if got, _ := b.GetSession(ctx, "1:0"); got != nil {
		t.Fatalf("bob sees alice's session %q", got)
	}
	if ok, _ := b.IsTrustedIdentity(ctx, "1:0", key32(9)); !ok {
		t.Fatal("bob sees alice's identity")
	}
	ks, err := b.GetOrGenPreKeys(ctx, 3)
	must(t, err)
	if ks[0].KeyID != 1 {
		t.Fatalf("bob's first pre-key id %d, want 1 (own counter)", ks[0].KeyID)
	}
}

// TestConcurrentWriters runs many goroutines writing sessions, identities,
// sender keys and pre-keys at once; every write must land exactly once.
func TestConcurrentWriters(t *testing.T) { storetest.Each(t, testConcurrentWriters) }

func testConcurrentWriters(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
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
func TestConcurrentGetOrGenPreKeys(t *testing.T) { storetest.Each(t, testConcurrentGetOrGenPreKeys) }

func testConcurrentGetOrGenPreKeys(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
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
// MongoDB only: on the embedded engine one daemon owns the database file.
func TestPreKeysTwoDaemons(t *testing.T) {
	t.Run("clear", func(t *testing.T) { testPreKeysTwoDaemons(t, nil) })
	t.Run("sealed", func(t *testing.T) { testPreKeysTwoDaemons(t, sealtest.Ring(t, "", sealtest.Key(t, "k1"))) })
}

func testPreKeysTwoDaemons(t *testing.T, keys *sealing.Keyring) {
	d, ctx := newTestDB(t, storetest.MongoDB)
	a, b := New(d.mongo, "acct", nil).Seal(keys), New(d.mongo, "acct", nil).Seal(keys)
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
	if n := countKind(t, ctx, d.store(t, "acct"), kindPreKey); n != 24 {
		t.Fatalf("%d pre-keys stored, want 24", n)
	}
}

// TestPreKeyIDTakenByAnotherDaemon: a batch of pre-keys that runs into an
// id another daemon took keeps the keys it stored before the collision
// and goes on past it, so every key returned is stored as returned (also
// sealed, where the stored bytes are not the key's). MongoDB only.
func TestPreKeyIDTakenByAnotherDaemon(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys *sealing.Keyring
	}{{"clear", nil}, {"sealed", sealtest.Ring(t, "", sealtest.Key(t, "k1"))}} {
		t.Run(tc.name, func(t *testing.T) {
			d, ctx := newTestDB(t, storetest.MongoDB)
			c := New(d.mongo, "acct", nil).Seal(tc.keys)
			// Another daemon stored pre-key 3 and has not advanced the
			// counter yet.
			_, err := c.Store().coll.InsertOne(ctx, bson.D{{Key: "_id", Value: preKeyID(3)}, {Key: "kind", Value: kindPreKey},
				{Key: "keyId", Value: int64(3)}, {Key: "key", Value: bytes.Repeat([]byte{7}, 32)}, {Key: "uploaded", Value: true}})
			must(t, err)
			ks, err := c.Store().GetOrGenPreKeys(ctx, 5)
			must(t, err)
			var ids []uint32
			for _, k := range ks {
				ids = append(ids, k.KeyID)
				got, err := c.Store().GetPreKey(ctx, k.KeyID)
				if err != nil || got == nil || *got.Priv != *k.Priv {
					t.Fatalf("pre-key %d returned but stored as %v, %v", k.KeyID, got, err)
				}
			}
			if fmt.Sprint(ids) != "[1 2 4 5 6]" && fmt.Sprint(ids) != "[1 2 6 7 8]" {
				t.Fatalf("ids %v, want 1 and 2 kept and the rest past 3", ids)
			}
			if n := countKind(t, ctx, &testStore{AllSessionSpecificStores: c.Store(), db: d}, kindPreKey); n != 6 {
				t.Fatalf("%d pre-keys stored, want the 5 returned and the other daemon's", n)
			}
		})
	}
}
