package pipeline

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/event"
)

// Recovery of events stored but not finished when the daemon died.
//
// The stored event document (the messages collection; _id = event id)
// carries two fields the pipeline owns:
//
//	pipelineDone  false when stored, true once the last stage ran
//	pipelineAt    when it was marked done
//
// MarkProcessed is one update by _id alone — the only write the embedded
// engine answers from an index. Documents stored before this field existed
// lack it and count as processed ({pipelineDone: false} does not match a
// missing field), so an upgrade does not replay history.
//
// The recovery query, per account, before the account's session connects
// (so live events of a chat cannot overtake its recovered ones), in pages:
//
//	find({accountId: A, pipelineDone: false,
//	      $or: [{storedAt: {$gt: T}}, {storedAt: T, _id: {$gt: ID}}]})
//	  .sort({storedAt: 1, _id: 1}).limit(500)
//
// where (T, ID) is the last document of the previous page (absent for the
// first). On MongoDB the index {accountId: 1, pipelineDone: 1, storedAt: 1}
// carries it; on the embedded engine each page is a scan, which is paid once
// per account start. Running it per account at acquisition also fits scale
// out: the daemon that takes over an account recovers exactly that
// account's unfinished events. Re-running is safe: outbox jobs and tags are
// idempotent and replies carry deterministic message ids.

// Unprocessed lists stored events the pipeline has not finished, oldest
// first (the query above). after is the position returned with the
// previous page ("" for the first); an empty page ends the listing.
type Unprocessed interface {
	Unprocessed(ctx context.Context, accountID, after string, limit int) (events []*event.Event, next string, err error)
}

// RecoverPage is the page size Recover asks for.
const RecoverPage = 500

// Recover submits every unprocessed event of accountID, in stored order,
// and returns how many it submitted. It returns once they are queued, not
// processed; call it before the account's session starts emitting.
func (e *Engine) Recover(ctx context.Context, src Unprocessed, accountID string) (int, error) {
	n := 0
	after := ""
	for {
		evs, next, err := src.Unprocessed(ctx, accountID, after, RecoverPage)
		if err != nil {
			return n, fmt.Errorf("recover account %s: %w", accountID, err)
		}
		if len(evs) == 0 {
			return n, nil
		}
		for _, ev := range evs {
			if err := e.Submit(ctx, ev); err != nil {
				return n, fmt.Errorf("recover account %s: %w", accountID, err)
			}
			n++
		}
		if next == "" || next == after {
			return n, nil
		}
		after = next
	}
}

// StoreProgress implements Progress on a collection whose documents have
// the event id as _id (the messages collection).
type StoreProgress struct {
	C   *mongo.Collection
	Now func() time.Time
}

// MarkProcessed sets pipelineDone on the event's document. Events without
// a document of their own (receipts, presence) match nothing, which is
// fine: nothing would recover them.
func (p *StoreProgress) MarkProcessed(ctx context.Context, eventID string) error {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	_, err := p.C.UpdateOne(ctx, bson.D{{Key: "_id", Value: eventID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "pipelineDone", Value: true}, {Key: "pipelineAt", Value: now().UTC()}}}})
	if err != nil {
		return fmt.Errorf("mark event %s processed: %w", eventID, err)
	}
	return nil
}
