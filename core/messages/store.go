// Package messages stores every WhatsApp message, in or out, in the
// messages collection: the reference document (accountId, messageId, chatId,
// from, fromMe, timestamp, type, text, hasMedia, mediaUrl, rawMessage) plus
// the fields of the Event model, its delivery status and its later fate
// (edits, revoke).
//
// A message is found by its deterministic id ({accountId}:{messageId}):
// inserts are idempotent and updates are conditional, never
// read-then-blind-write. The Store holds what each write means; a Backend
// (MongoDB in mongo.go, SQLite in sqlite.go) makes it one atomic operation.
package messages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/store/sqlite"
)

// ErrNotFound: no message with that id is stored for the account.
var ErrNotFound = errors.New("message not found")

// Status is a stored message's delivery status. It is the event's
// MessageStatus (the server acknowledgement is "sent", as in WhatsApp);
// "pending" and "failed" are for sends the daemon attempts itself.
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
	case event.StatusSent, "server_ack": // the former name of sent
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
	// Failures are the actions pipeline stages asked for on this message
	// that could not be carried out (RecordFailures), one per stage and
	// action, the latest outcome of each.
	Failures []ActionFailure `bson:"failures,omitempty" json:"failures,omitempty"`

	// Edit and Revoke keep the payload of a message.edited / .revoked
	// document, so that the event can be rebuilt (Event) for pipeline
	// recovery.
	Edit   *event.Edit   `bson:"edit,omitempty" json:"-"`
	Revoke *event.Revoke `bson:"revoke,omitempty" json:"-"`

	// Writer is the daemon (instance and lease epoch) that stored the
	// message, on a MongoDB shared by several daemons (WithWriter), so
	// fencing can be checked in the store; unset on the embedded engine,
	// which has one daemon.
	Writer *Writer `bson:"writer,omitempty" json:"-"`

	// PollTally is a poll's current result (type poll only): see
	// PollTally.
	PollTally *PollTally `bson:"pollTally,omitempty" json:"pollTally,omitempty"`

	// PipelineDone is false from Record until the pipeline finished the
	// event (MarkProcessed sets it true); documents stored before the field
	// existed lack it and count as processed. See pipeline.Recover.
	PipelineDone *bool `bson:"pipelineDone,omitempty" json:"-"`

	StoredAt time.Time `bson:"storedAt" json:"storedAt"`
	// SortKey orders history: see SortKey. It is set once, when the message
	// is first stored, and never changes, so a paging client never sees a
	// message move.
	SortKey string `bson:"sortKey" json:"-"`
	// Rev counts read-modify-write updates (edits, recorded failures); on
	// MongoDB such an update changes the document only if Rev is still what
	// it read, which makes read-modify-write safe without transactions.
	Rev int `bson:"rev" json:"-"`
}

// ActionFailure is one action of a pipeline stage that could not be
// carried out for this message, e.g. a rule's reply whose account could not
// send. The stage's other actions (tags, routes, …) were carried out.
type ActionFailure struct {
	// Stage is the pipeline stage's name.
	Stage string `bson:"stage" json:"stage"`
	// Action is reply, send, react, markRead, tag or annotate.
	Action string `bson:"action" json:"action"`
	// Index is the action's position among the stage's actions for this
	// message; with Stage it identifies the action.
	Index int `bson:"index" json:"index"`
	// Origin is who in the stage asked for it: a rule's name.
	Origin string `bson:"origin,omitempty" json:"origin,omitempty"`
	Error  string `bson:"error" json:"error"`
	// Attempts is how often it was tried (more than one under onError
	// retry).
	Attempts int       `bson:"attempts" json:"attempts"`
	At       time.Time `bson:"at" json:"at"`
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

// Store reads and writes the messages and the chats derived from them.
type Store struct {
	b    Backend
	keys *sealing.Keyring // see Seal
	log  *slog.Logger
	now  func() time.Time
}

// New returns a Store on db's messages and chats collections (the MongoDB
// engine).
func New(db *mongo.Database, log *slog.Logger) *Store {
	log = orDiscard(log)
	return &Store{b: newMongoBackend(db, log), log: log, now: time.Now}
}

// NewSQLite returns a Store on the embedded engine's messages and chats
// tables (SQLiteSchema).
func NewSQLite(db *sqlite.DB, log *slog.Logger) *Store {
	return newSQLite(db, log, textIndexEvery)
}

func newSQLite(db *sqlite.DB, log *slog.Logger, indexEvery time.Duration) *Store {
	db.BeforeCommit("messages_text", textIndexer(db, indexEvery))
	return &Store{b: &sqliteBackend{db: db}, log: orDiscard(log), now: time.Now}
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// Record stores the message carried by ev (message.received, .sent,
// .reaction, .edited, .revoked), and folds it into its chat in the same
// write. It is idempotent: storing a message that is already there changes
// nothing and reports inserted=false.
func (s *Store) Record(ctx context.Context, ev *event.Event) (inserted bool, err error) {
	if ev.Message == nil {
		return false, fmt.Errorf("record %s event %q: no message", ev.Kind, ev.ID)
	}
	m := *ev.Message
	now := s.now()
	doc := Message{
		ID:         DocID(ev.AccountID, m.MessageID),
		RawMessage: m.Raw,
		Kind:       ev.Kind,
		Source:     ev.Source,
		Reaction:   ev.Reaction,
		Edit:       ev.Edit,
		Revoke:     ev.Revoke,
		StoredAt:   now.UTC(),
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
		doc.Status, doc.StatusRank = statusOf(event.StatusSent)
	}
	doc.SortKey = SortKey(m.Timestamp, m.MessageID)
	if w, ok := ctx.Value(writerKey{}).(Writer); ok {
		doc.Writer = &w
	}
	if pollID, ballot, ok := voteOf(&doc.Message); ok {
		return s.recordVote(ctx, &doc, chatUpdateFor(&doc, now), pollID, ballot)
	}
	err = s.b.Insert(ctx, &doc, chatUpdateFor(&doc, now))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, ErrExists) {
		return false, fmt.Errorf("store message %s: %w", doc.ID, err)
	}
	if !m.FromMe {
		return false, nil
	}
	// Our own message may be the pending placeholder the API stored
	// before sending: WhatsApp's rendering completes it.
	return s.completePending(ctx, &doc)
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
	if ev.Status.Self && rank >= event.StatusRead.Rank() && ev.Status.ChatID != "" {
		// Read on another device of ours: the chat has been seen. The chat
		// is a derived view: a failure is logged, never returned.
		if err := s.b.MarkChatRead(ctx, ev.AccountID, ev.Status.ChatID, s.now().UTC()); err != nil {
			s.log.Warn("chat not marked read", slog.String("account", ev.AccountID), slog.String("chat", ev.Status.ChatID), slog.Any("error", err))
		}
	}
	id := DocID(ev.AccountID, ev.Status.MessageID)
	applied, err = s.b.SetStatus(ctx, id, st, rank, at.UTC())
	if err != nil {
		return false, fmt.Errorf("apply status %s to message %s: %w", st, id, err)
	}
	return applied, nil
}

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
	applied, err = s.b.Edit(ctx, id, editID, ev.Edit.Text, at.UTC())
	if err != nil {
		return false, fmt.Errorf("apply edit to message %s: %w", id, err)
	}
	return applied, nil
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
	applied, err = s.b.Revoke(ctx, id, ev.Revoke.By, at.UTC())
	if err != nil {
		return false, fmt.Errorf("apply revoke to message %s: %w", id, err)
	}
	return applied, nil
}

// Get reads one message by its WhatsApp id.
func (s *Store) Get(ctx context.Context, accountID, messageID string) (*Message, error) {
	m, err := s.b.Get(ctx, DocID(accountID, messageID))
	withPollNames(m)
	return m, err
}

// DeleteAccount removes every message of an account, and its chats (DELETE
// /v1/accounts/{id}?purge=true), and reports how many messages went.
func (s *Store) DeleteAccount(ctx context.Context, accountID string) (int64, error) {
	n, err := s.b.DeleteAccount(ctx, accountID)
	if err != nil {
		return n, fmt.Errorf("purge messages of %s: %w", accountID, err)
	}
	return n, nil
}

// Annotate adds tags (as a set) and sets annotations (by key) on the
// message document of ev — the pipeline's Annotator. Its id is the event id
// for every event that has a document; other events match nothing, which is
// fine: they have nowhere to show tags. Repeating it changes nothing, so a
// pipeline re-run after a crash is harmless.
func (s *Store) Annotate(ctx context.Context, ev *event.Event, tags []string, annotations map[string]string) error {
	if err := CheckAnnotations(annotations); err != nil {
		return fmt.Errorf("annotate %s: %w", ev.ID, err)
	}
	if len(tags) == 0 && len(annotations) == 0 {
		return nil
	}
	if err := s.b.Annotate(ctx, ev.ID, tags, annotations); err != nil {
		return fmt.Errorf("annotate message %s: %w", ev.ID, err)
	}
	return nil
}

// CheckAnnotations refuses annotation keys a store cannot keep: a dot or a
// leading $ would address a nested field or an operator on MongoDB, and
// the key rules are the same on every engine.
func CheckAnnotations(annotations map[string]string) error {
	for k := range annotations {
		if k == "" || strings.ContainsAny(k, ".\x00") || strings.HasPrefix(k, "$") {
			return fmt.Errorf("annotation key %q may not be empty, contain '.' or start with '$'", k)
		}
	}
	return nil
}

// RecordFailures stores the pipeline's failed actions on the message of
// the event eventID — the pipeline's FailureRecorder. A failure of the same
// stage and action index replaces the one stored (a re-run of the event
// keeps one entry per action, with its latest error); events without a
// document of their own match nothing.
func (s *Store) RecordFailures(ctx context.Context, eventID string, fs []ActionFailure) error {
	if len(fs) == 0 {
		return nil
	}
	// Both engines keep milliseconds.
	fs = slices.Clone(fs)
	for i := range fs {
		fs[i].At = fs[i].At.UTC().Truncate(time.Millisecond)
	}
	if err := s.b.RecordFailures(ctx, eventID, fs); err != nil {
		return fmt.Errorf("record failed actions on message %s: %w", eventID, err)
	}
	return nil
}

// MarkProcessed records that the event's message went through the whole
// pipeline (pipelineDone, pipelineAt): one update by id. Events without a
// document of their own match nothing.
// ApplyGroup names the group's chat after a group.update that carries its
// subject (a rename, or the whole group when the account joined); other
// group changes leave the chat as it is. It reports whether it named it.
func (s *Store) ApplyGroup(ctx context.Context, ev *event.Event) (bool, error) {
	g := ev.Group
	if g == nil || g.JID == "" {
		return false, fmt.Errorf("apply %s event %q: no group", ev.Kind, ev.ID)
	}
	name := g.Name
	if name == "" && g.Info != nil {
		name = g.Info.Name
	}
	if name == "" {
		return false, nil
	}
	at := ev.Timestamp
	if at.IsZero() {
		at = time.Now()
	}
	if err := s.b.NameChat(ctx, ev.AccountID, g.JID, name, at, time.Now()); err != nil {
		return false, fmt.Errorf("name chat %s of %s: %w", g.JID, ev.AccountID, err)
	}
	return true, nil
}

func (s *Store) MarkProcessed(ctx context.Context, eventID string) error {
	if err := s.b.MarkProcessed(ctx, eventID, s.now().UTC()); err != nil {
		return fmt.Errorf("mark event %s processed: %w", eventID, err)
	}
	return nil
}

// Writer names the daemon storing a message and the epoch of its lease on
// the message's account.
type Writer struct {
	Instance string `bson:"instance"`
	Epoch    int64  `bson:"epoch"`
}

type writerKey struct{}

// WithWriter makes the messages Record stores under ctx carry w.
func WithWriter(ctx context.Context, w Writer) context.Context {
	return context.WithValue(ctx, writerKey{}, w)
}
