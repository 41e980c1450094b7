// Package sqlite is the embedded engine's database: one SQLite file in WAL
// mode under the data directory, one writer connection whose transactions
// are group-committed, a pool of readers, and versioned migrations that each
// domain package ships for its own tables.
//
// It knows nothing about messages or outboxes: the packages that keep state
// hold their SQL beside their MongoDB code and hand their Schema to Open.
// What this package guarantees them:
//
//   - Write runs a function inside a transaction shared with other writers
//     that arrived at the same moment (group commit), isolated from them by
//     a savepoint, and returns only once that transaction is durable (at the
//     configured Sync level) — or with the function's own error, in which
//     case none of its statements remain.
//   - Reader is a pool of read-only connections that see every commit that
//     Write has returned for.
//   - A database written by a newer build is refused, never modified.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	sqlitedrv "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Sync is how commits reach the disk.
type Sync string

const (
	// SyncFull flushes every commit to the disk before answering its
	// writes: a stored event survives a power loss. The flush runs beside
	// the writer (see walSyncer), not inside SQLite's COMMIT.
	SyncFull Sync = "full"
	// SyncNormal leaves commits in the operating system's cache until a
	// WAL checkpoint (synchronous=NORMAL): a stored event survives a crash or
	// kill -9 of the daemon, but not necessarily of the machine.
	SyncNormal Sync = "normal"
)

// ErrLocked means another process has the database open. Stop it or choose
// another data_dir.
var ErrLocked = errors.New("database is in use by another wildcatd")

// ErrNewerSchema means the database was written by a newer Wildcat. Run that
// version (or a newer one); this build leaves the file untouched.
var ErrNewerSchema = errors.New("database was written by a newer Wildcat")

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("sqlite: database closed")

// Options says which file to open and how.
type Options struct {
	// Path of the database file; its directory is created if missing.
	Path string
	// Sync is the durability of a commit; empty means SyncFull.
	Sync Sync
	// Schemas are migrated at open, in order.
	Schemas []Schema
	// Readers caps the read-only connections; 0 means max(4, 2×GOMAXPROCS).
	Readers int
	// MaxBatch caps how many Write calls share one transaction; 0 means 256.
	MaxBatch int
	// CheckpointInterval is how often, at most, committed WAL frames are
	// copied into the database file (off the writer); 0 means 200 ms.
	CheckpointInterval time.Duration
	// Logger for the engine; nil discards.
	Logger *slog.Logger
}

// DB is an open database.
type DB struct {
	path   string
	sync   Sync
	writer *sql.DB // exactly one connection: SQLite has one writer at a time
	reader *sql.DB
	lock   *os.File
	log    *slog.Logger
	gc     *committer
	ckpt   *checkpointer
	stmts  sync.Map // query → *sql.Stmt prepared on the writer (see Stmt)
	reads  sync.Map // query → *sql.Stmt on the reader pool (see Read)
	shared sync.Map // see Shared

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database, takes an exclusive lock on
// it for this process, and migrates opts.Schemas.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Path == "" {
		return nil, errors.New("sqlite: no path")
	}
	abs, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite path %s: %w", opts.Path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lock, err := lockFile(abs + ".lock")
	if err != nil {
		return nil, err
	}
	db := &DB{path: abs, lock: lock, log: log}
	sync := opts.Sync
	if sync != SyncNormal {
		sync = SyncFull
	}
	db.sync = sync
	// The writer never checkpoints: the checkpointer does, off the path
	// every write waits on (checkpoint.go). Nor does it flush its commits:
	// at SyncFull the syncer does (walsync.go).
	db.writer, err = sql.Open("sqlite", dsn(abs, SyncNormal, false, "wal_autocheckpoint(0)"))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	// One connection runs every write transaction (only the committer
	// begins them); the second lets Stmt prepare a statement while the
	// first is inside a transaction. SQLite would serialise writers anyway.
	db.writer.SetMaxOpenConns(2)
	db.writer.SetMaxIdleConns(2)
	db.writer.SetConnMaxLifetime(0)
	db.writer.SetConnMaxIdleTime(0)
	// The first statement on the writer creates the file and switches it
	// to WAL before any reader opens it.
	if err := db.writer.PingContext(ctx); err != nil {
		db.closeHandles()
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	readers := opts.Readers
	if readers <= 0 {
		readers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	db.reader, err = sql.Open("sqlite", dsn(abs, sync, true))
	if err != nil {
		db.closeHandles()
		return nil, fmt.Errorf("open %s for reading: %w", abs, err)
	}
	db.reader.SetMaxOpenConns(readers)
	db.reader.SetMaxIdleConns(readers)
	if err := migrate(ctx, db.writer, opts.Schemas, log); err != nil {
		db.closeHandles()
		return nil, err
	}
	batch := opts.MaxBatch
	if batch <= 0 {
		batch = 256
	}
	ckptDB, err := sql.Open("sqlite", dsn(abs, sync, false))
	if err != nil {
		db.closeHandles()
		return nil, fmt.Errorf("open %s for checkpoints: %w", abs, err)
	}
	interval := opts.CheckpointInterval
	if interval <= 0 {
		interval = defaultCheckpointInterval
	}
	db.ckpt = newCheckpointer(ckptDB, interval, log)
	db.gc = newCommitter(db.writer, func(tx *sql.Tx, query string) error {
		_, err := db.Exec(context.Background(), tx, query)
		return err
	}, batch, log)
	db.gc.afterCommit = db.ckpt.committed
	if sync == SyncFull {
		db.gc.sync = newWALSyncer(abs, log)
	}
	go db.gc.run()
	return db, nil
}

// dsn builds modernc's connection string. Every connection gets the same
// pragmas: WAL, the sync level, a busy timeout (a reader never blocks the
// writer in WAL mode, but checkpoints and whatsmeow's own connections may
// briefly), foreign keys on (whatsmeow's sqlstore relies on them).
func dsn(path string, sync Sync, readOnly bool, pragmas ...string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+string(sync)+")")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		// Take the write lock at BEGIN, not at the first write: a
		// transaction that reads then writes can then never fail with
		// SQLITE_BUSY half-way.
		q.Set("_txlock", "immediate")
	}
	return "file:" + uriPath.Replace(path) + "?" + q.Encode()
}

// uriPath escapes what SQLite's URI filenames give a meaning to (a query,
// a fragment, an escape), so that a data directory named e.g. "a#1" opens
// that file and not "a".
var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Reader is the read-only pool. Its connections see every commit Write has
// returned for.
func (db *DB) Reader() *sql.DB { return db.reader }

// Conn opens another read-write handle on the same file, with the same
// durability, for code that runs its own transactions (whatsmeow's
// sqlstore). SQLite serialises its writes with the group committer's
// through the file lock and busy timeout.
func (db *DB) Conn() (*sql.DB, error) {
	h, err := sql.Open("sqlite", dsn(db.path, db.sync, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", db.path, err)
	}
	return h, nil
}

// Write runs fn in a transaction shared with the other writers of the same
// moment and returns once that transaction has committed (durably, at the
// database's Sync level). fn's statements are isolated by a savepoint: when
// fn returns an error, or panics, they are rolled back and the others'
// commit anyway. fn must not call Write itself, nor keep tx after it returns,
// and it may run more than once — when a write of its group fails, the group
// is rolled back and run again — so it must set, not accumulate, what it
// hands back (only its last run's statements commit).
//
// ctx only bounds the wait to be taken up: once fn has run, Write waits for
// the commit even if ctx ends, so that its answer is always the truth.
func (db *DB) Write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.gc.write(ctx, fn)
}

// WriteAfter queues fn as Write does, behind every write queued before it,
// and returns without waiting: then is called with what Write would have
// returned, on the committer's goroutine (it must not block or Write).
// Because groups commit in order, a Write queued after it returns only
// once fn's statements are committed too (or failed): a caller that acts
// on fn's effect later through a Write of its own needs no wait of its
// own. The error is the queueing's (closed, ctx ended, a failed flush).
// ctx only bounds the queueing; fn runs even if it ends afterwards.
func (db *DB) WriteAfter(ctx context.Context, fn func(tx *sql.Tx) error, then func(error)) error {
	if then == nil {
		then = func(error) {}
	}
	op := &writeOp{ctx: context.WithoutCancel(ctx), fn: fn, then: then}
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.gc.enqueue(op)
}

// Barrier returns once every write queued before it (WriteAfter's too)
// has been answered.
func (db *DB) Barrier(ctx context.Context) error {
	return db.Write(ctx, func(*sql.Tx) error { return nil })
}

// Shared returns the value kept with this database under key, made by
// make on first use: state that belongs to the database rather than to
// whichever store type opened it (a cache of its rows that every store on
// it must share to stay coherent).
func (db *DB) Shared(key any, make func() any) any {
	if v, ok := db.shared.Load(key); ok {
		return v
	}
	v, _ := db.shared.LoadOrStore(key, make())
	return v
}

// BeforeCommit makes fn part of every group commit from now on: it runs in
// the group's transaction after the group's writes, and a failure fails the
// whole group (no write of it is stored). It is for derived state that must
// commit with the rows it derives from but is far cheaper done once per
// group than once per write (the full-text index: FTS5 writes a segment
// per statement). Hooks run in the order they were set; setting a name
// again replaces its hook. fn must be idempotent over what is not yet
// committed: like a write, it may run more than once per group.
func (db *DB) BeforeCommit(name string, fn func(ctx context.Context, tx *sql.Tx) error) {
	db.gc.setHook(name, fn)
}

// Stats counts the group commits so far and the writes they carried (their
// ratio is the average group size, what batching saves over one commit per
// write), and the groups run a second time, with savepoints, because one of
// their writes failed.
type Stats struct {
	Commits, Writes, Reruns uint64
	// Syncs: flushes of the WAL that answered commits (SyncFull); one
	// covers every group committed before it began.
	Syncs uint64
	// Checkpoints: WAL checkpoints the checkpointer ran.
	Checkpoints uint64
}

// Stats reports the committer's and the checkpointer's counters.
func (db *DB) Stats() Stats {
	st := Stats{Commits: db.gc.commits.Load(), Writes: db.gc.writes.Load(), Reruns: db.gc.reruns.Load(),
		Checkpoints: db.ckpt.runs.Load()}
	if db.gc.sync != nil {
		st.Syncs = db.gc.sync.syncs.Load()
	}
	return st
}

// Exec, Query and QueryRow run query inside tx (a Write's) as tx's own
// methods do, but the statement is parsed once and kept rather than once per
// call: on the hot paths (a message insert, a claim) SQLite's parser is a
// large part of the cost. A query that does not prepare runs as tx's own, so
// its error shows as usual.
//
// ctx's end does not interrupt the statement (groupStatement): the write's
// context is checked before its function runs, and from then on the write
// is part of a transaction its group shares.
func (db *DB) Exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	ctx = groupStatement(ctx)
	if s := db.stmt(ctx, tx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// Query is Exec for statements that return rows.
func (db *DB) Query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	ctx = groupStatement(ctx)
	if s := db.stmt(ctx, tx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}

// QueryRow is Exec for statements that return one row.
func (db *DB) QueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	ctx = groupStatement(ctx)
	if s := db.stmt(ctx, tx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// groupStatement is ctx without its cancellation, for a statement of a
// group commit. Interrupting one would fail its write's function, and so
// roll back the whole group and run it again with savepoints, for a write
// whose caller has gone; and the driver watches a cancellable context with a
// goroutine of its own per statement (modernc.org/sqlite interruptOnDone),
// a cost every statement of every group paid.
func groupStatement(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// Read and ReadRow run a read-only query on the reader pool as Reader's
// methods do, with the statement kept prepared (database/sql prepares it
// once per pooled connection): a point read on a hot path (a rule's kv
// get) otherwise spends most of its time in SQLite's parser.
func (db *DB) Read(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := db.readStmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return db.reader.QueryContext(ctx, query, args...)
}

// ReadRow is Read for queries that return one row.
func (db *DB) ReadRow(ctx context.Context, query string, args ...any) *sql.Row {
	if s := db.readStmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return db.reader.QueryRowContext(ctx, query, args...)
}

func (db *DB) readStmt(ctx context.Context, query string) *sql.Stmt {
	if s, ok := db.reads.Load(query); ok {
		return s.(*sql.Stmt)
	}
	p, err := db.reader.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := db.reads.LoadOrStore(query, p); loaded {
		_ = p.Close()
		return prev.(*sql.Stmt)
	}
	return p
}

// stmt is query's kept statement bound to tx, or nil when it does not
// prepare. The writer's second connection prepares it while the first is
// inside tx; tx then prepares it once more on its own connection, and
// database/sql keeps both.
func (db *DB) stmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	s, ok := db.stmts.Load(query)
	if !ok {
		p, err := db.writer.PrepareContext(ctx, query)
		if err != nil {
			return nil
		}
		if prev, loaded := db.stmts.LoadOrStore(query, p); loaded {
			_ = p.Close()
			s = prev
		} else {
			s = p
		}
	}
	return tx.StmtContext(ctx, s.(*sql.Stmt))
}

// Close waits for queued writes, then closes every connection and releases
// the lock. Safe to call more than once.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		if db.gc != nil {
			db.gc.close()
		}
		if db.ckpt != nil {
			db.ckpt.close()
		}
		for _, m := range []*sync.Map{&db.stmts, &db.reads} {
			m.Range(func(_, s any) bool {
				_ = s.(*sql.Stmt).Close()
				return true
			})
		}
		// A clean close checkpoints the WAL into the main file, so a
		// copied database file is complete without its -wal.
		if _, err := db.writer.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			db.log.Warn("checkpoint at close failed", slog.Any("error", err))
		}
		db.closeErr = db.closeHandles()
	})
	return db.closeErr
}

func (db *DB) closeHandles() error {
	var errs []error
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
	}
	if db.writer != nil {
		errs = append(errs, db.writer.Close())
	}
	if db.lock != nil {
		errs = append(errs, db.lock.Close())
	}
	return errors.Join(errs...)
}

// lockFile takes an exclusive advisory lock so two daemons never write the
// same database; the kernel drops it when the process dies, so a kill -9
// leaves nothing to clean up.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// IsConstraint reports a UNIQUE or PRIMARY KEY violation: for idempotent
// inserts with a deterministic key it means "already stored".
func IsConstraint(err error) bool {
	var se *sqlitedrv.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return true
	}
	return false
}

// Vacuum rewrites the database file and empties the WAL, so that the old
// contents of rows since overwritten or deleted (plaintext before
// re-encryption) are gone from the disk, not just unreferenced.
func (db *DB) Vacuum(ctx context.Context) error {
	// What was queued before (WriteAfter's writes) is part of what it
	// compacts.
	if err := db.Barrier(ctx); err != nil {
		return fmt.Errorf("vacuum %s: %w", db.path, err)
	}
	h, err := db.Conn()
	if err != nil {
		return err
	}
	defer h.Close()
	if _, err := h.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("vacuum %s: %w", db.path, err)
	}
	// The checkpointer may be running a checkpoint of its own: then this
	// one reports busy without truncating, and the old pages would stay
	// in the WAL. Again until it completes.
	for {
		var busy, log, done int
		if err := h.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &done); err != nil {
			return fmt.Errorf("vacuum %s: checkpoint: %w", db.path, err)
		}
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vacuum %s: checkpoint: %w", db.path, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
