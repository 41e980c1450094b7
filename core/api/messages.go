package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
)

// MessageStore reads history and chats; the messages Store implements it.
type MessageStore interface {
	History(ctx context.Context, q messages.Query) (*messages.Page, error)
	Get(ctx context.Context, accountID, messageID string) (*messages.Message, error)
	Chats(ctx context.Context, q messages.ChatQuery) (*messages.ChatPage, error)
	Chat(ctx context.Context, accountID, chatID string) (*messages.Chat, error)
}

type messageRoutes struct {
	accounts Accounts
	store    MessageStore
	sender   Sender
	media    MediaStore
	fetcher  MediaFetcher
}

// messageTypes are the values the type filter accepts.
var messageTypes = []event.MessageType{
	event.TypeText, event.TypeImage, event.TypeVideo, event.TypeGIF, event.TypePTV, event.TypeAudio, event.TypeVoice,
	event.TypeDocument, event.TypeSticker, event.TypeLocation, event.TypeLiveLocation, event.TypeContact, event.TypeContacts,
	event.TypeReaction, event.TypePoll, event.TypePollVote, event.TypeEdit, event.TypeRevoke, event.TypeProtocol, event.TypeUnknown,
}

// messagePage is the wire form of a page; NextCursor is null on the last.
type messagePage struct {
	Messages   []*messages.Message `json:"messages"`
	NextCursor *string             `json:"nextCursor"`
}

// list answers GET /v1/accounts/{id}/messages.
func (h *messageRoutes) list(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	qs := r.URL.Query()
	if err := onlyParams(qs, "chatId", "from", "type", "fromMe", "since", "until", "q", "cursor", "limit"); err != nil {
		return err
	}
	q := messages.Query{AccountID: id, Cursor: qs.Get("cursor")}
	var err error
	if q.ChatID, err = jidParam(qs, "chatId"); err != nil {
		return err
	}
	if q.From, err = jidParam(qs, "from"); err != nil {
		return err
	}
	if v := qs.Get("type"); v != "" {
		if !slices.Contains(messageTypes, event.MessageType(v)) {
			return Invalid("type", "%q is not a message type (%s)", v, typeList())
		}
		q.Type = event.MessageType(v)
	}
	if v := qs.Get("fromMe"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Invalid("fromMe", "expected true or false, got %q", v)
		}
		q.FromMe = &b
	}
	if q.Since, err = timeParam(qs, "since"); err != nil {
		return err
	}
	if q.Until, err = timeParam(qs, "until"); err != nil {
		return err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return Invalid("until", "must be after since")
	}
	if q.Text = qs.Get("q"); len(q.Text) > 256 {
		return Invalid("q", "must be at most 256 bytes")
	}
	if !utf8.ValidString(q.Text) {
		return Invalid("q", "must be UTF-8 text")
	}
	if q.Limit, err = limitParam(qs); err != nil {
		return err
	}
	if _, err := h.accounts.GetAccount(r.Context(), id); err != nil {
		return accountError(err)
	}
	page, err := h.store.History(r.Context(), q)
	if err != nil {
		return listError(err)
	}
	for _, m := range page.Messages {
		m.RawMessage = nil // the single-message read has it; pages stay lean
	}
	return WriteJSON(w, http.StatusOK, messagePage{Messages: page.Messages, NextCursor: optCursor(page.NextCursor)})
}

// get answers GET /v1/accounts/{id}/messages/{messageId}.
func (h *messageRoutes) get(w http.ResponseWriter, r *http.Request) error {
	v := mux.Vars(r)
	if _, err := h.accounts.GetAccount(r.Context(), v["id"]); err != nil {
		return accountError(err)
	}
	m, err := h.store.Get(r.Context(), v["id"], v["messageId"])
	if errors.Is(err, messages.ErrNotFound) {
		return NotFound("message", v["messageId"])
	}
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, m)
}

type chatPage struct {
	Chats      []*messages.Chat `json:"chats"`
	NextCursor *string          `json:"nextCursor"`
}

// chats answers GET /v1/accounts/{id}/chats.
func (h *messageRoutes) chats(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	qs := r.URL.Query()
	if err := onlyParams(qs, "cursor", "limit"); err != nil {
		return err
	}
	limit, err := limitParam(qs)
	if err != nil {
		return err
	}
	if _, err := h.accounts.GetAccount(r.Context(), id); err != nil {
		return accountError(err)
	}
	page, err := h.store.Chats(r.Context(), messages.ChatQuery{AccountID: id, Cursor: qs.Get("cursor"), Limit: limit})
	if err != nil {
		return listError(err)
	}
	return WriteJSON(w, http.StatusOK, chatPage{Chats: page.Chats, NextCursor: optCursor(page.NextCursor)})
}

// chat answers GET /v1/accounts/{id}/chats/{chatId}.
func (h *messageRoutes) chat(w http.ResponseWriter, r *http.Request) error {
	v := mux.Vars(r)
	if _, err := h.accounts.GetAccount(r.Context(), v["id"]); err != nil {
		return accountError(err)
	}
	chatID, err := normaliseJID(v["chatId"])
	if err != nil {
		return NotFound("chat", v["chatId"])
	}
	c, err := h.store.Chat(r.Context(), v["id"], chatID)
	if errors.Is(err, messages.ErrChatNotFound) {
		return NotFound("chat", v["chatId"])
	}
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, c)
}

func listError(err error) error {
	if errors.Is(err, messages.ErrBadCursor) {
		return Invalid("cursor", "%s", err.Error())
	}
	if errors.Is(err, messages.ErrSearchOff) {
		return Invalid("q", "%s: the stored text is encrypted; leave q out", err.Error())
	}
	return err
}

func optCursor(c string) *string {
	if c == "" {
		return nil
	}
	return &c
}

// onlyParams refuses query parameters the route does not know, so a typo
// ("chat_id") is an error rather than a silently unfiltered answer.
func onlyParams(qs url.Values, known ...string) error {
	for k, vs := range qs {
		if !slices.Contains(known, k) {
			return Invalid(k, "unknown query parameter %q (known: %s)", k, strings.Join(known, ", "))
		}
		if len(vs) > 1 {
			return Invalid(k, "given %d times; give it once", len(vs))
		}
	}
	return nil
}

func limitParam(qs url.Values) (int, error) {
	v := qs.Get("limit")
	if v == "" {
		return messages.DefaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > messages.MaxLimit {
		return 0, Invalid("limit", "must be a whole number from 1 to %d, got %q", messages.MaxLimit, v)
	}
	return n, nil
}

// timeParam reads RFC 3339 or Unix seconds.
func timeParam(qs url.Values, name string) (time.Time, error) {
	v := qs.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, Invalid(name, "expected an RFC 3339 time (2025-03-01T12:00:00Z) or Unix seconds, got %q", v)
	}
	return t, nil
}

func jidParam(qs url.Values, name string) (string, error) {
	v := qs.Get(name)
	if v == "" {
		return "", nil
	}
	j, err := normaliseJID(v)
	if err != nil {
		return "", Invalid(name, "%s", err.Error())
	}
	return j, nil
}

// normaliseJID turns a phone number in international form (E.164, with or
// without +, spaces or dashes) into its WhatsApp user JID, and checks a
// JID given as one.
func normaliseJID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "@") {
		d, err := phoneDigits(s)
		if err != nil {
			return "", err
		}
		s = d
	}
	j, err := whatsapp.ParseRecipient(s)
	if err != nil {
		return "", fmt.Errorf("%q is neither a phone number with country code (+15551234567) nor a WhatsApp JID", s)
	}
	return j.String(), nil
}

func typeList() string {
	names := make([]string, len(messageTypes))
	for i, t := range messageTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}
