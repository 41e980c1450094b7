package pipeline

import (
	"context"
	"fmt"

	"github.com/wildcathub/wildcat/core/event"
)

// Recovery of events stored but not finished when the daemon died.
//
// The stored event document (package messages; its id is the event id)
// carries a mark the pipeline owns: not done when stored, done once the
// last stage ran (Progress.MarkProcessed, one update by id). Documents
// stored before the mark existed lack it and count as processed, so an
// upgrade does not replay history.
//
// Recovery runs per account, before the account's session connects (so
// live events of a chat cannot overtake its recovered ones): it asks for
// the account's unfinished events in stored order, in pages after the last
// one seen (Unprocessed). On SQLite the partial index messages_unprocessed
// (account_id, seq) WHERE pipeline_done = 0 answers each page, and on
// MongoDB the index account_unprocessed {accountId, pipelineDone, storedAt,
// _id} (core/store's schema) does. Running it per account at
// acquisition also fits scale out: the daemon that takes over an account
// recovers exactly that account's unfinished events. Re-running is safe:
// outbox jobs and tags are idempotent and replies carry deterministic
// message ids.

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
