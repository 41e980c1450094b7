package messages

import (
	"context"
	"slices"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// Backend is what the Store keeps in an engine: the message documents, the
// chats derived from them, and the indexes their listings need. The Store
// keeps the decisions (what a receipt, an edit, a send's completion does to
// a message, how a message changes its chat); a Backend makes each of them
// one atomic operation on its engine. Two implement it: mongoBackend
// (mongo.go) and sqliteBackend (sqlite.go); the package tests run on both.
//
// Errors: ErrExists from Insert, ErrNotFound from Get and SetMediaArchive,
// ErrChatNotFound from Chat; anything else is the engine failing.
type Backend interface {
	// Insert stores m as a new message and, when chat is not nil, folds it
	// into its chat, together. ErrExists when m.ID is stored already; then
	// nothing changes.
	Insert(ctx context.Context, m *Message, chat *chatUpdate) error
	// CompletePending replaces the stored message m.ID with m when
	// merge(cur, m) says so (merge may adjust m from cur). It reports
	// whether it replaced it.
	CompletePending(ctx context.Context, m *Message, merge func(cur, m *Message) bool) (bool, error)
	// InsertVote stores the poll vote m as Insert does and, in the same
	// write, puts b into the tally of the poll pollID (applyVote). A vote
	// stored already is not inserted again; an engine whose two writes are
	// not one transaction applies b again then (harmless: applyVote
	// ignores a ballot it has). applied is false when the poll is not
	// stored here or b changed nothing.
	InsertVote(ctx context.Context, m *Message, chat *chatUpdate, pollID string, b PollBallot) (inserted, applied bool, err error)
	Get(ctx context.Context, id string) (*Message, error)

	// SetStatus moves the message's status to st if its rank is below
	// rank: never backwards.
	SetStatus(ctx context.Context, id string, st Status, rank int, at time.Time) (bool, error)
	// MarkChatRead zeroes the chat's unread count.
	MarkChatRead(ctx context.Context, accountID, chatID string, at time.Time) error
	// NameChat sets a group chat's name, creating the chat (no messages,
	// its activity at) when it has none yet.
	NameChat(ctx context.Context, accountID, chatID, name string, at, now time.Time) error
	// Edit applies applyEdit to the message; false when it is not stored
	// or the edit was applied already.
	Edit(ctx context.Context, id, editID, text string, at time.Time) (bool, error)
	// Revoke marks the message revoked unless it is already.
	Revoke(ctx context.Context, id, by string, at time.Time) (bool, error)
	// MarkFailed moves a pending message to failed with the reason.
	MarkFailed(ctx context.Context, id, reason string, at time.Time) (bool, error)
	// FailStalePending marks failed every pending message stored before
	// cutoff and reports how many.
	FailStalePending(ctx context.Context, cutoff time.Time, reason string, at time.Time) (int, error)
	// Annotate adds tags as a set and sets annotations by key.
	Annotate(ctx context.Context, id string, tags []string, annotations map[string]string) error
	// RecordFailures merges fs into the message's failures
	// (mergeFailures); a message that is not stored is no error.
	RecordFailures(ctx context.Context, id string, fs []ActionFailure) error
	// MarkProcessed sets the pipeline-done mark.
	MarkProcessed(ctx context.Context, id string, at time.Time) error

	// History returns up to limit messages matching q (its Cursor already
	// decoded into before: sortKey < before when set), by sortKey
	// descending.
	History(ctx context.Context, q Query, before string, limit int) ([]*Message, error)
	// DeleteAccount removes an account's messages and chats and counts the
	// messages.
	DeleteAccount(ctx context.Context, accountID string) (int64, error)

	// Chats returns up to limit chats of the account with activityKey <
	// before (when set), by activityKey descending.
	Chats(ctx context.Context, accountID, before string, limit int) ([]*Chat, error)
	Chat(ctx context.Context, accountID, chatID string) (*Chat, error)

	// Unprocessed lists the account's messages whose pipeline-done mark is
	// false, in stored order, after the position after ("" for the
	// start); next is the position after the last one.
	Unprocessed(ctx context.Context, accountID, after string, limit int) (docs []*Message, next string, err error)
	// PipelinePending: stored with the mark false.
	PipelinePending(ctx context.Context, id string) (bool, error)
	// StoredAfter lists every account's messages after after (an event id,
	// or a position it returned) in stored order, leaving out those whose
	// mark is false. found is false when after is neither. next is set
	// when the page is full.
	StoredAfter(ctx context.Context, after string, limit int) (docs []*Message, next string, found bool, err error)

	// SetMediaArchive records a (and, when mediaID is set, the media link)
	// unless keep(cur) says the stored outcome stands. It returns the
	// message as it was read and whether it wrote.
	SetMediaArchive(ctx context.Context, id, mediaID string, a MediaArchive, keep func(cur *Message) bool) (*Message, bool, error)
	MediaRefs(ctx context.Context) ([]MediaRef, error)
	ExpireMedia(ctx context.Context, mediaID string, at time.Time) (int64, error)
	// MediaMessages: the account's messages with media, of the kinds
	// (all when empty), timestamp >= since, by sortKey, without their raw
	// proto.
	MediaMessages(ctx context.Context, accountID string, since int64, kinds []string) ([]*Message, error)

	// The engine-to-engine copy (copy.go).
	copyBackend
}

// chatUpdate is what storing one message does to its chat: the same
// change on both engines (see chatUpdateFor).
type chatUpdate struct {
	AccountID, ChatID string
	// ChatPN, ChatLID and Name replace the stored ones when not empty.
	ChatPN, ChatLID, Name string
	// IsGroup is set when the chat is created.
	IsGroup bool
	// Unread: unreadReset, unreadKeep or unreadAdd.
	Unread int
	// ActivityKey, LastActivity and Last replace the stored ones when
	// ActivityKey is greater than the stored key.
	ActivityKey  string
	LastActivity int64
	Last         ChatMessage
	At           time.Time
}

const (
	unreadReset = -1
	unreadKeep  = 0
	unreadAdd   = 1
)

// chatUpdateFor is the change m makes to its chat, nil for messages that
// are no chat's message.
func chatUpdateFor(m *Message, now time.Time) *chatUpdate {
	if !countsAsChatMessage(m) {
		return nil
	}
	u := &chatUpdate{
		AccountID: m.AccountID, ChatID: m.ChatID, ChatPN: m.ChatPN, ChatLID: m.ChatLID, IsGroup: m.IsGroup,
		ActivityKey:  m.SortKey + "|" + m.ChatID,
		LastActivity: m.Timestamp,
		Last:         ChatMessage{ID: m.ID, MessageID: m.MessageID, From: m.From, FromMe: m.FromMe, Type: m.Type, Text: m.Text, Timestamp: m.Timestamp},
		At:           now.UTC(),
	}
	live := m.Source != event.SourceHistory
	switch {
	case m.FromMe && live:
		u.Unread = unreadReset // writing in a chat means having read it
	case !m.FromMe && live:
		u.Unread = unreadAdd
	}
	if !m.FromMe && !m.IsGroup && m.PushName != "" {
		u.Name = m.PushName
	}
	return u
}

// apply folds u into c (a new chat when c is the zero Chat): what the
// SQLite upsert does in SQL, for the engine that has to read first.
func (u *chatUpdate) apply(c *Chat) {
	if c.ID == "" {
		*c = Chat{ID: ChatDocID(u.AccountID, u.ChatID), AccountID: u.AccountID, ChatID: u.ChatID, IsGroup: u.IsGroup}
	}
	c.MessageCount++
	if u.ChatPN != "" {
		c.ChatPN = u.ChatPN
	}
	if u.ChatLID != "" {
		c.ChatLID = u.ChatLID
	}
	switch u.Unread {
	case unreadReset:
		c.UnreadCount = 0
	case unreadAdd:
		c.UnreadCount++
	}
	if u.Name != "" {
		c.Name = u.Name
	}
	if u.ActivityKey > c.ActivityKey {
		c.ActivityKey = u.ActivityKey
		c.LastActivity = u.LastActivity
		last := u.Last
		c.LastMessage = &last
	}
	c.UpdatedAt = u.At
}

// namedChatKey is the activity key of a chat created by its name alone:
// at its time, before any message of the same second.
func namedChatKey(at time.Time, chatID string) string {
	return SortKey(at.Unix(), "") + "|" + chatID
}

// rename is NameChat on a read chat (the zero Chat when there is none).
func (c *Chat) rename(accountID, chatID, name string, at, now time.Time) {
	if c.ID == "" {
		*c = Chat{ID: ChatDocID(accountID, chatID), AccountID: accountID, ChatID: chatID, IsGroup: true,
			ActivityKey: namedChatKey(at, chatID), LastActivity: at.Unix()}
	}
	c.Name = name
	c.UpdatedAt = now.UTC()
}

// applyEdit replaces cur's text with an edit's and keeps the previous text
// in its history; false when the edit (by its id) is there already.
func applyEdit(cur *Message, editID, text string, at time.Time) bool {
	for _, h := range cur.EditHistory {
		if editID != "" && h.EditID == editID {
			return false
		}
	}
	cur.EditHistory = append(cur.EditHistory, PreviousText{Text: cur.Text, EditID: editID, At: at.UTC()})
	cur.Text = text
	cur.Edited = true
	t := at.UTC()
	cur.EditedAt = &t
	if cur.Media != nil {
		media := *cur.Media
		media.Caption = text
		cur.Media = &media
	}
	cur.Rev++
	return true
}

// annotate adds tags as a set, in order, and sets annotations by key.
func annotate(m *Message, tags []string, annotations map[string]string) {
	for _, t := range tags {
		if !containsString(m.Tags, t) {
			m.Tags = append(m.Tags, t)
		}
	}
	if len(annotations) > 0 && m.Annotations == nil {
		m.Annotations = make(map[string]string, len(annotations))
	}
	for k, v := range annotations {
		m.Annotations[k] = v
	}
}

// mergeFailures puts each of fs into m's failures, replacing the entry of
// the same stage and action index, in place, or appending it.
func mergeFailures(m *Message, fs []ActionFailure) {
	for _, f := range fs {
		i := slices.IndexFunc(m.Failures, func(g ActionFailure) bool { return g.Stage == f.Stage && g.Index == f.Index })
		if i >= 0 {
			m.Failures[i] = f
		} else {
			m.Failures = append(m.Failures, f)
		}
	}
	m.Rev++
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
