package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

var things = sqlite.Schema{Domain: "things", FS: fstest.MapFS{
	"0001_things.sql": {Data: []byte(`CREATE TABLE things (id TEXT PRIMARY KEY, n INTEGER NOT NULL) STRICT;`)},
}}

func open(t *testing.T, path string, schemas ...sqlite.Schema) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, Schemas: schemas, Sync: sqlite.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func count(t *testing.T, db *sqlite.DB) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRow(`SELECT COUNT(*) FROM things`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Concurrent writers share transactions, and each is answered only with its
// own outcome: a failing write undoes its own statements and nobody else's.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "w.db"), things)
	ctx := context.Background()
	const writers = 400
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Write(ctx, func(tx *sql.Tx) error {
				if _, err := tx.Exec(`INSERT INTO things (id, n) VALUES (?, ?)`, fmt.Sprint("t", i), i); err != nil {
					return err
				}
				if i%10 == 0 {
					return fmt.Errorf("refused %d", i)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%10 == 0) != (err != nil) {
			t.Fatalf("writer %d: err %v", i, err)
		}
	}
	if got := count(t, db); got != writers-writers/10 {
		t.Fatalf("%d rows stored, want %d", got, writers-writers/10)
	}
	var refused int
	if err := db.Reader().QueryRow(`SELECT COUNT(*) FROM things WHERE n % 10 = 0`).Scan(&refused); err != nil {
		t.Fatal(err)
	}
	if refused != 0 {
		t.Fatalf("%d rows of refused writes were committed", refused)
	}
}

func TestWritePanicRollsBackOnlyItself(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "p.db"), things)
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO things VALUES ('a', 1)`); err != nil {
			return err
		}
		panic("boom")
	})
	if err == nil {
		t.Fatal("a panicking write reported success")
	}
	if err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO things VALUES ('b', 2)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := count(t, db); got != 1 {
		t.Fatalf("%d rows, want only the second write's", got)
	}
}

func TestIsConstraint(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "c.db"), things)
	ins := func(tx *sql.Tx) error { _, err := tx.Exec(`INSERT INTO things VALUES ('a', 1)`); return err }
	if err := db.Write(context.Background(), ins); err != nil {
		t.Fatal(err)
	}
	err := db.Write(context.Background(), ins)
	if !sqlite.IsConstraint(err) {
		t.Fatalf("duplicate insert: %v is not a constraint error", err)
	}
	if sqlite.IsConstraint(errors.New("other")) {
		t.Fatal("a plain error is a constraint error")
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	open(t, path)
	_, err := sqlite.Open(context.Background(), sqlite.Options{Path: path})
	if !errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

// TestPathsWithURICharacters: a data directory whose name holds a
// character SQLite's URI filenames give a meaning to opens the file in it,
// not a file named by the part before that character.
func TestPathsWithURICharacters(t *testing.T) {
	for _, name := range []string{"a#1", "b?x=y", "c%20d", "e&f"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "w.db")
			db := open(t, path, things)
			if err := db.Write(context.Background(), func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO things VALUES ('x', 1)`)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the database is not where it was asked for: %v", err)
			}
			if db.Path() != path || count(t, db) != 1 {
				t.Fatalf("path %q, %d things", db.Path(), count(t, db))
			}
		})
	}
}

// Migrations apply once, survive a reopen, and a database that a newer
// build migrated further is refused without being touched.
func TestMigrationsAndNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	v2 := sqlite.Schema{Domain: "things", FS: fstest.MapFS{
		"0001_things.sql": things.FS.(fstest.MapFS)["0001_things.sql"],
		"0002_label.sql":  {Data: []byte(`ALTER TABLE things ADD COLUMN label TEXT;`)},
	}}
	db, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, Schemas: []sqlite.Schema{v2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO things (id, n, label) VALUES ('a', 1, 'x')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// Reopening with the same schema applies nothing again.
	db = open(t, path, v2)
	if got := count(t, db); got != 1 {
		t.Fatalf("%d rows after reopen", got)
	}
	db.Close()

	_, err = sqlite.Open(context.Background(), sqlite.Options{Path: path, Schemas: []sqlite.Schema{things}})
	if !errors.Is(err, sqlite.ErrNewerSchema) {
		t.Fatalf("older build opening a newer database: %v, want ErrNewerSchema", err)
	}
	db = open(t, path, v2)
	var label string
	if err := db.Reader().QueryRow(`SELECT label FROM things WHERE id = 'a'`).Scan(&label); err != nil || label != "x" {
		t.Fatalf("row after refused open: %q, %v", label, err)
	}
}

func TestMigrationNamesAreChecked(t *testing.T) {
	bad := sqlite.Schema{Domain: "bad", FS: fstest.MapFS{"0002_gap.sql": {Data: []byte(`SELECT 1;`)}}}
	_, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "b.db"), Schemas: []sqlite.Schema{bad}})
	if err == nil {
		t.Fatal("a schema starting at version 2 was accepted")
	}
}

// Kept statements run inside group commits like tx's own, and a statement
// that does not parse reports its error where it is used.
func TestKeptStatements(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "s.db"), things)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if err := db.Write(ctx, func(tx *sql.Tx) error {
				_, err := db.Exec(ctx, tx, `INSERT INTO things (id, n) VALUES (?, ?)`, fmt.Sprint("k", i), i)
				return err
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := count(t, db); got != 200 {
		t.Fatalf("%d rows, want 200", got)
	}
	var n int
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		return db.QueryRow(ctx, tx, `SELECT COUNT(*) FROM things WHERE n >= ?`, 100).Scan(&n)
	}); err != nil || n != 100 {
		t.Fatalf("kept query: %d, %v", n, err)
	}
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := db.Exec(ctx, tx, `INSERT INTO nowhere VALUES (1)`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("a statement that does not prepare: %v", err)
	}
	if s := db.Stats(); s.Writes < 201 || s.Commits == 0 || s.Commits > s.Writes {
		t.Fatalf("stats %+v", s)
	}
}

// A write whose caller goes away while its function runs is not
// interrupted mid-group: its statements through Exec, Query and QueryRow
// run to the end, and the group commits without a rerun.
func TestKeptStatementsIgnoreTheEndOfTheWritesContext(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "c.db"), things)
	ctx, cancel := context.WithCancel(context.Background())
	var n int
	err := db.Write(ctx, func(tx *sql.Tx) error {
		cancel()
		if _, err := db.Exec(ctx, tx, `INSERT INTO things (id, n) VALUES ('c', 1)`); err != nil {
			return err
		}
		rows, err := db.Query(ctx, tx, `SELECT n FROM things`)
		if err != nil {
			return err
		}
		rows.Close()
		return db.QueryRow(ctx, tx, `SELECT COUNT(*) FROM things`).Scan(&n)
	})
	if err != nil || n != 1 {
		t.Fatalf("write cancelled while it ran: %v (it saw %d rows)", err, n)
	}
	if got, reruns := count(t, db), db.Stats().Reruns; got != 1 || reruns != 0 {
		t.Fatalf("%d rows, %d reruns; want 1 and 0", got, reruns)
	}
	// A write cancelled before its function runs still does not run.
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		t.Error("the function of a cancelled write ran")
		return nil
	}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled write: %v", err)
	}
}

// A group with a failing write runs again with savepoints: every write's
// function may run twice, and only its last run's statements commit.
func TestFailedGroupRunsAgainWithSavepoints(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "r.db"), things)
	ctx := context.Background()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range 50 {
		wg.Go(func() {
			<-start
			errs[i] = db.Write(ctx, func(tx *sql.Tx) error {
				if _, err := db.Exec(ctx, tx, `INSERT INTO things (id, n) VALUES (?, ?)`, fmt.Sprint("r", i), i); err != nil {
					return err
				}
				if i == 7 {
					return errors.New("refused")
				}
				return nil
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if (i == 7) != (err != nil) {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if got := count(t, db); got != 49 {
		t.Fatalf("%d rows, want 49 (each write once, the refused one not at all)", got)
	}
	if db.Stats().Reruns == 0 {
		t.Fatal("a group with a failed write was not run again")
	}
}

// A BeforeCommit hook commits with every group's writes, also when a failed
// write sends the group down the savepoint path, and its own failure fails
// the whole group.
func TestBeforeCommitHook(t *testing.T) {
	withTotal := sqlite.Schema{Domain: "things", FS: fstest.MapFS{
		"0001_things.sql": {Data: []byte(`CREATE TABLE things (id TEXT PRIMARY KEY, n INTEGER NOT NULL) STRICT;
			CREATE TABLE total (id INTEGER PRIMARY KEY CHECK (id = 0), rows INTEGER NOT NULL, sum INTEGER NOT NULL) STRICT;
			INSERT INTO total VALUES (0, 0, 0);`)},
	}}
	db := open(t, filepath.Join(t.TempDir(), "h.db"), withTotal)
	ctx := context.Background()
	var fail sync.Map // hook fails while the group holds a write of this id
	db.BeforeCommit("total", func(ctx context.Context, tx *sql.Tx) error {
		var poisoned int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM things WHERE id = 'poison'`).Scan(&poisoned); err != nil {
			return err
		}
		if _, ok := fail.Load("poison"); ok && poisoned > 0 {
			return errors.New("poisoned group")
		}
		_, err := tx.ExecContext(ctx, `UPDATE total SET rows = (SELECT COUNT(*) FROM things), sum = (SELECT COALESCE(SUM(n), 0) FROM things)`)
		return err
	})
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 60)
	for i := range 60 {
		wg.Go(func() {
			<-start
			errs[i] = db.Write(ctx, func(tx *sql.Tx) error {
				if _, err := tx.Exec(`INSERT INTO things (id, n) VALUES (?, ?)`, fmt.Sprint("h", i), i); err != nil {
					return err
				}
				if i%20 == 3 {
					return errors.New("refused")
				}
				return nil
			})
		})
	}
	close(start)
	wg.Wait()
	want := struct{ rows, sum int }{}
	for i, err := range errs {
		if (i%20 == 3) != (err != nil) {
			t.Fatalf("write %d: %v", i, err)
		}
		if err == nil {
			want.rows++
			want.sum += i
		}
	}
	checkTotal := func(rows, sum int) {
		t.Helper()
		var r, s int
		if err := db.Reader().QueryRow(`SELECT rows, sum FROM total`).Scan(&r, &s); err != nil {
			t.Fatal(err)
		}
		if r != rows || s != sum {
			t.Fatalf("total (%d, %d), want (%d, %d): the hook did not commit with every group", r, s, rows, sum)
		}
	}
	checkTotal(want.rows, want.sum)
	if db.Stats().Reruns == 0 {
		t.Fatal("no group took the savepoint path: the test does not cover it")
	}

	fail.Store("poison", true)
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO things (id, n) VALUES ('poison', 1000)`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "poisoned group") {
		t.Fatalf("a failing hook answered %v, want its error", err)
	}
	if got := count(t, db); got != want.rows {
		t.Fatalf("%d rows after a failed hook, want %d: the group's write was kept", got, want.rows)
	}
	checkTotal(want.rows, want.sum)
}
