package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// committer coalesces concurrent Write calls into group commits. One
// goroutine owns the writer connection: it takes the first waiting write,
// then every other write already queued (up to maxBatch), runs them in one
// transaction with a savepoint each, commits once, and answers them all.
// Writes that arrive while a commit waits for the disk queue up for the next
// one, so the batch grows with the load and a lone writer waits for nobody.
type committer struct {
	db *sql.DB
	// exec runs a statement in the open transaction as a kept statement
	// (DB.Exec): the savepoints around every write are its most frequent
	// statements.
	exec     func(tx *sql.Tx, query string) error
	maxBatch int
	log      *slog.Logger
	queue    chan *writeOp
	done     chan struct{}

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool

	commits, writes atomic.Uint64
}

type writeOp struct {
	ctx    context.Context
	fn     func(tx *sql.Tx) error
	result chan error
}

func newCommitter(db *sql.DB, exec func(tx *sql.Tx, query string) error, maxBatch int, log *slog.Logger) *committer {
	c := &committer{
		db:       db,
		exec:     exec,
		maxBatch: maxBatch,
		log:      log,
		queue:    make(chan *writeOp, maxBatch),
		done:     make(chan struct{}),
	}
	go c.run()
	return c
}

func (c *committer) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &writeOp{ctx: ctx, fn: fn, result: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	select {
	case c.queue <- op:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	return <-op.result
}

func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.queue)
	}
	c.mu.Unlock()
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	batch := make([]*writeOp, 0, c.maxBatch)
	for op := range c.queue {
		batch = append(batch[:0], op)
	fill:
		for len(batch) < c.maxBatch {
			select {
			case more, ok := <-c.queue:
				if !ok {
					break fill
				}
				batch = append(batch, more)
			default:
				break fill
			}
		}
		c.commit(batch)
	}
}

// commit runs one group. A failure to begin or commit fails every write of
// the group (none of them is stored); a write's own error fails only it.
func (c *committer) commit(batch []*writeOp) {
	results := make([]error, len(batch))
	tx, err := c.db.Begin()
	if err != nil {
		answer(batch, nil, fmt.Errorf("begin: %w", err))
		return
	}
	ran := 0
	for i, op := range batch {
		if err := op.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		results[i] = c.runOne(tx, op.fn)
		ran++
	}
	if ran == 0 {
		_ = tx.Rollback()
		answer(batch, results, nil)
		return
	}
	if err := tx.Commit(); err != nil {
		c.log.Error("group commit failed", slog.Int("writes", len(batch)), slog.Any("error", err))
		answer(batch, nil, fmt.Errorf("commit: %w", err))
		return
	}
	c.commits.Add(1)
	c.writes.Add(uint64(ran))
	answer(batch, results, nil)
}

// runOne wraps fn in a savepoint so its failure undoes only its own
// statements.
func (c *committer) runOne(tx *sql.Tx, fn func(tx *sql.Tx) error) (err error) {
	if err := c.exec(tx, "SAVEPOINT w"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlite write panicked: %v", p)
		}
		if err != nil {
			if rerr := c.exec(tx, "ROLLBACK TO w"); rerr != nil {
				c.log.Error("rollback to savepoint failed", slog.Any("error", rerr))
			}
		}
		if rerr := c.exec(tx, "RELEASE w"); rerr != nil && err == nil {
			err = fmt.Errorf("release savepoint: %w", rerr)
		}
	}()
	return fn(tx)
}

func answer(batch []*writeOp, results []error, all error) {
	for i, op := range batch {
		if all != nil {
			op.result <- all
			continue
		}
		op.result <- results[i]
	}
}
