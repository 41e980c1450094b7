package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The atomic server is a second in-process FerretDB, reachable only through
// a SerialProxy, for tests whose correctness rests on atomic conditional
// updates (leases, claims, fencing) and for the daemons such tests start.
// With WILDCAT_TEST_MONGODB_URI set it is that server instead. It is
// separate from the shared server so no client can reach its FerretDB
// without going through the proxy.
var (
	atomicOnce    sync.Once
	atomicEngine  *Server
	atomicProxy   *SerialProxy
	atomicDir     string
	atomicURI     string
	atomicClient  *mongo.Client
	atomicInitErr error
)

func setupAtomic() {
	atomicURI = os.Getenv(URIEnv)
	if atomicURI == "" {
		atomicDir, atomicInitErr = os.MkdirTemp("", "wildcat-storetest-atomic-")
		if atomicInitErr != nil {
			return
		}
		var log *slog.Logger
		if os.Getenv(LogEnv) != "" {
			log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		atomicEngine, atomicInitErr = StartServer(atomicDir, "127.0.0.1:0", log)
		if atomicInitErr != nil {
			return
		}
		var host string
		host, atomicInitErr = uriHost(atomicEngine.URI())
		if atomicInitErr != nil {
			return
		}
		atomicProxy, atomicInitErr = StartSerialProxy("127.0.0.1:0", host, log)
		if atomicInitErr != nil {
			return
		}
		atomicURI = "mongodb://" + atomicProxy.Addr() + "/"
	}
	atomicClient, atomicInitErr = mongo.Connect(options.Client().ApplyURI(atomicURI).SetServerSelectionTimeout(10 * time.Second))
}

func uriHost(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", uri, err)
	}
	return u.Host, nil
}

// AtomicServer returns the address of a MongoDB-compatible server on which
// each command runs atomically (the in-process FerretDB behind a
// SerialProxy, started on first use, or the server WILDCAT_TEST_MONGODB_URI
// names), for the test and for child processes it starts. Tests that rely
// on atomicity should still run ProbeAtomicUpdates against it first.
func AtomicServer(t testing.TB) (uri string) {
	t.Helper()
	atomicOnce.Do(setupAtomic)
	if atomicInitErr != nil {
		t.Fatalf("storetest: atomic server: %v", atomicInitErr)
	}
	return atomicURI
}

// AtomicDatabaseName returns a fresh database name on the atomic server,
// dropped when the test ends.
func AtomicDatabaseName(t testing.TB) string {
	t.Helper()
	AtomicServer(t)
	name := uniqueName(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = atomicClient.Database(name).Drop(ctx)
	})
	return name
}

// NewAtomicDatabase is a fresh, empty database on the atomic server.
func NewAtomicDatabase(t testing.TB) *mongo.Database {
	t.Helper()
	return atomicClient.Database(AtomicDatabaseName(t))
}

// uniqueName makes a database name from the test's name that no other test
// (in this or a parallel test binary) uses.
func uniqueName(t testing.TB) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	base := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	return fmt.Sprintf("t%s_%s", hex.EncodeToString(r[:]), base)
}

// stopAtomic is Main's cleanup of the atomic server.
func stopAtomic() {
	if atomicClient != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = atomicClient.Disconnect(ctx)
		cancel()
	}
	if atomicProxy != nil {
		atomicProxy.Close()
	}
	if atomicEngine != nil {
		atomicEngine.Stop()
	}
	if atomicDir != "" {
		_ = os.RemoveAll(atomicDir)
	}
}
