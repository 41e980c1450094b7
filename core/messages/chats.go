package messages

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// ErrChatNotFound: the account has no message in that chat.
var ErrChatNotFound = errors.New("chat not found")

// Chat is one chat of an account (a document of the chats collection, a
// row of the chats table), kept up to date as its messages are stored, so
// listing chats reads one row per chat instead of aggregating the history.
type Chat struct {
	// ID is {accountId}:{chatId}.
	ID        string `bson:"_id" json:"-"`
	AccountID string `bson:"accountId" json:"accountId"`
	ChatID    string `bson:"chatId" json:"id"`
	ChatPN    string `bson:"chatPn,omitempty" json:"chatPn,omitempty"`
	ChatLID   string `bson:"chatLid,omitempty" json:"chatLid,omitempty"`
	// Name is the contact's push name for one-to-one chats (the last one
	// they sent), a group's subject for groups (from its group.update
	// events, so it follows every change).
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
	before := ""
	if q.Cursor != "" {
		key, err := decodeCursor(chatCursorPrefix, q.Cursor)
		if err != nil {
			return nil, err
		}
		before = key
	}
	out, err := s.b.Chats(ctx, q.AccountID, before, q.Limit+1)
	if err != nil {
		return nil, fmt.Errorf("list chats of %s: %w", q.AccountID, err)
	}
	p := &ChatPage{Chats: append([]*Chat{}, out...)}
	if len(out) > q.Limit {
		p.Chats = out[:q.Limit]
		p.NextCursor = encodeCursor(chatCursorPrefix, p.Chats[q.Limit-1].ActivityKey)
	}
	return p, nil
}

// Chat reads one chat.
func (s *Store) Chat(ctx context.Context, accountID, chatID string) (*Chat, error) {
	return s.b.Chat(ctx, accountID, chatID)
}
