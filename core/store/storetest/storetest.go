// Package storetest gives tests a fresh database on a real engine.
//
// SQLite tests get a fresh database file each (NewSQLite). MongoDB tests
// share one in-process FerretDB server (StartServer) per test binary, and
// each gets its own database, dropped when the test ends. With WILDCAT_TEST_MONGODB_URI set, the same
// tests run against that server instead (a real MongoDB or a FerretDB
// started separately).
package storetest

import (
	"context"
	"log/slog"
	"net"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

// URIEnv points the tests at an external server.
const URIEnv = "WILDCAT_TEST_MONGODB_URI"

// LogEnv, when set, prints the embedded engine's errors (e.g. a panic in a
// command handler) to stderr while debugging a test.
const LogEnv = "WILDCAT_TEST_STORE_LOG"

var (
	once    sync.Once
	engine  *Server
	tmpDir  string
	uri     string
	client  *mongo.Client
	initErr error
)

func setup() {
	uri = os.Getenv(URIEnv)
	if uri == "" {
		tmpDir, initErr = os.MkdirTemp("", "wildcat-storetest-")
		if initErr != nil {
			return
		}
		var log *slog.Logger // engine errors are silent unless asked for
		if os.Getenv(LogEnv) != "" {
			log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		// Tests do not survive power losses; they only need writes to be
		// quick and a process crash to lose nothing.
		engine, initErr = StartServer(tmpDir, "127.0.0.1:0", log)
		if initErr != nil {
			return
		}
		uri = engine.URI()
	}
	client, initErr = mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
}

// URI returns the address of the test server, starting the embedded engine
// on first use.
func URI(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if initErr != nil {
		t.Fatalf("storetest: %v", initErr)
	}
	return uri
}

// ServerLabel names the tests' MongoDB server in benchmark names and
// figures: "ferretdb-inprocess" for the in-process FerretDB, whose speed
// says nothing about MongoDB's, or "mongodb" for the server URIEnv names.
func ServerLabel() string {
	if os.Getenv(URIEnv) != "" {
		return "mongodb"
	}
	return "ferretdb-inprocess"
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// DatabaseName returns a database name no other test (in this or a parallel
// test binary) uses, and drops that database when the test ends.
func DatabaseName(t testing.TB) string {
	t.Helper()
	URI(t)
	name := uniqueName(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = client.Database(name).Drop(ctx)
	})
	return name
}

// NewDatabase is the one call most tests need: a fresh, empty database.
func NewDatabase(t testing.TB) *mongo.Database {
	t.Helper()
	return client.Database(DatabaseName(t))
}

// Main runs the tests and then stops the embedded engine and removes its
// files. Use it from TestMain: os.Exit(storetest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = client.Disconnect(ctx)
		cancel()
	}
	if engine != nil {
		engine.Stop()
	}
	if tmpDir != "" {
		_ = os.RemoveAll(tmpDir)
	}
	stopAtomic()
	return code
}

// FreeAddr returns a loopback host:port that was free a moment ago, for tests
// that must restart a server on the same address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Engine names one storage engine a conformance suite runs on.
type Engine string

const (
	// SQLite is the embedded engine: a fresh database file per test.
	SQLite Engine = "sqlite"
	// MongoDB is the server engine: the in-process FerretDB, or the server
	// WILDCAT_TEST_MONGODB_URI names; a fresh database per test.
	MongoDB Engine = "mongodb"
)

// Engines lists every engine, in the order Each runs them.
var Engines = []Engine{SQLite, MongoDB}

// Each runs f as one subtest per engine (named after it), so every
// behaviour a store promises is checked on both. Each subtest builds its
// store from the engine it is handed (NewSQLite or NewDatabase).
func Each(t *testing.T, f func(t *testing.T, e Engine)) {
	t.Helper()
	for _, e := range Engines {
		t.Run(string(e), func(t *testing.T) { f(t, e) })
	}
}

// NewSQLite opens a fresh database file in the test's temporary directory,
// migrated with the given schemas, and closes it when the test ends. Tests
// use synchronous=NORMAL: they survive a process crash, not a power loss.
func NewSQLite(t testing.TB, schemas ...sqlite.Schema) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Options{
		Path:    t.TempDir() + "/wildcat.db",
		Sync:    sqlite.SyncNormal,
		Schemas: schemas,
	})
	if err != nil {
		t.Fatalf("storetest: open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
