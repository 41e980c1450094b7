package sqlite

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
)

// ErrSyncFailed means the disk refused to flush the write-ahead log: what
// was committed since the last flush that succeeded may not be on the disk,
// and a later flush could report success without it. Every write from then
// on fails with it; restart the daemon (SQLite recovers the database from
// what did reach the disk, and nothing it had acknowledged is missing).
var ErrSyncFailed = errors.New("sqlite: flushing the write-ahead log to the disk failed")

// walSyncer makes SyncFull's commits durable off the writer. With SQLite's
// own synchronous=FULL the writer flushes the WAL inside COMMIT, and the
// next group waits for the disk while the writer holds SQLite's write
// lock. Instead the writer commits with synchronous=NORMAL (the frames are
// written, not flushed) and hands the group here: this goroutine flushes the
// WAL file and only then answers the group's writers, while the writer
// already runs the next group. One flush answers every group committed
// before it began, so under load a flush covers several groups.
//
// A write is still acknowledged only once its frames are on the disk, after
// every frame before them (a flush covers the whole file), so an answer
// never depends on a commit that could still vanish. What changes is that
// another connection may read a commit a flush before its writer hears of
// it; every effect the daemon acts on is a Write's answer, never such a
// read. NORMAL keeps SQLite's own syncs where it needs them: the WAL header
// when the log restarts, and both files around a checkpoint.
type walSyncer struct {
	path  string // the -wal file
	log   *slog.Logger
	queue chan syncedGroup
	// slots has one token per group the committer began and the syncer
	// has not answered (see committer.run).
	slots  chan struct{}
	done   chan struct{}
	failed atomic.Pointer[error]
	syncs  atomic.Uint64

	// flush flushes f; the tests replace it to hold or fail a flush.
	flush func(f *os.File) error
	file  *os.File // the log, opened at the first flush; only run touches it
}

// syncedGroup is a committed group waiting for its flush.
type syncedGroup struct {
	batch   []*writeOp
	results []error
}

func newWALSyncer(dbPath string, log *slog.Logger) *walSyncer {
	s := &walSyncer{
		path:  dbPath + "-wal",
		log:   log,
		queue: make(chan syncedGroup, 2),
		slots: make(chan struct{}, 2),
		done:  make(chan struct{}),
		flush: flushData,
	}
	go s.run()
	return s
}

// err is the sticky failure, or nil.
func (s *walSyncer) err() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// committed hands over a committed group; the syncer answers it. batch and
// results must not be reused by the caller.
func (s *walSyncer) committed(batch []*writeOp, results []error) {
	s.queue <- syncedGroup{batch, results}
}

func (s *walSyncer) run() {
	defer close(s.done)
	var groups []syncedGroup
	for g := range s.queue {
		groups = append(groups[:0], g)
	more:
		for {
			select {
			case g, ok := <-s.queue:
				if !ok {
					break more
				}
				groups = append(groups, g)
			default:
				break more
			}
		}
		err := s.sync()
		for _, g := range groups {
			answer(g.batch, g.results, err)
			<-s.slots
		}
		clear(groups)
	}
}

// sync flushes the WAL once, or reports the sticky failure.
func (s *walSyncer) sync() error {
	if err := s.err(); err != nil {
		return err
	}
	if s.file == nil {
		f, err := os.OpenFile(s.path, os.O_RDWR, 0)
		if err != nil {
			return s.fail(fmt.Errorf("open %s: %w", s.path, err))
		}
		// SQLite created the log; its directory entry must be on the disk
		// too before the first answer depends on it.
		if err := syncDir(filepath.Dir(s.path)); err != nil {
			f.Close()
			return s.fail(err)
		}
		s.file = f
	}
	if err := s.flush(s.file); err != nil {
		return s.fail(fmt.Errorf("%w: %s: %w", ErrSyncFailed, s.path, err))
	}
	s.syncs.Add(1)
	return nil
}

func (s *walSyncer) fail(err error) error {
	if !errors.Is(err, ErrSyncFailed) {
		err = fmt.Errorf("%w: %w", ErrSyncFailed, err)
	}
	s.failed.CompareAndSwap(nil, &err)
	s.log.Error("write-ahead log flush failed: writes are refused until the daemon restarts", slog.Any("error", err))
	return err
}

// close answers what is queued and closes the file; the committer has
// stopped handing groups over.
func (s *walSyncer) close() {
	close(s.queue)
	<-s.done // run has stopped: the file is this goroutine's now
	if s.file != nil {
		_ = s.file.Close()
		s.file = nil
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
