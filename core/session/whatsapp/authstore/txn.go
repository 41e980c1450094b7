package authstore

import (
	"context"
	"fmt"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// DoDecryptionTxn runs fn, which decrypts one message and buffers its
// plaintext, as one unit.
//
// sqlstore runs fn in a database transaction so that the Signal ratchet
// step (session, identity, consumed pre-key, sender key) and the buffered
// plaintext commit together. This store uses no transactions (see the
// package doc), and running fn directly would be unsafe: whatsmeow writes the session before
// the plaintext, so a crash between the two leaves a session that has moved
// past the message, and on redelivery whatsmeow drops it as an "old
// counter" — a lost message.
//
// Instead the point writes fn makes through this store are held in memory
// (reads inside fn see them) and written when fn succeeds, plaintext
// first:
//   - fn fails: nothing is written, as after a rollback.
//   - crash before the plaintext is stored: nothing changed; the redelivered
//     message is decrypted again from the old state.
//   - crash after the plaintext but before the Signal state: the
//     redelivered message is served from the buffer without decrypting;
//     the old session still decrypts the sender's next messages (Signal
//     keeps keys for skipped counters), and an unconsumed pre-key only
//     stays usable a little longer.
//
// Each write is an idempotent upsert or delete by _id, so a partly applied
// commit is completed by simply applying it again.
func (s *Store) DoDecryptionTxn(ctx context.Context, fn func(context.Context) error) error {
	if s.txnFrom(ctx) != nil {
		return fn(ctx) // nested: the outer call commits
	}
	t := &txn{owner: s, ops: make(map[string]pendingOp)}
	if err := fn(context.WithValue(ctx, txnKey{}, t)); err != nil {
		return err
	}
	return t.commit(ctx)
}

type txnKey struct{}

// txn holds the deferred writes of one DoDecryptionTxn.
type txn struct {
	owner *Store

	mu    sync.Mutex
	event bson.D               // the buffered plaintext, written first
	ops   map[string]pendingOp // by _id: only the last write counts
	order []string             // _ids in first-write order, for a stable commit
}

type pendingOp struct {
	del bool
	set bson.D // the document's fields without _id
}

func (s *Store) txnFrom(ctx context.Context) *txn {
	t, _ := ctx.Value(txnKey{}).(*txn)
	if t == nil || t.owner != s {
		return nil
	}
	return t
}

func (t *txn) record(id string, op pendingOp) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.ops[id]; !ok {
		t.order = append(t.order, id)
	}
	t.ops[id] = op
}

func (t *txn) put(id string, set bson.D) { t.record(id, pendingOp{set: set}) }
func (t *txn) delete(id string)          { t.record(id, pendingOp{del: true}) }

func (t *txn) bufferEvent(doc bson.D) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.event = doc
}

// read decodes the pending write of id into out. ok is false when the
// transaction has not touched id (the caller reads the database).
func (t *txn) read(id string, out any) (found, ok bool, err error) {
	t.mu.Lock()
	op, ok := t.ops[id]
	t.mu.Unlock()
	if !ok {
		return false, false, nil
	}
	if op.del {
		return false, true, nil
	}
	raw, err := bson.Marshal(op.set)
	if err != nil {
		return false, true, err
	}
	return true, true, bson.Unmarshal(raw, out)
}

func (t *txn) commit(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.owner
	if t.event != nil {
		if err := s.insertBufferedEvent(ctx, t.event); err != nil {
			return fmt.Errorf("commit decryption: buffer plaintext: %w", err)
		}
	}
	models := make([]mongo.WriteModel, 0, len(t.order))
	for _, id := range t.order {
		op := t.ops[id]
		if op.del {
			models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}))
		} else {
			models = append(models, upsertModel(id, op.set))
		}
	}
	if err := bulkWrite(ctx, s.coll, models); err != nil {
		return fmt.Errorf("commit decryption: store %d signal records: %w", len(models), err)
	}
	return nil
}
