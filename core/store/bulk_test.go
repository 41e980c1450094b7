package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// bulkCollection is a fresh collection on the tests' server, through a
// client that counts the write commands it sends.
func bulkCollection(t *testing.T) (*mongo.Collection, *atomic.Int64) {
	t.Helper()
	var writes atomic.Int64
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "insert" || e.CommandName == "update" {
			writes.Add(1)
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(storetest.URI(t)).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database(storetest.DatabaseName(t)).Collection("bulk"), &writes
}

// Writes queued together go in one round trip, and each is answered with
// its own outcome: a duplicate key fails only its insert, an update of a
// missing document is no error, the others are stored.
func TestBulkAnswersEachWriteOfOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	c, writes := bulkCollection(t)
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "taken"}}); err != nil {
		t.Fatal(err)
	}
	writes.Store(0)
	b := store.NewBulk(c)
	models := []mongo.WriteModel{
		mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: "a"}}),
		mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: "taken"}}),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: "taken"}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 1}}}}),
		mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: "b"}}),
		mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: "a"}}), // a duplicate within the batch
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: "missing"}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 1}}}}),
	}
	// Queued together, with nothing in flight: one batch.
	errs := b.DoAll(ctx, models)
	wantDup := map[int]bool{1: true, 4: true}
	for i, err := range errs {
		if wantDup[i] != store.IsDuplicateKey(err) || (!wantDup[i] && err != nil) {
			t.Errorf("write %d: %v (duplicate key expected: %v)", i, err, wantDup[i])
		}
	}
	if n := writes.Load(); n > 2 {
		t.Errorf("%d write commands for one batch of inserts and updates, want at most 2", n)
	}
	var doc struct {
		N int `bson:"n"`
	}
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "taken"}}).Decode(&doc); err != nil || doc.N != 1 {
		t.Fatalf("the update beside failing inserts: %+v, %v", doc, err)
	}
	for _, id := range []string{"a", "b"} {
		if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Err(); err != nil {
			t.Fatalf("%s not stored: %v", id, err)
		}
	}
}

// Concurrent callers are each answered right, and share round trips.
func TestBulkConcurrentCallers(t *testing.T) {
	ctx := context.Background()
	c, writes := bulkCollection(t)
	b := store.NewBulk(c)
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// Every tenth is a second insert of an earlier id.
			id := fmt.Sprint("m", i)
			if i%10 == 9 {
				id = fmt.Sprint("m", i-1)
			}
			errs[i] = b.Do(ctx, mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: id}}))
		})
	}
	wg.Wait()
	dups := 0
	for i, err := range errs {
		switch {
		case store.IsDuplicateKey(err):
			dups++
		case err != nil:
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	if dups != n/10 {
		t.Fatalf("%d duplicate keys answered, want %d", dups, n/10)
	}
	if stored, err := c.CountDocuments(ctx, bson.D{}); err != nil || stored != n-n/10 {
		t.Fatalf("%d stored, %v; want %d", stored, err, n-n/10)
	}
	t.Logf("%d inserts in %d round trips", n, writes.Load())
	// A caller whose context has ended is not written.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Do(cctx, mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: "late"}})); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
}
