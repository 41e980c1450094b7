package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Bulk is the MongoDB engine's group commit for one collection: the
// single-document writes that concurrent callers make at the same moment
// (message inserts, done marks, outbox jobs) go to the server together, as
// one unordered BulkWrite, and each caller is answered with its own
// outcome. While one BulkWrite is in flight the next callers queue, so a
// batch grows with the load and a lone writer waits for nobody — one round
// trip for many events instead of one each.
type Bulk struct {
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

// NewBulk returns the Bulk of collection c.
func NewBulk(c *mongo.Collection) *Bulk { return &Bulk{c: c, max: 256} }

// Do writes model with whatever else is queued and returns its own
// outcome: nil, its mongo.WriteException (duplicate key and such, as
// IsDuplicateKey reads it), or the batch's error. When ctx ends first Do
// returns ctx's error; the write may still be made.
func (b *Bulk) Do(ctx context.Context, model mongo.WriteModel) error {
	return b.DoAll(ctx, []mongo.WriteModel{model})[0]
}

// DoAll is Do for several writes, queued together (so they go in one
// BulkWrite when no other is in flight); errs[i] answers models[i].
func (b *Bulk) DoAll(ctx context.Context, models []mongo.WriteModel) (errs []error) {
	errs = make([]error, len(models))
	if err := ctx.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	ops := make([]*bulkOp, len(models))
	for i, m := range models {
		ops[i] = &bulkOp{ctx: ctx, model: m, res: make(chan error, 1)}
	}
	b.mu.Lock()
	b.pending = append(b.pending, ops...)
	if !b.running {
		b.running = true
		go b.flushAll()
	}
	b.mu.Unlock()
	for i, op := range ops {
		select {
		case errs[i] = <-op.res:
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	return errs
}

// flushAll writes what is queued, batch after batch, until nothing is.
func (b *Bulk) flushAll() {
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

func (b *Bulk) flush(batch []*bulkOp) {
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
