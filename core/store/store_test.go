package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestEmbeddedStartStopKeepsData opens the embedded store, writes, closes,
// reopens on the same directory and reads the document back.
func TestEmbeddedStartStopKeepsData(t *testing.T) {
	dir := t.TempDir()
	open := func() *store.Store {
		s, err := store.Open(store.Options{Database: "wildcat", DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if !s.Embedded() {
			t.Fatal("no URI given but store is not embedded")
		}
		if err := s.Ping(ctx(t)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if err := s.EnsureSchema(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Collection(store.Accounts).InsertOne(ctx(t), bson.M{"_id": "acme", "name": "Acme"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx(t)); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Ping(ctx(t)); err == nil {
		t.Fatal("Ping succeeded on a closed store")
	}
	if _, err := os.Stat(filepath.Join(dir, "store")); err != nil {
		t.Fatalf("no SQLite directory under data dir: %v", err)
	}

	s = open()
	defer s.Close(context.Background())
	var got bson.M
	if err := s.DB().Collection(store.Accounts).FindOne(ctx(t), bson.M{"_id": "acme"}).Decode(&got); err != nil {
		t.Fatalf("document lost across restart: %v", err)
	}
	if got["name"] != "Acme" {
		t.Fatalf("got %v", got)
	}
}

func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	e, err := store.StartEngine(dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.StartEngine(dir, "", nil); !errors.Is(err, store.ErrDataDirLocked) {
		t.Fatalf("second engine on one dir: got %v, want ErrDataDirLocked", err)
	}
	e.Stop()
	e2, err := store.StartEngine(dir, "", nil)
	if err != nil {
		t.Fatalf("lock not released by Stop: %v", err)
	}
	e2.Stop()
}

func TestEmbeddedListenAddress(t *testing.T) {
	addr := storetest.FreeAddr(t)
	e, err := store.StartEngine(t.TempDir(), addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	if want := "mongodb://" + addr + "/"; e.URI() != want {
		t.Fatalf("URI = %q, want %q", e.URI(), want)
	}
}

// TestEnsureSchema is idempotent and creates the design's collections and
// indexes, on the embedded engine or WILDCAT_TEST_MONGODB_URI.
func TestEnsureSchema(t *testing.T) {
	s, err := store.Open(store.Options{URI: storetest.URI(t), Database: storetest.DatabaseName(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	for range 2 {
		if err := s.EnsureSchema(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	names, err := s.DB().ListCollectionNames(ctx(t), bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, want := range []string{store.Accounts, store.Messages, store.Webhooks, store.Outbox, store.Leases, store.KV, store.Chats, store.Idempotency, store.MediaFiles, store.MediaChunks} {
		if !have[want] {
			t.Errorf("collection %s missing (have %v)", want, names)
		}
	}
	specs, err := s.DB().Collection(store.Messages).Indexes().ListSpecifications(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	idx := map[string]bool{}
	for _, sp := range specs {
		idx[sp.Name] = true
	}
	if !idx["account_chat_order"] || !idx["account_order"] {
		t.Fatalf("messages indexes = %v", idx)
	}
}

func TestDuplicateKeyIsRecognised(t *testing.T) {
	db := storetest.NewDatabase(t)
	c := db.Collection("dups")
	if _, err := c.InsertOne(ctx(t), bson.M{"_id": "a"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.InsertOne(ctx(t), bson.M{"_id": "a"})
	if !store.IsDuplicateKey(err) {
		t.Fatalf("second insert: got %v, want a duplicate-key error", err)
	}
	if store.IsDuplicateKey(mongo.ErrNoDocuments) {
		t.Fatal("ErrNoDocuments taken for a duplicate key")
	}
}

func TestWatchReportsLossAndRecovery(t *testing.T) {
	addr := storetest.FreeAddr(t)
	dir := t.TempDir()
	e, err := store.StartEngine(dir, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(store.Options{URI: e.URI(), Database: "w"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	changes := make(chan bool, 4)
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Watch(wctx, 100*time.Millisecond, func(up bool) { changes <- up })

	e.Stop()
	if up := <-changes; up {
		t.Fatal("first change after stopping the engine reported up")
	}
	e, err = store.StartEngine(dir, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	if up := <-changes; !up {
		t.Fatal("no recovery reported after restarting the engine")
	}
}
