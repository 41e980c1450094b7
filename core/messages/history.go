package messages

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/event"
)

// SortKey is the order of history, newest last: WhatsApp's timestamp
// (zero-padded Unix seconds, so strings compare like numbers) then the
// message id to break ties. Packing both into one field makes "the page
// after this cursor" a single range condition ($lt) on one field, which
// MongoDB answers from the {accountId, chatId, sortKey} index; a compound
// cursor would need an $or. The key is fixed when the message is first
// stored: a message never moves while a client pages.
func SortKey(timestamp int64, messageID string) string {
	return fmt.Sprintf("%012d:%s", max(timestamp, 0), messageID)
}

var sortKeyShape = regexp.MustCompile(`^[0-9]{12}:[^\x00]{1,256}$`)

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
	// Text matches messages whose text or caption contains it, ignoring case.
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

func (q Query) filter() (bson.D, error) {
	f := bson.D{{Key: "accountId", Value: q.AccountID}}
	if q.ChatID != "" {
		f = append(f, bson.E{Key: "chatId", Value: q.ChatID})
	}
	if q.From != "" {
		f = append(f, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "from", Value: q.From}},
			bson.D{{Key: "fromPn", Value: q.From}},
			bson.D{{Key: "fromLid", Value: q.From}},
		}})
	}
	if q.Type != "" {
		f = append(f, bson.E{Key: "type", Value: q.Type})
	}
	if q.FromMe != nil {
		f = append(f, bson.E{Key: "fromMe", Value: *q.FromMe})
	}
	ts := bson.D{}
	if !q.Since.IsZero() {
		ts = append(ts, bson.E{Key: "$gte", Value: q.Since.Unix()})
	}
	if !q.Until.IsZero() {
		ts = append(ts, bson.E{Key: "$lt", Value: q.Until.Unix()})
	}
	if len(ts) > 0 {
		f = append(f, bson.E{Key: "timestamp", Value: ts})
	}
	if q.Text != "" {
		f = append(f, bson.E{Key: "text", Value: bson.D{{Key: "$regex", Value: regexp.QuoteMeta(q.Text)}, {Key: "$options", Value: "i"}}})
	}
	if q.Cursor != "" {
		key, err := decodeCursor(messageCursorPrefix, q.Cursor)
		if err != nil {
			return nil, err
		}
		f = append(f, bson.E{Key: "sortKey", Value: bson.D{{Key: "$lt", Value: key}}})
	}
	return f, nil
}

// History returns a page of messages matching q, newest first. A message
// stored while a client pages sorts either before the page it has reached
// (new messages are newer) or where the cursor has not been yet, so the
// pages of one walk never repeat or skip a message.
func (s *Store) History(ctx context.Context, q Query) (*Page, error) {
	if q.Limit <= 0 || q.Limit > MaxLimit {
		q.Limit = DefaultLimit
	}
	f, err := q.filter()
	if err != nil {
		return nil, err
	}
	// One more than the page tells whether there is a next page without a
	// count over the collection.
	cur, err := s.c.Find(ctx, f, options.Find().
		SetSort(bson.D{{Key: "sortKey", Value: -1}}).
		SetLimit(int64(q.Limit)+1))
	if err != nil {
		return nil, fmt.Errorf("list messages of %s: %w", q.AccountID, err)
	}
	out := make([]*Message, 0, q.Limit+1)
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list messages of %s: %w", q.AccountID, err)
	}
	p := &Page{Messages: out}
	if len(out) > q.Limit {
		p.Messages = out[:q.Limit]
		p.NextCursor = encodeCursor(messageCursorPrefix, p.Messages[q.Limit-1].SortKey)
	}
	return p, nil
}
