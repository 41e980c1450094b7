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

	hooksMu sync.Mutex
	hooks   []commitHook // copied on change: the committer reads a snapshot

	commits, writes, reruns atomic.Uint64
	// afterCommit, when set, is called after every commit (the
	// checkpointer's nudge); set before the first Write.
	afterCommit func()
	// sync, when set (SyncFull), flushes each committed group and answers
	// it; otherwise a group is answered at its commit. Set before the first
	// Write.
	sync *walSyncer
}

// commitHook is work that commits with every group: see DB.BeforeCommit.
type commitHook struct {
	name string
	fn   func(ctx context.Context, tx *sql.Tx) error
}

func (c *committer) setHook(name string, fn func(ctx context.Context, tx *sql.Tx) error) {
	c.hooksMu.Lock()
	defer c.hooksMu.Unlock()
	hooks := make([]commitHook, 0, len(c.hooks)+1)
	for _, h := range c.hooks {
		if h.name != name {
			hooks = append(hooks, h)
		}
	}
	c.hooks = append(hooks, commitHook{name, fn})
}

// runHooks runs every hook in tx after the group's writes.
func (c *committer) runHooks(tx *sql.Tx) error {
	c.hooksMu.Lock()
	hooks := c.hooks
	c.hooksMu.Unlock()
	for _, h := range hooks {
		if err := runGuarded(tx, func(tx *sql.Tx) error { return h.fn(context.Background(), tx) }); err != nil {
			return fmt.Errorf("before-commit %s: %w", h.name, err)
		}
	}
	return nil
}

type writeOp struct {
	ctx    context.Context
	fn     func(tx *sql.Tx) error
	result chan error
	then   func(error) // instead of result, for a write nobody waits for
}

func (op *writeOp) answer(err error) {
	if op.then != nil {
		op.then(err)
		return
	}
	op.result <- err
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
	return c // the caller sets its hooks, then starts run
}

func (c *committer) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	op := &writeOp{ctx: ctx, fn: fn, result: make(chan error, 1)}
	if err := c.enqueue(op); err != nil {
		return err
	}
	return <-op.result
}

// enqueue queues op behind every write queued before it.
func (c *committer) enqueue(op *writeOp) error {
	ctx := op.ctx
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.sync != nil {
		if err := c.sync.err(); err != nil {
			return err
		}
	}
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
	return nil
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
	if c.sync != nil {
		defer c.sync.close() // after the last group was handed over
	}
	batch := make([]*writeOp, 0, c.maxBatch)
	for op := range c.queue {
		if c.sync != nil {
			// At most one group flushing and one more committed: a group
			// begins once the one before its predecessor is on the disk,
			// so what queued meanwhile commits together instead of in
			// many small groups, each writing its pages again.
			c.sync.slots <- struct{}{}
		}
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
		commits := c.commits.Load()
		c.commit(batch)
		if c.sync != nil && c.commits.Load() == commits {
			<-c.sync.slots // nothing committed: no flush to wait for
		}
	}
}

// commit runs one group. A failure to begin or commit fails every write of
// the group (none of them is stored); a write's own error fails only it.
//
// Writes nearly always succeed, and a savepoint around each costs about a
// sixth of the engine's time (SQLite journals every page a savepoint may
// have to restore, FTS5 tables included). So the group first runs without
// them; only when a write fails is the transaction rolled back and the
// group run again with a savepoint around each write, which is why a
// write's function may run more than once (see DB.Write).
func (c *committer) commit(batch []*writeOp) {
	if c.commitFast(batch) {
		return
	}
	c.reruns.Add(1)
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
	if err := c.runHooks(tx); err != nil {
		_ = tx.Rollback()
		c.log.Error("group commit failed", slog.Int("writes", len(batch)), slog.Any("error", err))
		answer(batch, nil, err)
		return
	}
	if err := tx.Commit(); err != nil {
		c.log.Error("group commit failed", slog.Int("writes", len(batch)), slog.Any("error", err))
		answer(batch, nil, fmt.Errorf("commit: %w", err))
		return
	}
	c.committed(batch, results, ran)
}

// commitFast runs the group without savepoints and commits it if every write
// succeeded. It reports false, having rolled everything back, when a write
// failed or the transaction could not begin: the caller then runs the group
// with savepoints.
func (c *committer) commitFast(batch []*writeOp) bool {
	tx, err := c.db.Begin()
	if err != nil {
		return false
	}
	results := make([]error, len(batch))
	ran := 0
	for i, op := range batch {
		if err := op.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if err := runGuarded(tx, op.fn); err != nil {
			_ = tx.Rollback()
			return false
		}
		ran++
	}
	if ran == 0 {
		_ = tx.Rollback()
		answer(batch, results, nil)
		return true
	}
	if err := c.runHooks(tx); err != nil {
		// The slow path runs the hooks again and answers their failure.
		_ = tx.Rollback()
		return false
	}
	if err := tx.Commit(); err != nil {
		c.log.Error("group commit failed", slog.Int("writes", len(batch)), slog.Any("error", err))
		answer(batch, nil, fmt.Errorf("commit: %w", err))
		return true
	}
	c.committed(batch, results, ran)
	return true
}

// runGuarded runs fn, turning a panic into an error.
func runGuarded(tx *sql.Tx, fn func(tx *sql.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlite write panicked: %v", p)
		}
	}()
	return fn(tx)
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

// committed counts a group that committed and answers its writers — at once,
// or through the syncer once the group is on the disk.
func (c *committer) committed(batch []*writeOp, results []error, writes int) {
	c.commits.Add(1)
	c.writes.Add(uint64(writes))
	if c.afterCommit != nil {
		c.afterCommit()
	}
	if c.sync == nil {
		answer(batch, results, nil)
		return
	}
	// run reuses batch for the next group while this one waits.
	c.sync.committed(append([]*writeOp(nil), batch...), results)
}

func answer(batch []*writeOp, results []error, all error) {
	for i, op := range batch {
		if all != nil {
			op.answer(all)
			continue
		}
		op.answer(results[i])
	}
}
