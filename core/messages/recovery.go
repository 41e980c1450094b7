package messages

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

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
// depends on this package through session): the account's message
// documents whose pipelineDone is false, by storedAt then _id, at most limit
// of them after the position after (as returned by the previous page).
// Documents whose event cannot be rebuilt valid (e.g. an edit stored before
// its payload was kept) are skipped, but still advance the position.
func (s *Store) Unprocessed(ctx context.Context, accountID, after string, limit int) ([]*event.Event, string, error) {
	filter := bson.D{{Key: "accountId", Value: accountID}, {Key: "pipelineDone", Value: false}}
	if after != "" {
		t, id, err := parsePosition(after)
		if err != nil {
			return nil, "", err
		}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "storedAt", Value: bson.D{{Key: "$gt", Value: t}}}},
			bson.D{{Key: "storedAt", Value: t}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: id}}}},
		}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "storedAt", Value: 1}, {Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := s.c.Find(ctx, filter, opts)
	if err != nil {
		return nil, "", fmt.Errorf("list unprocessed messages of %s: %w", accountID, err)
	}
	var docs []*Message
	if err := cur.All(ctx, &docs); err != nil {
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
	last := docs[len(docs)-1]
	next := last.StoredAt.UTC().Format(time.RFC3339Nano) + " " + last.ID
	if len(evs) == 0 {
		// Keep the listing going past a page of unusable documents.
		return s.Unprocessed(ctx, accountID, next, limit)
	}
	return evs, next, nil
}

func parsePosition(p string) (time.Time, string, error) {
	ts, id, ok := strings.Cut(p, " ")
	if !ok {
		return time.Time{}, "", fmt.Errorf("unprocessed position %q: malformed", p)
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("unprocessed position %q: %w", p, err)
	}
	return t, id, nil
}

// Recoverable reports whether ev is stored as a message document of its own,
// which carries pipelineDone: such an event, once stored, is found again by
// Unprocessed until the pipeline marks it done, so it may be stored now and
// run through the pipeline after the next start. Receipts, presence and
// account events have no such document.
func Recoverable(ev *event.Event) bool {
	switch ev.Kind {
	case event.KindMessageReceived, event.KindMessageSent, event.KindMessageReaction,
		event.KindMessageEdited, event.KindMessageRevoked:
		return ev.Message != nil
	}
	return false
}

// PipelinePending reports whether the message document with _id id is
// stored and not yet finished by the pipeline (pipelineDone false). A
// missing document or one without the field reports false.
func (s *Store) PipelinePending(ctx context.Context, id string) (bool, error) {
	n, err := s.c.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}, {Key: "pipelineDone", Value: false}})
	if err != nil {
		return false, fmt.Errorf("read pipeline state of message %s: %w", id, err)
	}
	return n > 0, nil
}
