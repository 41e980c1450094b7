package messages

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// bulk is the MongoDB engine's group commit: the single-document writes
// that concurrent callers make at the same moment (message inserts, done
// marks) go to the server together, as one unordered BulkWrite, and each
// caller is answered with its own outcome. While one BulkWrite is in
// flight the next callers queue, so a batch grows with the load and a lone
// writer waits for nobody — one round trip for many events instead of one
// each.
type bulk struct {
	c   *mongo.Collection
	max int

	mu      sync.Mutex
	pending []*bulkOp
	running bool // a flusher goroutine is draining pending
}

type bulkOp struct {
	ctx   context.Context
	model mongo.WriteModel
	res   chan error // buffered: the flusher never waits for the caller
}

// bulkTimeout bounds one BulkWrite, whatever its callers' contexts: a
// caller that stops waiting does not cancel the others' writes.
const bulkTimeout = 30 * time.Second

func newBulk(c *mongo.Collection) *bulk { return &bulk{c: c, max: 256} }

// do writes model with whatever else is queued and returns its own
// outcome: nil, its mongo.WriteException (duplicate key and such, as
// store.IsDuplicateKey reads it), or the batch's error. When ctx ends
// first do returns ctx's error; the write may still be made.
func (b *bulk) do(ctx context.Context, model mongo.WriteModel) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &bulkOp{ctx: ctx, model: model, res: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, op)
	if !b.running {
		b.running = true
		go b.flushAll()
	}
	b.mu.Unlock()
	select {
	case err := <-op.res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flushAll writes what is queued, batch after batch, until nothing is.
func (b *bulk) flushAll() {
	for {
		b.mu.Lock()
		n := min(len(b.pending), b.max)
		if n == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		b.mu.Unlock()
		b.flush(batch)
	}
}

func (b *bulk) flush(batch []*bulkOp) {
	ops := batch[:0:0]
	models := make([]mongo.WriteModel, 0, len(batch))
	for _, op := range batch {
		if err := op.ctx.Err(); err != nil {
			op.res <- err // its caller has gone: not written
			continue
		}
		ops = append(ops, op)
		models = append(models, op.model)
	}
	if len(ops) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), bulkTimeout)
	defer cancel()
	_, err := b.c.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	errs := make([]error, len(ops))
	var bwe mongo.BulkWriteException
	switch {
	case err == nil:
	case errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0:
		// Unordered: every write was tried; the ones that failed say so.
		for _, we := range bwe.WriteErrors {
			if we.Index >= 0 && we.Index < len(errs) {
				errs[we.Index] = mongo.WriteException{WriteErrors: []mongo.WriteError{we.WriteError}}
			}
		}
	default:
		for i := range errs {
			errs[i] = err
		}
	}
	for i, op := range ops {
		op.res <- errs[i]
	}
}
