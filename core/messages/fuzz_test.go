package messages

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/event"
)

// FuzzDecodeCursor: any cursor a client sends decodes to a sort key of the
// expected shape or ErrBadCursor, and a cursor we issue decodes back to its
// key.
func FuzzDecodeCursor(f *testing.F) {
	f.Add("", "")
	f.Add(encodeCursor(messageCursorPrefix, "001740000000:3EB0C0FFEE"), "001740000000:3EB0C0FFEE")
	f.Add("bTow", "m:0")
	f.Add("////", "..")
	f.Add("%00", "\x00")
	f.Fuzz(func(t *testing.T, cursor, key string) {
		got, err := decodeCursor(messageCursorPrefix, cursor)
		if err != nil && !errors.Is(err, ErrBadCursor) {
			t.Fatalf("decodeCursor(%q): %v", cursor, err)
		}
		if err == nil && !sortKeyShape.MatchString(got) {
			t.Fatalf("decodeCursor(%q) = %q, not a sort key", cursor, got)
		}
		if !sortKeyShape.MatchString(key) {
			return
		}
		back, err := decodeCursor(messageCursorPrefix, encodeCursor(messageCursorPrefix, key))
		if err != nil || back != key {
			t.Fatalf("round trip of %q: %q %v", key, back, err)
		}
	})
}

// FuzzEncodeDoc: whatever text, tags and annotations a message carries,
// its stored document is what bson.MarshalExtJSON writes.
func FuzzEncodeDoc(f *testing.F) {
	f.Add("plain", "k", "v", 1.5, int64(1767225600000))
	f.Add("ctl \x00\x1f \"\\ \u2028 \xff é 😀", "nul\x00", "\xfe", math.Inf(-1), int64(-62135596800001))
	f.Fuzz(func(t *testing.T, text, key, val string, f64 float64, ms int64) {
		at := time.UnixMilli(ms).UTC()
		m := &Message{ID: "a:" + text, Message: event.Message{Text: text, Location: &event.Location{Latitude: f64}},
			Tags: []string{val}, Annotations: map[string]string{key: val}, StoredAt: at, EditedAt: &at}
		want, werr := bson.MarshalExtJSON(m, false, false)
		got, gerr := encodeDoc(m)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("\n got  %s (%v)\n want %s (%v)", got, gerr, want, werr)
		}
	})
}
