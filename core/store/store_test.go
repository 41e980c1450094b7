package store_test

import (
	"context"
	"os"
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

// TestEnsureSchema is idempotent and creates the design's collections and
// indexes, on the tests' server (in-process FerretDB or WILDCAT_TEST_MONGODB_URI).
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
	for _, want := range []string{store.Accounts, store.Messages, store.Webhooks, store.Outbox, store.KV, store.Chats, store.Idempotency, store.MediaFiles, store.MediaChunks} {
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
	if !idx["account_chat_order"] || !idx["account_order"] || !idx["account_unprocessed"] || !idx["pending_stored"] || !idx["media_id"] {
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
	e, err := storetest.StartServer(dir, addr, nil)
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
	e, err = storetest.StartServer(dir, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	if up := <-changes; !up {
		t.Fatal("no recovery reported after restarting the engine")
	}
}
