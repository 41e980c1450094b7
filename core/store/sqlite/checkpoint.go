package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"sync/atomic"
	"time"
)

// checkpointer copies committed WAL frames into the database file on a
// connection of its own. SQLite's automatic checkpoint runs inside the
// commit that crosses its threshold, on the writer: every group commit
// queued behind it waited for a thousand pages to be copied and the file
// synced. The writer's is off (wal_autocheckpoint 0); this one runs a
// PASSIVE checkpoint, which never blocks the writer or readers, at most
// every interval while commits happen. A page written by many commits in
// between is copied once.
type checkpointer struct {
	db       *sql.DB // one connection
	interval time.Duration
	log      *slog.Logger
	poke     chan struct{} // a commit since the last checkpoint began
	stop     chan struct{}
	done     chan struct{}
	runs     atomic.Uint64
}

const defaultCheckpointInterval = 200 * time.Millisecond

func newCheckpointer(db *sql.DB, interval time.Duration, log *slog.Logger) *checkpointer {
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, interval: interval, log: log,
		poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// committed tells the checkpointer a group has committed.
func (c *checkpointer) committed() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	wait := time.NewTimer(c.interval)
	wait.Stop()
	defer wait.Stop()
	for {
		select {
		case <-c.poke:
		case <-c.stop:
			return
		}
		// Let the commits of an interval gather.
		wait.Reset(c.interval)
		select {
		case <-wait.C:
		case <-c.stop:
			return
		}
		var busy, log, done int
		if err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
			c.log.Warn("wal checkpoint failed", slog.Any("error", err))
			continue
		}
		c.runs.Add(1)
	}
}

// close stops it; a checkpoint in progress finishes first.
func (c *checkpointer) close() {
	close(c.stop)
	<-c.done
	_ = c.db.Close()
}
