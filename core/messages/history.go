package messages

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/bounded"
	"github.com/wildcathub/wildcat/core/event"
)

// SortKey is the order of history, newest last: WhatsApp's timestamp
// (zero-padded Unix seconds, so strings compare like numbers) then the
// message id to break ties. Packing both into one field makes "the page
// after this cursor" a single range condition (sortKey < cursor) on one
// field, which both engines answer from their (account, chat, sortKey)
// index; a compound cursor would need an OR. The key is fixed when the message is first
// stored: a message never moves while a client pages.
func SortKey(timestamp int64, messageID string) string {
	return fmt.Sprintf("%012d:%s", max(timestamp, 0), messageID)
}

var sortKeyShape = bounded.MustCompile(`^[0-9]{12}:[^\x00]+$`, 14, 269)

// Cursors are opaque to clients: a version and kind prefix, base64url. A
// chat cursor is refused as a message cursor and the other way round.
const (
	messageCursorPrefix = "m1|"
	chatCursorPrefix    = "c1|"
)

// ErrBadCursor: the cursor was not made by this server for this listing.
var ErrBadCursor = errors.New("not a cursor from a previous page of this listing")

func encodeCursor(prefix, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + key))
}

func decodeCursor(prefix, cursor string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", ErrBadCursor
	}
	key, ok := strings.CutPrefix(string(raw), prefix)
	if !ok || !sortKeyShape.MatchString(key) {
		return "", ErrBadCursor
	}
	return key, nil
}

// MaxLimit is the largest page; DefaultLimit the page size when none is asked.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Query selects a page of one account's history. Zero fields match
// everything.
type Query struct {
	AccountID string
	ChatID    string
	// From matches the sender in any form WhatsApp gave: from, fromPn or
	// fromLid.
	From   string
	Type   event.MessageType
	FromMe *bool
	// Since is inclusive, Until exclusive; both on WhatsApp's timestamp.
	Since, Until time.Time
	// Text matches messages whose text or caption contains it, ignoring
	// case. On SQLite a Text of three characters or more is answered by the
	// trigram index; a shorter one by a LIKE over the rows the other
	// filters select (which folds ASCII letters only).
	Text string
	// Cursor continues after the last message of a previous page.
	Cursor string
	Limit  int
}

// Page is one page of history, newest first. NextCursor is empty on the
// last page.
type Page struct {
	Messages   []*Message
	NextCursor string
}

// History returns a page of messages matching q, newest first. A message
// stored while a client pages sorts either before the page it has reached
// (new messages are newer) or where the cursor has not been yet, so the
// pages of one walk never repeat or skip a message. Its messages leave the
// raw proto out (Get has it): a page of large messages would otherwise
// carry each one twice.
func (s *Store) History(ctx context.Context, q Query) (*Page, error) {
	if q.Limit <= 0 || q.Limit > MaxLimit {
		q.Limit = DefaultLimit
	}
	if q.Text != "" && s.keys.Enabled() {
		return nil, ErrSearchOff
	}
	before := ""
	if q.Cursor != "" {
		key, err := decodeCursor(messageCursorPrefix, q.Cursor)
		if err != nil {
			return nil, err
		}
		before = key
	}
	// One more than the page tells whether there is a next page without a
	// count.
	out, err := s.b.History(ctx, q, before, q.Limit+1)
	if err != nil {
		return nil, fmt.Errorf("list messages of %s: %w", q.AccountID, err)
	}
	if out == nil {
		out = []*Message{} // an empty page is [] on every engine, not null
	}
	for _, m := range out {
		withPollNames(m)
	}
	p := &Page{Messages: out}
	if len(out) > q.Limit {
		p.Messages = out[:q.Limit]
		p.NextCursor = encodeCursor(messageCursorPrefix, p.Messages[q.Limit-1].SortKey)
	}
	return p, nil
}
