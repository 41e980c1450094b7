package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

var counters = Schema{Domain: "counters", FS: fstest.MapFS{
	"0001_counters.sql": {Data: []byte(`CREATE TABLE counters (id TEXT PRIMARY KEY) STRICT;`)},
}}

func openFull(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "w.db"), Schemas: []Schema{counters}, Sync: SyncFull})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func insert(db *DB, id string) chan error {
	done := make(chan error, 1)
	go func() {
		done <- db.Write(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO counters (id) VALUES (?)`, id)
			return err
		})
	}()
	return done
}

// committedRow polls the reader pool until id is there.
func committedRow(t *testing.T, db *DB, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM counters WHERE id = ?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never committed", id)
		}
		time.Sleep(time.Millisecond) // polling a condition, not a wait for it
	}
}

// TestFullSyncAnswersAfterTheFlush: at SyncFull a write is answered only
// once the WAL holding it is flushed, and the writer commits the next group
// while that flush runs (it does not hold SQLite's write lock through it).
func TestFullSyncAnswersAfterTheFlush(t *testing.T) {
	db := openFull(t)
	s := db.gc.sync
	if s == nil {
		t.Fatal("SyncFull has no syncer")
	}
	flushing, release := make(chan struct{}, 8), make(chan struct{})
	s.flush = func(f *os.File) error {
		flushing <- struct{}{}
		<-release
		return flushData(f)
	}
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	t.Cleanup(let) // before Close, which waits for the held flush
	first := insert(db, "a")
	select {
	case <-flushing:
	case err := <-first:
		t.Fatalf("answered before any flush: %v", err)
	}
	committedRow(t, db, "a")
	select {
	case err := <-first:
		t.Fatalf("answered before its flush finished: %v", err)
	default:
	}
	// The first flush is held: a second write still commits.
	second := insert(db, "b")
	committedRow(t, db, "b")
	select {
	case err := <-second:
		t.Fatalf("answered before any flush covered it: %v", err)
	default:
	}
	let()
	for _, done := range []chan error{first, second} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if st := db.Stats(); st.Syncs < 2 || st.Commits < 2 {
		t.Fatalf("stats %+v: want 2 commits, each answered by a flush", st)
	}
}

// TestFlushFailureRefusesLaterWrites: a failed flush fails the writes it
// was to answer, and every write after it, without another flush (a later
// one could succeed without the lost pages).
func TestFlushFailureRefusesLaterWrites(t *testing.T) {
	db := openFull(t)
	flushes := 0
	db.gc.sync.flush = func(*os.File) error {
		flushes++
		return errors.New("EIO")
	}
	if err := <-insert(db, "a"); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("write: %v, want ErrSyncFailed", err)
	}
	if err := <-insert(db, "b"); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("later write: %v, want ErrSyncFailed", err)
	}
	if flushes != 1 {
		t.Fatalf("%d flushes, want 1", flushes)
	}
}

// TestNormalSyncAnswersAtCommit: SyncNormal has no syncer and counts no
// flush.
func TestNormalSyncAnswersAtCommit(t *testing.T) {
	db, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "n.db"), Schemas: []Schema{counters}, Sync: SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.gc.sync != nil {
		t.Fatal("SyncNormal flushes")
	}
	if err := <-insert(db, "a"); err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); st.Syncs != 0 || st.Commits != 1 {
		t.Fatalf("stats %+v", st)
	}
}
