// Package messages stores every WhatsApp message, in or out, in the
// messages collection: the reference document (accountId, messageId, chatId,
// from, fromMe, timestamp, type, text, hasMedia, mediaUrl, rawMessage) plus
// the fields of the Event model, its delivery status and its later fate
// (edits, revoke).
//
// The embedded engine has no transactions and answers only _id equality
// from an index, so every write here is one operation on one document found
// by its deterministic _id ({accountId}:{messageId}): inserts are idempotent
// and updates are conditional, never read-then-blind-write.
package messages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/store"
)

// ErrNotFound: no message with that id is stored for the account.
var ErrNotFound = errors.New("message not found")

// Status is a stored message's delivery status. It is the event's
// MessageStatus with the server acknowledgement shown as "sent", the word
// REST clients expect; "pending" and "failed" are for sends the daemon
// attempts itself.
type Status string

const (
	StatusPending   Status = "pending"
	StatusSent      Status = "sent"
	StatusDelivered Status = "delivered"
	StatusRead      Status = "read"
	StatusPlayed    Status = "played"
	StatusFailed    Status = "failed"
)

// statusOf maps a receipt status to the stored one and its rank; the rank
// (event.MessageStatus.Rank) is stored beside it so that "never backwards"
// is a single conditional update.
func statusOf(s event.MessageStatus) (Status, int) {
	switch s {
	case event.StatusServerAck:
		return StatusSent, s.Rank()
	case event.StatusDelivered:
		return StatusDelivered, s.Rank()
	case event.StatusRead:
		return StatusRead, s.Rank()
	case event.StatusPlayed:
		return StatusPlayed, s.Rank()
	}
	return "", 0
}

// Message is one stored message document.
type Message struct {
	// ID is {accountId}:{messageId}, the same as the id of the event that
	// carried the message.
	ID string `bson:"_id" json:"id"`
	// event.Message supplies the reference fields and WhatsApp's extras;
	// its raw proto is stored as RawMessage instead of "raw".
	event.Message `bson:",inline"`
	RawMessage    []byte `bson:"rawMessage,omitempty" json:"rawMessage,omitempty"`

	Kind   event.Kind   `bson:"kind" json:"kind"`
	Source event.Source `bson:"source" json:"source"`

	// Status and StatusRank track our own messages' receipts; empty for
	// messages we received.
	Status     Status     `bson:"status,omitempty" json:"status,omitempty"`
	StatusRank int        `bson:"statusRank" json:"-"`
	StatusAt   *time.Time `bson:"statusAt,omitempty" json:"statusAt,omitempty"`

	// Reaction is set on message.reaction documents.
	Reaction *event.Reaction `bson:"reaction,omitempty" json:"reaction,omitempty"`

	// EditHistory holds the texts a message had before each edit, oldest
	// first.
	EditHistory []PreviousText `bson:"editHistory,omitempty" json:"editHistory,omitempty"`
	EditedAt    *time.Time     `bson:"editedAt,omitempty" json:"editedAt,omitempty"`

	RevokedBy string     `bson:"revokedBy,omitempty" json:"revokedBy,omitempty"`
	RevokedAt *time.Time `bson:"revokedAt,omitempty" json:"revokedAt,omitempty"`

	// MediaID names the stored copy of the message's media in the media
	// bucket (GET /v1/media/{mediaId}, also MediaURL) when it went through
	// the API.
	MediaID string `bson:"mediaId,omitempty" json:"mediaId,omitempty"`
	// MediaArchive is what the media archive did with the message's media
	// (archived, skipped with a reason, expired by retention); see
	// mediaarchive.go.
	MediaArchive *MediaArchive `bson:"mediaArchive,omitempty" json:"mediaArchive,omitempty"`
	// Error is why a send failed (status failed).
	Error string `bson:"error,omitempty" json:"error,omitempty"`

	// Tags and Annotations were added by pipeline stages (Annotate).
	Tags        []string          `bson:"tags,omitempty" json:"tags,omitempty"`
	Annotations map[string]string `bson:"annotations,omitempty" json:"annotations,omitempty"`

	// Edit and Revoke keep the payload of a message.edited / .revoked
	// document, so that the event can be rebuilt (Event) for pipeline
	// recovery.
	Edit   *event.Edit   `bson:"edit,omitempty" json:"-"`
	Revoke *event.Revoke `bson:"revoke,omitempty" json:"-"`

	// PipelineDone is false from Record until the pipeline finished the
	// event (MarkProcessed sets it true); documents stored before the field
	// existed lack it and count as processed. See pipeline.Recover.
	PipelineDone *bool `bson:"pipelineDone,omitempty" json:"-"`

	StoredAt time.Time `bson:"storedAt" json:"storedAt"`
	// SortKey orders history: see SortKey. It is set once, when the message
	// is first stored, and never changes, so a paging client never sees a
	// message move.
	SortKey string `bson:"sortKey" json:"-"`
	// Rev counts edits; an edit updates the document only if Rev is still
	// what it read, which makes read-modify-write safe without transactions.
	Rev int `bson:"rev" json:"-"`
}

// PreviousText is one entry of a message's edit history.
type PreviousText struct {
	Text string `bson:"text" json:"text"`
	// EditID is the id of the edit message that replaced this text; it makes
	// a redelivered edit recognisable.
	EditID string    `bson:"editId" json:"editId"`
	At     time.Time `bson:"at" json:"at"`
}

// DocID is the _id of a message of an account.
func DocID(accountID, messageID string) string {
	return event.MessageEventID(accountID, messageID)
}

// Store reads and writes the messages collection and the chats derived
// from it.
type Store struct {
	c     *mongo.Collection
	chats *mongo.Collection
	log   *slog.Logger
	now   func() time.Time
	locks docLocks
}

// New returns a Store on db's messages and chats collections.
func New(db *mongo.Database, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{c: db.Collection(store.Messages), chats: db.Collection(store.Chats), log: log, now: time.Now}
}

// Record stores the message carried by ev (message.received, .sent,
// .reaction, .edited, .revoked). It is idempotent: storing a message that is
// already there changes nothing and reports inserted=false.
func (s *Store) Record(ctx context.Context, ev *event.Event) (inserted bool, err error) {
	if ev.Message == nil {
		return false, fmt.Errorf("record %s event %q: no message", ev.Kind, ev.ID)
	}
	m := *ev.Message
	doc := Message{
		ID:         DocID(ev.AccountID, m.MessageID),
		RawMessage: m.Raw,
		Kind:       ev.Kind,
		Source:     ev.Source,
		Reaction:   ev.Reaction,
		Edit:       ev.Edit,
		Revoke:     ev.Revoke,
		StoredAt:   s.now().UTC(),
	}
	notDone := false
	doc.PipelineDone = &notDone
	m.Raw = nil
	if m.AccountID == "" {
		m.AccountID = ev.AccountID
	}
	doc.Message = m
	if m.FromMe {
		// WhatsApp accepted it (a driver emits message.sent after the server
		// took it); receipts move it on from here.
		doc.Status, doc.StatusRank = statusOf(event.StatusServerAck)
	}
	doc.SortKey = SortKey(m.Timestamp, m.MessageID)
	if _, err := s.c.InsertOne(ctx, doc); err != nil {
		if !store.IsDuplicateKey(err) {
			return false, fmt.Errorf("store message %s: %w", doc.ID, err)
		}
		if !m.FromMe {
			return false, nil
		}
		// Our own message may be the pending placeholder the API stored
		// before sending: WhatsApp's rendering completes it.
		return s.completePending(ctx, &doc)
	}
	s.touchChat(ctx, &doc)
	return true, nil
}

// ApplyStatus moves a message's status forward to the receipt's status. A
// receipt that would move it backwards (they arrive out of order) or that
// targets a message not stored here changes nothing and reports false.
func (s *Store) ApplyStatus(ctx context.Context, ev *event.Event) (applied bool, err error) {
	if ev.Status == nil {
		return false, fmt.Errorf("apply %s event %q: no status", ev.Kind, ev.ID)
	}
	st, rank := statusOf(ev.Status.Status)
	if rank == 0 {
		return false, fmt.Errorf("apply status event %q: unknown status %q", ev.ID, ev.Status.Status)
	}
	at := ev.Timestamp
	if at.IsZero() {
		at = s.now()
	}
	if ev.Status.Self && rank >= event.StatusRead.Rank() {
		// Read on another device of ours: the chat has been seen.
		s.markChatRead(ctx, ev.AccountID, ev.Status.ChatID)
	}
	id := DocID(ev.AccountID, ev.Status.MessageID)
	defer s.locks.lock(id)()
	res, err := s.c.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "statusRank", Value: bson.D{{Key: "$lt", Value: rank}}}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: st},
			{Key: "statusRank", Value: rank},
			{Key: "statusAt", Value: at.UTC()},
		}}})
	if err != nil {
		return false, fmt.Errorf("apply status %s to message %s: %w", st, id, err)
	}
	return res.ModifiedCount > 0, nil
}

// maxEditAttempts bounds the optimistic-concurrency loop of ApplyEdit; two
// edits of one message racing is rare, many is a bug.
const maxEditAttempts = 5

// ApplyEdit replaces the text of the edited message and keeps the previous
// text in its history. A redelivered edit is recognised by its id and
// changes nothing; an edit of a message not stored here reports false.
func (s *Store) ApplyEdit(ctx context.Context, ev *event.Event) (applied bool, err error) {
	if ev.Edit == nil {
		return false, fmt.Errorf("apply %s event %q: no edit", ev.Kind, ev.ID)
	}
	editID := ""
	if ev.Message != nil {
		editID = ev.Message.MessageID
	}
	id := DocID(ev.AccountID, ev.Edit.TargetID)
	at := ev.Timestamp
	if at.IsZero() {
		at = s.now()
	}
	defer s.locks.lock(id)()
	for range maxEditAttempts {
		cur, err := s.get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		for _, h := range cur.EditHistory {
			if editID != "" && h.EditID == editID {
				return false, nil
			}
		}
		set := bson.D{
			{Key: "text", Value: ev.Edit.Text},
			{Key: "edited", Value: true},
			{Key: "editedAt", Value: at.UTC()},
		}
		if cur.Media != nil {
			set = append(set, bson.E{Key: "media.caption", Value: ev.Edit.Text})
		}
		res, err := s.c.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "rev", Value: cur.Rev}},
			bson.D{
				{Key: "$set", Value: set},
				{Key: "$inc", Value: bson.D{{Key: "rev", Value: 1}}},
				{Key: "$push", Value: bson.D{{Key: "editHistory", Value: PreviousText{Text: cur.Text, EditID: editID, At: at.UTC()}}}},
			})
		if err != nil {
			return false, fmt.Errorf("apply edit to message %s: %w", id, err)
		}
		if res.MatchedCount > 0 {
			return true, nil
		}
		// Another edit won the race; read again.
	}
	return false, fmt.Errorf("apply edit to message %s: still contended after %d attempts", id, maxEditAttempts)
}

// ApplyRevoke marks the target message revoked ("deleted for everyone").
// Its content is kept for the record. Revoking twice changes nothing.
func (s *Store) ApplyRevoke(ctx context.Context, ev *event.Event) (applied bool, err error) {
	if ev.Revoke == nil {
		return false, fmt.Errorf("apply %s event %q: no revoke", ev.Kind, ev.ID)
	}
	at := ev.Timestamp
	if at.IsZero() {
		at = s.now()
	}
	id := DocID(ev.AccountID, ev.Revoke.TargetID)
	defer s.locks.lock(id)()
	res, err := s.c.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "revoked", Value: bson.D{{Key: "$ne", Value: true}}}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "revoked", Value: true},
			{Key: "revokedBy", Value: ev.Revoke.By},
			{Key: "revokedAt", Value: at.UTC()},
		}}})
	if err != nil {
		return false, fmt.Errorf("apply revoke to message %s: %w", id, err)
	}
	return res.ModifiedCount > 0, nil
}

// Get reads one message by its WhatsApp id.
func (s *Store) Get(ctx context.Context, accountID, messageID string) (*Message, error) {
	return s.get(ctx, DocID(accountID, messageID))
}

func (s *Store) get(ctx context.Context, id string) (*Message, error) {
	var m Message
	err := s.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read message %s: %w", id, err)
	}
	return &m, nil
}

// Filter narrows Count and List. Zero fields match everything.
type Filter struct {
	AccountID string
	ChatID    string
}

func (f Filter) bson() bson.D {
	d := bson.D{}
	if f.AccountID != "" {
		d = append(d, bson.E{Key: "accountId", Value: f.AccountID})
	}
	if f.ChatID != "" {
		d = append(d, bson.E{Key: "chatId", Value: f.ChatID})
	}
	return d
}

// Count counts the messages matching f.
func (s *Store) Count(ctx context.Context, f Filter) (int64, error) {
	n, err := s.c.CountDocuments(ctx, f.bson())
	if err != nil {
		return 0, fmt.Errorf("count messages: %w", err)
	}
	return n, nil
}

// List returns up to limit messages matching f, newest first. It is the
// simple form; paginated history arrives with the messages API.
func (s *Store) List(ctx context.Context, f Filter, limit int) ([]*Message, error) {
	opts := options.Find().SetSort(bson.D{{Key: "timestamp", Value: -1}, {Key: "_id", Value: -1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := s.c.Find(ctx, f.bson(), opts)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	var out []*Message
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return out, nil
}

// DeleteAccount removes every message of an account (DELETE
// /v1/accounts/{id}?purge=true) and reports how many went.
func (s *Store) DeleteAccount(ctx context.Context, accountID string) (int64, error) {
	res, err := s.c.DeleteMany(ctx, bson.D{{Key: "accountId", Value: accountID}})
	if err != nil {
		return 0, fmt.Errorf("purge messages of %s: %w", accountID, err)
	}
	return res.DeletedCount, s.purgeChats(ctx, accountID)
}

// Annotate adds tags (as a set) and sets annotations (by key) on the
// message document of ev — the pipeline's Annotator. Its _id is the event id
// for every event that has a document; other events match nothing, which is
// fine: they have nowhere to show tags. Repeating it changes nothing, so a
// pipeline re-run after a crash is harmless.
func (s *Store) Annotate(ctx context.Context, ev *event.Event, tags []string, annotations map[string]string) error {
	update := bson.D{}
	if len(tags) > 0 {
		update = append(update, bson.E{Key: "$addToSet", Value: bson.D{{Key: "tags", Value: bson.D{{Key: "$each", Value: tags}}}}})
	}
	if len(annotations) > 0 {
		set := bson.D{}
		for k, v := range annotations {
			// A dot or leading $ would address a nested field or an operator.
			if k == "" || strings.ContainsAny(k, ".\x00") || strings.HasPrefix(k, "$") {
				return fmt.Errorf("annotate %s: annotation key %q may not be empty, contain '.' or start with '$'", ev.ID, k)
			}
			set = append(set, bson.E{Key: "annotations." + k, Value: v})
		}
		update = append(update, bson.E{Key: "$set", Value: set})
	}
	if len(update) == 0 {
		return nil
	}
	defer s.locks.lock(ev.ID)()
	if _, err := s.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: ev.ID}}, update); err != nil {
		return fmt.Errorf("annotate message %s: %w", ev.ID, err)
	}
	return nil
}

// MarkProcessed records that the event's message went through the whole
// pipeline (pipelineDone, pipelineAt): one update by _id, the write the
// embedded engine answers from an index. See pipeline.StoreProgress.
func (s *Store) MarkProcessed(ctx context.Context, eventID string) error {
	// Even a plain $set is read-modify-write on the embedded engine: without
	// the lock it could undo a receipt or a media link written meanwhile.
	defer s.locks.lock(eventID)()
	_, err := s.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: eventID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "pipelineDone", Value: true}, {Key: "pipelineAt", Value: s.now().UTC()}}}})
	if err != nil {
		return fmt.Errorf("mark event %s processed: %w", eventID, err)
	}
	return nil
}
