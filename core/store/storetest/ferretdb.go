package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Server is an in-process MongoDB-compatible server for the MongoDB
// engine's tests: FerretDB v1 on SQLite files in a directory, speaking the
// MongoDB wire protocol on a TCP address. It is test infrastructure only:
// FerretDB v1 answers only {_id: x} from an index, has no transactions and
// no atomic conditional updates, so the daemon never runs on it.
type Server struct {
	dir     string
	uri     string
	cancel  context.CancelFunc
	done    chan struct{}
	indexed chan struct{} // closed when the _id indexer has stopped
	lock    *os.File

	stopOnce sync.Once
}

// ErrDataDirLocked means another process already runs a server on the
// same directory.
var ErrDataDirLocked = errors.New("data directory is in use by another server")

// StartServer starts a server on dir (created if missing). listen is a TCP
// host:port; "127.0.0.1:0" picks a free loopback port. log receives only
// FerretDB's errors. Writes use synchronous=NORMAL: tests survive a process
// crash, not a power loss.
func StartServer(dir, listen string, log *slog.Logger) (*Server, error) {
	sync := "normal"
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded store dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create embedded store dir: %w", err)
	}
	lock, err := lockDir(abs)
	if err != nil {
		return nil, err
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/?_pragma=synchronous(" + sync + ")",
		Logger:    slog.New(levelFloor{log.Handler(), slog.LevelError}),
	})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("start embedded store on %s: %w", listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Server{dir: abs, cancel: cancel, done: make(chan struct{}), indexed: make(chan struct{}), lock: lock}
	go func() {
		defer close(e.done)
		_ = f.Run(ctx)
	}()
	go func() {
		defer close(e.indexed)
		indexLoop(ctx, abs, IDIndexInterval, log)
	}()
	e.uri = f.MongoDBURI()
	return e, nil
}

// IDIndexInterval is how often the server looks for new collections that
// need the _id index FerretDB's SQLite backend lacks (see idindex.go).
var IDIndexInterval = 500 * time.Millisecond

// URI is the mongodb:// address the engine listens on.
func (e *Server) URI() string { return e.uri }

// Dir is the directory holding the SQLite files.
func (e *Server) Dir() string { return e.dir }

// Stop closes the listener, waits for open connections to end and releases
// the directory. Safe to call more than once.
func (e *Server) Stop() {
	e.stopOnce.Do(func() {
		e.cancel()
		<-e.done
		<-e.indexed
		e.lock.Close()
	})
}

// lockDir takes an exclusive advisory lock so two daemons never write the
// same SQLite files; the kernel drops it if the process dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "wildcatd.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrDataDirLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// levelFloor drops records below a minimum level.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(as), h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.min}
}
