package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestMain builds the test plugins (plugins_test.go), then runs the tests
// on the shared test store.
// Requests through http.DefaultClient carry the admin key every test
// daemon is provisioned with (testConfig).
func TestMain(m *testing.M) {
	apikeystest.Install()
	os.Exit(withTestPlugins(func() int { return storetest.Main(m) }))
}

// testConfig runs the daemon on a free port; uri "" means the embedded engine
// in a temporary data directory.
func testConfig(t testing.TB, uri string) config.Config {
	cfg := config.Defaults()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.MongoDB.URI = uri
	cfg.HTTP.AdminKey = apikeystest.AdminToken
	// One server secret for every test daemon, as for daemons sharing a
	// database: keys stay valid when the data directory changes.
	cfg.HTTP.AuthSecret = apikeystest.ServerSecret
	if uri != "" {
		cfg.MongoDB.Database = storetest.DatabaseName(t)
	}
	return cfg
}

// EngineEnv picks the engine the daemon's behaviour tests run on: empty
// (the default) is the embedded SQLite engine users get; "mongodb" runs them
// on the MongoDB test server (in-process FerretDB, or
// WILDCAT_TEST_MONGODB_URI) instead.
const EngineEnv = "WILDCAT_TEST_DAEMON_ENGINE"

// behaviourURI is the MongoDB URI for a behaviour test's daemon: empty for
// the embedded engine unless EngineEnv says mongodb.
func behaviourURI(t testing.TB) string {
	if os.Getenv(EngineEnv) == "mongodb" {
		return storetest.URI(t)
	}
	return ""
}

// withTestKey provisions the admin key the test client sends
// (apikeystest) in a configuration not made by testConfig.
func withTestKey(cfg config.Config) config.Config {
	if cfg.HTTP.AdminKey == "" {
		cfg.HTTP.AdminKey = apikeystest.AdminToken
	}
	if cfg.HTTP.AuthSecret == "" {
		cfg.HTTP.AuthSecret = apikeystest.ServerSecret
	}
	return cfg
}

func start(t *testing.T, cfg config.Config) (*daemon.Daemon, string) {
	t.Helper()
	d, err := daemon.New(withTestKey(cfg), daemon.Options{NoSignals: true, WatchInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	return d, "http://" + d.Addr()
}

// storedMessages counts the messages stored for accountID, through every
// page of the history.
func storedMessages(t testing.TB, d *daemon.Daemon, accountID string) int {
	t.Helper()
	n := 0
	q := messages.Query{AccountID: accountID, Limit: messages.MaxLimit}
	for {
		page, err := d.Messages().History(context.Background(), q)
		if err != nil {
			t.Fatalf("history of %s: %v", accountID, err)
		}
		n += len(page.Messages)
		if page.NextCursor == "" {
			return n
		}
		q.Cursor = page.NextCursor
	}
}

func status(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func wantStatus(url string, want int) func() error {
	return func() error {
		got, err := status(url)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s answered %d, want %d", url, got, want)
		}
		return nil
	}
}

func TestEmbeddedDaemonBecomesReadyAndStops(t *testing.T) {
	cfg := testConfig(t, "")
	d, base := start(t, cfg)
	poll.Until(t, 30*time.Second, wantStatus(base+"/readyz", 200))
	if got, _ := status(base + "/healthz"); got != 200 {
		t.Fatalf("healthz %d", got)
	}
	if d.Store() != nil {
		t.Fatal("daemon without a URI connected to MongoDB")
	}
	// The embedded database is locked while the daemon runs…
	dbPath := filepath.Join(cfg.DataDir, daemon.DatabaseFile)
	if _, err := sqlite.Open(context.Background(), sqlite.Options{Path: dbPath}); !errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("second open of the running daemon's database: %v, want ErrLocked", err)
	}
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := status(base + "/healthz"); err == nil {
		t.Fatal("still serving after Shutdown")
	}
	// …and closed (its lock released) after Shutdown.
	db, err := sqlite.Open(context.Background(), sqlite.Options{Path: dbPath})
	if err != nil {
		t.Fatalf("database still held after Shutdown: %v", err)
	}
	_ = db.Close()
}

// TestReadinessFollowsTheStore stops the MongoDB-compatible server under a
// running daemon and starts it again: /readyz must go 503 and back to 200
// while the process keeps serving /healthz.
func TestReadinessFollowsTheStore(t *testing.T) {
	addr := storetest.FreeAddr(t)
	dir := t.TempDir()
	engine, err := storetest.StartServer(dir, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { engine.Stop() }()
	cfg := testConfig(t, "")
	cfg.MongoDB.URI = "mongodb://" + addr + "/"
	_, base := start(t, cfg)
	poll.Until(t, 30*time.Second, wantStatus(base+"/readyz", 200))

	engine.Stop()
	poll.Until(t, 30*time.Second, wantStatus(base+"/readyz", 503))
	if got, _ := status(base + "/healthz"); got != 200 {
		t.Fatalf("healthz %d while the store is down: the process must keep serving", got)
	}

	engine, err = storetest.StartServer(dir, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, wantStatus(base+"/readyz", 200))
}

// TestWaitsForAStoreThatIsNotUpYet starts the daemon before its database.
func TestWaitsForAStoreThatIsNotUpYet(t *testing.T) {
	addr := storetest.FreeAddr(t)
	cfg := testConfig(t, "")
	cfg.MongoDB.URI = "mongodb://" + addr + "/"
	_, base := start(t, cfg)
	poll.Until(t, 10*time.Second, wantStatus(base+"/healthz", 200))
	if got, _ := status(base + "/readyz"); got != 503 {
		t.Fatalf("readyz %d with no database", got)
	}
	engine, err := storetest.StartServer(t.TempDir(), addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Stop()
	poll.Until(t, 30*time.Second, wantStatus(base+"/readyz", 200))
}

// TestGracefulShutdownDrainsInFlightRequests holds a request open across
// Shutdown: new connections are refused at once, the held request still
// completes, and Shutdown returns only after it.
func TestGracefulShutdownDrainsInFlightRequests(t *testing.T) {
	d, err := daemon.New(testConfig(t, storetest.URI(t)), daemon.Options{NoSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	d.API().Handle("/test/slow", func(w http.ResponseWriter, r *http.Request) error {
		close(entered)
		<-release
		_, err := io.WriteString(w, "done")
		return err
	}, http.MethodGet)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.Addr()
	// The API key the request carries exists once start-up is done.
	poll.Until(t, 30*time.Second, wantStatus(base+"/readyz", 200))

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/v1/test/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- d.Shutdown(context.Background()) }()
	poll.Until(t, 10*time.Second, func() error {
		if _, err := status(base + "/healthz"); err == nil {
			return errors.New("new requests still accepted during shutdown")
		}
		return nil
	})
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) before the in-flight request finished", err)
	default:
	}
	close(release)
	if r := <-got; r.err != nil || r.body != "done" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownDeadline cuts off a request that outlives the deadline and still
// closes the store.
func TestShutdownDeadline(t *testing.T) {
	d, err := daemon.New(testConfig(t, storetest.URI(t)), daemon.Options{NoSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	d.API().Handle("/test/stuck", func(w http.ResponseWriter, r *http.Request) error {
		close(entered)
		<-release
		return nil
	}, http.MethodGet)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	// The API key the request carries exists once start-up is done.
	poll.Until(t, 30*time.Second, wantStatus("http://"+d.Addr()+"/readyz", 200))
	go func() { _, _ = status("http://" + d.Addr() + "/v1/test/stuck") }()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = d.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown past its deadline returned %v, want DeadlineExceeded", err)
	}
	if err := d.Store().Ping(context.Background()); err == nil {
		t.Fatal("store left open after a forced shutdown")
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	cfg := testConfig(t, storetest.URI(t))
	cfg.ShutdownTimeout = 5 * time.Second
	d, err := daemon.New(cfg, daemon.Options{NoSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	poll.Until(t, 30*time.Second, func() error {
		if d.Addr() == "" {
			return errors.New("not listening yet")
		}
		return wantStatus("http://"+d.Addr()+"/readyz", 200)()
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStartFailsOnBusyAddress(t *testing.T) {
	d1, _ := start(t, testConfig(t, storetest.URI(t)))
	cfg := testConfig(t, storetest.URI(t))
	cfg.HTTP.Addr = d1.Addr()
	d2, err := daemon.New(cfg, daemon.Options{NoSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Shutdown(context.Background())
	if err := d2.Start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a busy address: %v", err)
	}
}
