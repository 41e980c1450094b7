package messages

import (
	"context"
	"fmt"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// Event rebuilds the event that stored m: kind, id (the document _id),
// account, chat, timestamp, source and the message with its raw proto, plus
// the reaction, edit or revoke payload. Tags and annotations stay empty, as
// on a fresh event: the stages add them again (idempotently).
func (m *Message) Event() *event.Event {
	msg := m.Message
	msg.Raw = m.RawMessage
	ev := &event.Event{
		ID:        m.ID,
		Kind:      m.Kind,
		AccountID: m.AccountID,
		ChatID:    m.ChatID,
		Source:    m.Source,
		Message:   &msg,
		Reaction:  m.Reaction,
		Edit:      m.Edit,
		Revoke:    m.Revoke,
	}
	if m.Timestamp != 0 {
		ev.Timestamp = time.Unix(m.Timestamp, 0).UTC()
	}
	return ev
}

// Unprocessed implements pipeline.Unprocessed (not imported: pipeline
// depends on this package through session): the account's messages whose
// pipelineDone is false, in stored order, at most limit of them after the
// position after (as returned by the previous page). Documents whose event
// cannot be rebuilt valid (e.g. an edit stored before its payload was kept)
// are skipped, but still advance the position.
func (s *Store) Unprocessed(ctx context.Context, accountID, after string, limit int) ([]*event.Event, string, error) {
	for {
		docs, next, err := s.b.Unprocessed(ctx, accountID, after, limit)
		if err != nil {
			return nil, "", fmt.Errorf("list unprocessed messages of %s: %w", accountID, err)
		}
		if len(docs) == 0 {
			return nil, "", nil
		}
		evs := make([]*event.Event, 0, len(docs))
		for _, d := range docs {
			ev := d.Event()
			if err := ev.Validate(); err != nil {
				s.log.Warn("stored event cannot be rebuilt for the pipeline; skipped", "event_id", d.ID, "error", err)
				continue
			}
			evs = append(evs, ev)
		}
		if len(evs) > 0 {
			return evs, next, nil
		}
		// Keep the listing going past a page of unusable documents.
		after = next
	}
}

// Recoverable reports whether ev is stored as a message of its own, which
// carries the pipeline-done mark: such an event, once stored, is found again
// by Unprocessed until the pipeline marks it done, so it may be stored now
// and run through the pipeline after the next start. Receipts, presence and
// account events have no such record.
func Recoverable(ev *event.Event) bool {
	switch ev.Kind {
	case event.KindMessageReceived, event.KindMessageSent, event.KindMessageReaction,
		event.KindMessageEdited, event.KindMessageRevoked:
		return ev.Message != nil
	}
	return false
}

// PipelinePending reports whether the message with id id is stored and not
// yet finished by the pipeline (pipelineDone false). A missing message or
// one stored before the mark existed reports false.
func (s *Store) PipelinePending(ctx context.Context, id string) (bool, error) {
	p, err := s.b.PipelinePending(ctx, id)
	if err != nil {
		return false, fmt.Errorf("read pipeline state of message %s: %w", id, err)
	}
	return p, nil
}
