package messages

import (
	"errors"
	"testing"
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
