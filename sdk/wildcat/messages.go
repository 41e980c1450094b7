package wildcat

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Message is one stored message of an account's history. The fields below
// are the ones most programs need; Raw holds the whole document as the API
// sent it (location, poll, contacts, link preview, …).
type Message struct {
	// ID is the stored id, {accountId}:{messageId}; MessageID is
	// WhatsApp's id, the one replies and GetMessage take.
	ID        string `json:"id"`
	AccountID string `json:"accountId"`
	MessageID string `json:"messageId"`
	ChatID    string `json:"chatId"`
	From      string `json:"from"`
	FromMe    bool   `json:"fromMe"`
	PushName  string `json:"pushName,omitempty"`
	// Timestamp is WhatsApp's, in Unix seconds.
	Timestamp int64  `json:"timestamp"`
	Type      string `json:"type"`
	Text      string `json:"text,omitempty"`
	Kind      string `json:"kind"`
	Source    string `json:"source"`
	// Status of an outbound message: pending, sent, delivered, read,
	// played, failed.
	Status      string            `json:"status,omitempty"`
	HasMedia    bool              `json:"hasMedia"`
	MediaID     string            `json:"mediaId,omitempty"`
	IsGroup     bool              `json:"isGroup"`
	Quoted      *Quoted           `json:"quoted,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Error       string            `json:"error,omitempty"`
	Edited      bool              `json:"edited"`
	Revoked     bool              `json:"revoked"`
	StoredAt    time.Time         `json:"storedAt"`

	Raw json.RawMessage `json:"-"`
}

// Quoted is the message a message replies to.
type Quoted struct {
	MessageID   string `json:"messageId"`
	ChatID      string `json:"chatId,omitempty"`
	Participant string `json:"participant,omitempty"`
	Type        string `json:"type,omitempty"`
	Text        string `json:"text,omitempty"`
}

// UnmarshalJSON keeps the whole document in Raw.
func (m *Message) UnmarshalJSON(b []byte) error {
	type plain Message
	if err := json.Unmarshal(b, (*plain)(m)); err != nil {
		return err
	}
	m.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// Time is the message's WhatsApp timestamp.
func (m *Message) Time() time.Time { return time.Unix(m.Timestamp, 0) }

// MessageQuery filters and pages an account's history, newest first.
type MessageQuery struct {
	ChatID string // a chat's JID or phone number
	From   string // a sender's JID or phone number
	Type   string // text, image, …
	FromMe *bool
	Since  time.Time
	Until  time.Time
	Text   string // case-insensitive substring of the text
	Cursor string // a page's NextCursor, for the page after it
	Limit  int    // items per page; 0: the daemon's default
}

func (q MessageQuery) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("chatId", q.ChatID)
	set("from", q.From)
	set("type", q.Type)
	if q.FromMe != nil {
		v.Set("fromMe", strconv.FormatBool(*q.FromMe))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	set("q", q.Text)
	set("cursor", q.Cursor)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// MessagePage is one page of history; NextCursor is "" on the last page.
type MessagePage struct {
	Messages   []Message `json:"messages"`
	NextCursor string    `json:"nextCursor"`
}

// MessagesPage returns one page of an account's history.
func (c *Client) MessagesPage(ctx context.Context, account string, q MessageQuery) (*MessagePage, error) {
	var p struct {
		Messages   []Message `json:"messages"`
		NextCursor *string   `json:"nextCursor"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + esc(account) + "/messages", query: q.values()}, &p); err != nil {
		return nil, err
	}
	page := &MessagePage{Messages: p.Messages}
	if p.NextCursor != nil {
		page.NextCursor = *p.NextCursor
	}
	return page, nil
}

// Messages iterates over every message matching q, newest first, fetching
// pages as it goes; it stops at the first error, which it yields.
func (c *Client) Messages(ctx context.Context, account string, q MessageQuery) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for {
			p, err := c.MessagesPage(ctx, account, q)
			if err != nil {
				yield(Message{}, err)
				return
			}
			for _, m := range p.Messages {
				if !yield(m, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			q.Cursor = p.NextCursor
		}
	}
}

// Message returns one stored message by its WhatsApp id.
func (c *Client) Message(ctx context.Context, account, messageID string) (*Message, error) {
	var m Message
	if err := c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + esc(account) + "/messages/" + esc(messageID)}, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Chat is one conversation of an account.
type Chat struct {
	ID           string          `json:"id"`
	AccountID    string          `json:"accountId"`
	Name         string          `json:"name"`
	IsGroup      bool            `json:"isGroup"`
	LastActivity int64           `json:"lastActivity"`
	UnreadCount  int             `json:"unreadCount"`
	MessageCount int64           `json:"messageCount"`
	LastMessage  json.RawMessage `json:"lastMessage,omitempty"`
	UpdatedAt    time.Time       `json:"updatedAt"`
}

// ChatPage is one page of chats, most recently active first.
type ChatPage struct {
	Chats      []Chat `json:"chats"`
	NextCursor string `json:"nextCursor"`
}

// ChatsPage returns one page of an account's chats; cursor is the previous
// page's NextCursor ("" for the first), limit 0 the daemon's default.
func (c *Client) ChatsPage(ctx context.Context, account, cursor string, limit int) (*ChatPage, error) {
	v := url.Values{}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var p struct {
		Chats      []Chat  `json:"chats"`
		NextCursor *string `json:"nextCursor"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + esc(account) + "/chats", query: v}, &p); err != nil {
		return nil, err
	}
	page := &ChatPage{Chats: p.Chats}
	if p.NextCursor != nil {
		page.NextCursor = *p.NextCursor
	}
	return page, nil
}

// Chat returns one chat by its JID.
func (c *Client) Chat(ctx context.Context, account, chatID string) (*Chat, error) {
	var ch Chat
	if err := c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + esc(account) + "/chats/" + esc(chatID)}, &ch); err != nil {
		return nil, err
	}
	return &ch, nil
}

// SendRequest is a message to send. Set To and one of Text, Media (with an
// optional Caption); ReplyTo quotes a message by its WhatsApp id. Other
// kinds (location, contacts, reactions, edits, revokes) go in Extra, keyed
// as the API documents them.
type SendRequest struct {
	// To is a phone number in international form (+15551234567) or a JID.
	To       string         `json:"to,omitempty"`
	Text     string         `json:"text,omitempty"`
	Media    *SendMedia     `json:"media,omitempty"`
	Caption  string         `json:"caption,omitempty"`
	ReplyTo  string         `json:"replyTo,omitempty"`
	Mentions []string       `json:"mentions,omitempty"`
	Extra    map[string]any `json:"-"`
	// IdempotencyKey makes a retried send (same key, same body) answer the
	// first send's result instead of sending twice.
	IdempotencyKey string `json:"-"`
}

// MarshalJSON merges Extra into the body.
func (s SendRequest) MarshalJSON() ([]byte, error) {
	type plain SendRequest
	b, err := json.Marshal(plain(s))
	if err != nil || len(s.Extra) == 0 {
		return b, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range s.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

// SendMedia names the bytes to send in exactly one way: Data (the bytes;
// sent base64), URL (the daemon fetches it) or MediaID (an upload).
type SendMedia struct {
	Data     []byte `json:"data,omitempty"`
	URL      string `json:"url,omitempty"`
	MediaID  string `json:"mediaId,omitempty"`
	Mimetype string `json:"mimetype,omitempty"`
	Filename string `json:"filename,omitempty"`
	// Kind is image, video, gif, audio, voice, document or sticker; by
	// default it follows from Mimetype.
	Kind string `json:"kind,omitempty"`
}

// SendAccepted is a send the daemon has stored and queued.
type SendAccepted struct {
	ID        string `json:"id"`
	MessageID string `json:"messageId"`
	Status    string `json:"status"`
	// ScheduledAt is when the per-account pacing lets it go out.
	ScheduledAt time.Time `json:"scheduledAt"`
}

// Send queues a message from account. It returns once the message is
// stored; its status then moves on (sent, delivered, read) — read it with
// Message or watch message.status events.
func (c *Client) Send(ctx context.Context, account string, in SendRequest) (*SendAccepted, error) {
	var h http.Header
	if in.IdempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {in.IdempotencyKey}}
	}
	var out SendAccepted
	if err := c.do(ctx, request{method: http.MethodPost, path: "/accounts/" + esc(account) + "/messages", body: in, header: h}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SendText sends a text message.
func (c *Client) SendText(ctx context.Context, account, to, text string) (*SendAccepted, error) {
	return c.Send(ctx, account, SendRequest{To: to, Text: text})
}

// Reply sends text quoting the message replyTo (a WhatsApp message id).
func (c *Client) Reply(ctx context.Context, account, to, replyTo, text string) (*SendAccepted, error) {
	return c.Send(ctx, account, SendRequest{To: to, Text: text, ReplyTo: replyTo})
}

// SendMedia sends media with an optional caption.
func (c *Client) SendMedia(ctx context.Context, account, to string, media SendMedia, caption string) (*SendAccepted, error) {
	return c.Send(ctx, account, SendRequest{To: to, Media: &media, Caption: caption})
}

// MarshalJSON writes the document as the API sent it (Raw), or the fields
// above for a Message made in Go.
func (m Message) MarshalJSON() ([]byte, error) {
	if len(m.Raw) > 0 {
		return m.Raw, nil
	}
	type plain Message
	return json.Marshal(plain(m))
}
