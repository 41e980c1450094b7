package event

import (
	"strings"
	"testing"
	"time"
)

func TestIDsAreDeterministicAndDistinct(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	g := &GroupUpdate{JID: "1203630@g.us", Name: "Ops"}
	h := &HistorySync{Type: "recent", ChunkOrder: 2, Progress: 40}
	build := func() []string {
		return []string{
			MessageEventID("acme", "3EB0AA"),
			StatusEventID("acme", "3EB0AA", StatusRead, "111@s.whatsapp.net"),
			StatusEventID("acme", "3EB0AA", StatusRead, "222@s.whatsapp.net"),
			StatusEventID("acme", "3EB0AA", StatusDelivered, "111@s.whatsapp.net"),
			StatusEventID("acme", "3EB0AA", StatusSent, ""),
			QREventID("acme", "2@abc,def"),
			QREventID("acme", "2@abc,deg"),
			PairingCodeEventID("acme", "ABCD-EFGH"),
			AccountEventID("acme", KindAccountConnected, at),
			AccountEventID("acme", KindAccountDisconnected, at),
			AccountEventID("acme", KindAccountConnected, at.Add(time.Millisecond)),
			PresenceEventID("acme", "111@s.whatsapp.net", true, at),
			PresenceEventID("acme", "111@s.whatsapp.net", false, at),
			TypingEventID("acme", "111@s.whatsapp.net", "111@s.whatsapp.net", TypingComposing, at),
			GroupEventID("acme", at, g),
			GroupEventID("acme", at, &GroupUpdate{JID: "1203630@g.us", Name: "Ops2"}),
			HistoryEventID("acme", h, []string{"a", "b"}),
			HistoryEventID("acme", h, []string{"ab"}),
			MessageEventID("other", "3EB0AA"),
		}
	}
	first, second := build(), build()
	seen := map[string]int{}
	for i, id := range first {
		if id != second[i] {
			t.Errorf("id %d not deterministic: %q vs %q", i, id, second[i])
		}
		if !strings.HasPrefix(id, "acme:") && !strings.HasPrefix(id, "other:") {
			t.Errorf("id %q does not start with its account", id)
		}
		if j, dup := seen[id]; dup {
			t.Errorf("ids %d and %d collide: %q", j, i, id)
		}
		seen[id] = i
	}
	if got, want := MessageEventID("acme", "3EB0AA"), "acme:3EB0AA"; got != want {
		t.Errorf("MessageEventID = %q, want %q", got, want)
	}
	if got, want := StatusEventID("acme", "X", StatusRead, "1@s.whatsapp.net"), "acme:status:X:read:1@s.whatsapp.net"; got != want {
		t.Errorf("StatusEventID = %q, want %q", got, want)
	}
}

func TestDigestSeparatesParts(t *testing.T) {
	if Digest("ab", "c") == Digest("a", "bc") {
		t.Error("Digest must not depend only on the concatenation")
	}
	if len(Digest("x")) != 16 {
		t.Errorf("Digest length = %d, want 16", len(Digest("x")))
	}
}
