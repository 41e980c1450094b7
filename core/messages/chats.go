package messages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/event"
)

// ErrChatNotFound: the account has no message in that chat.
var ErrChatNotFound = errors.New("chat not found")

// Chat is one document of the chats collection: a conversation of one
// account, kept up to date as its messages are stored, so listing chats
// reads one document per chat instead of aggregating the history.
type Chat struct {
	// ID is {accountId}:{chatId}.
	ID        string `bson:"_id" json:"-"`
	AccountID string `bson:"accountId" json:"accountId"`
	ChatID    string `bson:"chatId" json:"id"`
	ChatPN    string `bson:"chatPn,omitempty" json:"chatPn,omitempty"`
	ChatLID   string `bson:"chatLid,omitempty" json:"chatLid,omitempty"`
	// Name is the contact's push name for one-to-one chats (the last one
	// they sent); empty for groups until group names are tracked.
	Name    string `bson:"name,omitempty" json:"name"`
	IsGroup bool   `bson:"isGroup" json:"isGroup"`

	LastMessage *ChatMessage `bson:"lastMessage,omitempty" json:"lastMessage"`
	// LastActivity is the timestamp of the last message, Unix seconds.
	LastActivity int64 `bson:"lastActivity" json:"lastActivity"`
	// UnreadCount counts messages received since we last wrote in the chat
	// or read it on another device.
	UnreadCount  int   `bson:"unreadCount" json:"unreadCount"`
	MessageCount int64 `bson:"messageCount" json:"messageCount"`

	// ActivityKey orders chats by last activity: the last message's SortKey
	// and the chat id, unique per account.
	ActivityKey string    `bson:"activityKey" json:"-"`
	UpdatedAt   time.Time `bson:"updatedAt" json:"updatedAt"`
}

// ChatMessage summarises a chat's last message.
type ChatMessage struct {
	ID        string            `bson:"id" json:"id"`
	MessageID string            `bson:"messageId" json:"messageId"`
	From      string            `bson:"from" json:"from"`
	FromMe    bool              `bson:"fromMe" json:"fromMe"`
	Type      event.MessageType `bson:"type" json:"type"`
	Text      string            `bson:"text,omitempty" json:"text,omitempty"`
	Timestamp int64             `bson:"timestamp" json:"timestamp"`
}

// ChatDocID is the _id of a chat of an account.
func ChatDocID(accountID, chatID string) string { return accountID + ":" + chatID }

// countsAsChatMessage: reactions, edits, revokes and protocol messages
// change other messages; they are not a chat's last message.
func countsAsChatMessage(m *Message) bool {
	if m.Kind != event.KindMessageReceived && m.Kind != event.KindMessageSent {
		return false
	}
	switch m.Type {
	case event.TypeProtocol, event.TypeReaction, event.TypeEdit, event.TypeRevoke, event.TypePollVote:
		return false
	}
	return m.ChatID != "" && !m.IsStatus
}

// touchChat folds a newly stored message into its chat. The chat is a
// derived view: a failure is logged, never returned, so that it cannot make
// the message itself look unstored (and be redelivered forever).
func (s *Store) touchChat(ctx context.Context, m *Message) {
	if !countsAsChatMessage(m) {
		return
	}
	if err := s.foldIntoChat(ctx, m); err != nil {
		s.log.Warn("chat not updated", slog.String("account", m.AccountID), slog.String("chat", m.ChatID),
			slog.String("message", m.MessageID), slog.Any("error", err))
	}
}

func (s *Store) foldIntoChat(ctx context.Context, m *Message) error {
	id := ChatDocID(m.AccountID, m.ChatID)
	// The embedded engine's updates are read-modify-write without
	// isolation (even $inc), so this daemon's writes to one chat go one at
	// a time; an account is served by one daemon at a time.
	defer s.locks.lock(id)()
	var c Chat
	err := s.chats.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&c)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		c = Chat{ID: id, AccountID: m.AccountID, ChatID: m.ChatID, IsGroup: m.IsGroup}
	case err != nil:
		return fmt.Errorf("read chat %s: %w", id, err)
	}
	c.MessageCount++
	if m.ChatPN != "" {
		c.ChatPN = m.ChatPN
	}
	if m.ChatLID != "" {
		c.ChatLID = m.ChatLID
	}
	live := m.Source != event.SourceHistory
	switch {
	case m.FromMe && live:
		c.UnreadCount = 0 // writing in a chat means having read it
	case !m.FromMe && live:
		c.UnreadCount++
	}
	if !m.FromMe && !m.IsGroup && m.PushName != "" {
		c.Name = m.PushName
	}
	key := m.SortKey + "|" + m.ChatID
	if key > c.ActivityKey {
		c.ActivityKey = key
		c.LastActivity = m.Timestamp
		c.LastMessage = &ChatMessage{ID: m.ID, MessageID: m.MessageID, From: m.From, FromMe: m.FromMe, Type: m.Type, Text: m.Text, Timestamp: m.Timestamp}
	}
	c.UpdatedAt = s.now().UTC()
	if _, err := s.chats.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, c, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("write chat %s: %w", id, err)
	}
	return nil
}

func (s *Store) markChatRead(ctx context.Context, accountID, chatID string) {
	if chatID == "" {
		return
	}
	id := ChatDocID(accountID, chatID)
	defer s.locks.lock(id)()
	_, err := s.chats.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "unreadCount", Value: bson.D{{Key: "$gt", Value: 0}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "unreadCount", Value: 0}, {Key: "updatedAt", Value: s.now().UTC()}}}})
	if err != nil {
		s.log.Warn("chat not marked read", slog.String("account", accountID), slog.String("chat", chatID), slog.Any("error", err))
	}
}

// ChatQuery selects a page of one account's chats, by last activity.
type ChatQuery struct {
	AccountID string
	Cursor    string
	Limit     int
}

// ChatPage is one page of chats, most recently active first.
type ChatPage struct {
	Chats      []*Chat
	NextCursor string
}

// Chats lists an account's chats, most recently active first. A chat that
// becomes active while a client pages moves to the front: the walk may then
// miss it, as any activity-ordered list does, but never repeats one.
func (s *Store) Chats(ctx context.Context, q ChatQuery) (*ChatPage, error) {
	if q.Limit <= 0 || q.Limit > MaxLimit {
		q.Limit = DefaultLimit
	}
	f := bson.D{{Key: "accountId", Value: q.AccountID}}
	if q.Cursor != "" {
		key, err := decodeCursor(chatCursorPrefix, q.Cursor)
		if err != nil {
			return nil, err
		}
		f = append(f, bson.E{Key: "activityKey", Value: bson.D{{Key: "$lt", Value: key}}})
	}
	cur, err := s.chats.Find(ctx, f, options.Find().SetSort(bson.D{{Key: "activityKey", Value: -1}}).SetLimit(int64(q.Limit)+1))
	if err != nil {
		return nil, fmt.Errorf("list chats of %s: %w", q.AccountID, err)
	}
	out := make([]*Chat, 0, q.Limit+1)
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list chats of %s: %w", q.AccountID, err)
	}
	p := &ChatPage{Chats: out}
	if len(out) > q.Limit {
		p.Chats = out[:q.Limit]
		p.NextCursor = encodeCursor(chatCursorPrefix, p.Chats[q.Limit-1].ActivityKey)
	}
	return p, nil
}

// Chat reads one chat.
func (s *Store) Chat(ctx context.Context, accountID, chatID string) (*Chat, error) {
	var c Chat
	err := s.chats.FindOne(ctx, bson.D{{Key: "_id", Value: ChatDocID(accountID, chatID)}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("chat %s of %s: %w", chatID, accountID, ErrChatNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read chat %s of %s: %w", chatID, accountID, err)
	}
	return &c, nil
}

// purgeChats removes an account's chats with its messages.
func (s *Store) purgeChats(ctx context.Context, accountID string) error {
	if _, err := s.chats.DeleteMany(ctx, bson.D{{Key: "accountId", Value: accountID}}); err != nil {
		return fmt.Errorf("purge chats of %s: %w", accountID, err)
	}
	return nil
}
