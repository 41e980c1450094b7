package messages

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// ErrExists: a message with that id is already stored.
var ErrExists = errors.New("message already stored")

// StorePending stores a message the daemon is about to send, with status
// pending, before the session is asked to send it: a send that crashes
// half-way leaves a trace, and the id clients get back names a document at
// once. The driver's own rendering completes it when WhatsApp accepts the
// message (Record); MarkFailed records a refusal.
func (s *Store) StorePending(ctx context.Context, m *Message) error {
	m.ID = DocID(m.AccountID, m.MessageID)
	m.FromMe = true
	m.Status, m.StatusRank = StatusPending, 0
	m.StoredAt = s.now().UTC()
	m.SortKey = SortKey(m.Timestamp, m.MessageID)
	if err := s.b.Insert(ctx, m, chatUpdateFor(m, m.StoredAt)); err != nil {
		if errors.Is(err, ErrExists) {
			return fmt.Errorf("message %s: %w", m.ID, ErrExists)
		}
		return fmt.Errorf("store pending message %s: %w", m.ID, err)
	}
	return nil
}

// completePending replaces the pending placeholder of one of our sends with
// the message WhatsApp accepted. It reports true when it did (the
// message.sent event is then new downstream) and false when the message was
// complete already (a redelivery).
func (s *Store) completePending(ctx context.Context, doc *Message) (bool, error) {
	done, err := s.b.CompletePending(ctx, doc, func(cur, doc *Message) bool {
		// Only the placeholder lacks WhatsApp's raw message.
		if !cur.FromMe || len(cur.RawMessage) > 0 {
			return false
		}
		// What the placeholder knew first stays: its order (a paging client
		// must not see it move), when it was stored, and our copy of its
		// media.
		doc.SortKey, doc.StoredAt = cur.SortKey, cur.StoredAt
		doc.MediaID, doc.MediaURL = cur.MediaID, cur.MediaURL
		doc.Source = cur.Source
		// Votes counted before WhatsApp's rendering arrived stay counted.
		doc.PollTally = cur.PollTally
		if cur.StatusRank > doc.StatusRank {
			doc.Status, doc.StatusRank, doc.StatusAt = cur.Status, cur.StatusRank, cur.StatusAt
		}
		if doc.StatusAt == nil {
			at := s.now().UTC()
			doc.StatusAt = &at
		}
		doc.Rev = cur.Rev
		return true
	})
	if err != nil {
		return false, fmt.Errorf("complete sent message %s: %w", doc.ID, err)
	}
	return done, nil
}

// MarkFailed records that sending a pending message failed, and why. A
// message that meanwhile completed (WhatsApp took it after all) keeps its
// status; MarkFailed then reports false.
func (s *Store) MarkFailed(ctx context.Context, accountID, messageID, reason string) (bool, error) {
	id := DocID(accountID, messageID)
	ok, err := s.b.MarkFailed(ctx, id, reason, s.now().UTC())
	if err != nil {
		return false, fmt.Errorf("mark message %s failed: %w", id, err)
	}
	return ok, nil
}

// PendingKind is the kind of event a send of this content produces, so the
// placeholder is listed like the message it becomes.
func PendingKind(t event.MessageType) event.Kind {
	switch t {
	case event.TypeReaction:
		return event.KindMessageReaction
	case event.TypeEdit:
		return event.KindMessageEdited
	case event.TypeRevoke:
		return event.KindMessageRevoked
	}
	return event.KindMessageSent
}

// FailStalePending marks failed every message still pending that was stored
// before cutoff: a daemon that died between storing a send and finishing it
// leaves its placeholder behind, and clients must learn the send did not
// happen. The cutoff is far beyond any live send's timeout, so a send still
// running on another daemon sharing the database is never touched. It
// returns how many it marked.
func (s *Store) FailStalePending(ctx context.Context, cutoff time.Time, reason string) (int, error) {
	n, err := s.b.FailStalePending(ctx, cutoff.UTC(), reason, s.now().UTC())
	if err != nil {
		return n, fmt.Errorf("fail stale pending messages: %w", err)
	}
	return n, nil
}
