package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/poll"
)

// TestEngineIndexesIDLookups checks that a new collection gets the _id index
// in the form FerretDB's queries use, so SQLite answers a point read from
// an index instead of a table scan.
func TestEngineIndexesIDLookups(t *testing.T) {
	dir := t.TempDir()
	e, err := StartServer(dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(e.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	coll := client.Database("idx").Collection("things")
	if _, err := coll.InsertMany(ctx, []any{bson.M{"_id": "a", "n": 1}, bson.M{"_id": "b", "n": 2}}); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "idx.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = 'things'`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	// The exact form of FerretDB's point query (backends/sqlite Query).
	query := fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table)
	poll.Until(t, 30*time.Second, func() error {
		// A fresh connection: an open one may keep the schema it first read.
		fresh, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "idx.sqlite"))
		if err != nil {
			return err
		}
		defer fresh.Close()
		var id, parent, notused int
		var detail string
		if err := fresh.QueryRowContext(ctx, query, `"a"`).Scan(&id, &parent, &notused, &detail); err != nil {
			return err
		}
		if !strings.Contains(detail, "USING INDEX "+table+idIndexSuffix) {
			return errors.New("point read plan: " + detail)
		}
		return nil
	})

	// Reads, updates and deletes by _id still behave, and the unique index
	// agrees with FerretDB's own about duplicates.
	var got bson.M
	if err := coll.FindOne(ctx, bson.M{"_id": "b"}).Decode(&got); err != nil || got["n"] != int32(2) {
		t.Fatalf("find by _id: %v %v", got, err)
	}
	if _, err := coll.UpdateOne(ctx, bson.M{"_id": "a"}, bson.M{"$set": bson.M{"n": 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, bson.M{"_id": "a"}); !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("duplicate _id: %v", err)
	}
	if n, err := indexIDs(ctx, dir); err != nil || n != 0 {
		t.Fatalf("a second pass created %d indexes (%v); want an idempotent no-op", n, err)
	}
	// Dropping the collection drops our index with the table.
	if err := coll.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = ?`, table+idIndexSuffix).Scan(&left); err != nil || left != 0 {
		t.Fatalf("index left after drop: %d (%v)", left, err)
	}
}
