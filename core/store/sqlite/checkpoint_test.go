package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/sqlite"
)

// Committed pages reach the database file by the checkpointer, not by the
// writer: the writer's automatic checkpoint is off, yet after enough writes
// to fill thousands of WAL frames the main file holds them, and the
// checkpointer says it ran.
func TestCheckpointsRunOffTheWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	db, err := sqlite.Open(ctx, sqlite.Options{Path: path, Schemas: []sqlite.Schema{things}, CheckpointInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 2000)
	const rows = 4000 // about 2,000 pages of 4 KiB
	for i := 0; i < rows; i += 100 {
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			for k := i; k < i+100; k++ {
				if _, err := tx.Exec(`INSERT INTO things (id, n) VALUES (?, ?)`, fmt.Sprint(k, pad), k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, time.Minute, func() error {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if st.Size() < before.Size()+rows*2000 {
			return fmt.Errorf("database file %d bytes (%d before the writes): the frames are still only in the WAL", st.Size(), before.Size())
		}
		return nil
	})
	if n := db.Stats().Checkpoints; n == 0 {
		t.Fatal("the checkpointer ran no checkpoint")
	}
	// The committer's own connection: what Write's transactions run on.
	var auto int
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&auto)
	}); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Fatalf("the writer checkpoints every %d pages itself", auto)
	}
}
