package messages_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func pending(id, text string) *messages.Message {
	return &messages.Message{
		Message: event.Message{AccountID: "acme", MessageID: id, ChatID: "15550001111@s.whatsapp.net", From: "15550009999@s.whatsapp.net",
			Timestamp: t0.Unix(), Type: event.TypeText, Text: text, MediaURL: "/v1/media/m1"},
		Kind: event.KindMessageSent, Source: event.SourceAPI, MediaID: "m1",
	}
}

// TestPendingThenSent: the driver's message.sent completes the placeholder
// (new downstream once), keeps its order key and media, and a redelivery
// changes nothing.
func TestPendingThenSent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		p := pending("S9", "out")
		if err := s.StorePending(ctx(t), p); err != nil {
			t.Fatal(err)
		}
		if err := s.StorePending(ctx(t), pending("S9", "again")); !errors.Is(err, messages.ErrExists) {
			t.Fatalf("second pending: %v", err)
		}
		got, _ := s.Get(ctx(t), "acme", "S9")
		if got.Status != messages.StatusPending || got.SortKey == "" {
			t.Fatalf("pending: %+v", got)
		}
		ev := msgEvent(event.KindMessageSent, "S9", "out", true)
		ev.Message.Timestamp = t0.Unix() + 2 // WhatsApp's clock differs a little
		for i, want := range []bool{true, false} {
			fresh, err := s.Record(ctx(t), ev)
			if err != nil || fresh != want {
				t.Fatalf("Record #%d = %v, %v; want %v", i, fresh, err, want)
			}
		}
		sent, _ := s.Get(ctx(t), "acme", "S9")
		if sent.Status != messages.StatusSent || len(sent.RawMessage) == 0 || sent.SortKey != got.SortKey || sent.MediaID != "m1" ||
			sent.Timestamp != t0.Unix()+2 || sent.Source != event.SourceAPI {
			t.Fatalf("sent: %+v", sent)
		}
		if ok, err := s.MarkFailed(ctx(t), "acme", "S9", "late failure"); ok || err != nil {
			t.Fatalf("MarkFailed of a sent message: %v %v", ok, err)
		}

		if err := s.StorePending(ctx(t), pending("F1", "doomed")); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.MarkFailed(ctx(t), "acme", "F1", "no network"); !ok || err != nil {
			t.Fatalf("MarkFailed: %v %v", ok, err)
		}
		failed, _ := s.Get(ctx(t), "acme", "F1")
		if failed.Status != messages.StatusFailed || failed.Error != "no network" {
			t.Fatalf("failed: %+v", failed)
		}
	})
}

func TestChatsFollowMessages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		rec := func(id string, fromMe bool, ts int64, src event.Source) {
			t.Helper()
			ev := msgEvent(event.KindMessageReceived, id, "text "+id, fromMe)
			ev.Message.Timestamp, ev.Source, ev.Message.PushName = ts, src, "Ann"
			if _, err := s.Record(ctx(t), ev); err != nil {
				t.Fatal(err)
			}
		}
		rec("A", false, 100, event.SourcePhone)
		rec("B", false, 101, event.SourcePhone)
		rec("H", false, 50, event.SourceHistory) // old, synced: neither last nor unread
		c, err := s.Chat(ctx(t), "acme", "15550001111@s.whatsapp.net")
		if err != nil || c.UnreadCount != 2 || c.MessageCount != 3 || c.LastMessage.MessageID != "B" || c.Name != "Ann" || c.LastActivity != 101 {
			t.Fatalf("chat %+v %v", c, err)
		}
		rec("C", true, 102, event.SourcePhone)
		if c, _ := s.Chat(ctx(t), "acme", "15550001111@s.whatsapp.net"); c.UnreadCount != 0 || c.LastMessage.MessageID != "C" {
			t.Fatalf("after our reply: %+v", c)
		}
		if _, err := s.Chat(ctx(t), "acme", "nobody@s.whatsapp.net"); !errors.Is(err, messages.ErrChatNotFound) {
			t.Fatalf("unknown chat: %v", err)
		}
	})
}

func TestHistoryCursor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		for i := range 9 {
			ev := msgEvent(event.KindMessageReceived, fmt.Sprintf("K%d", i), "x", false)
			ev.Message.Timestamp = t0.Unix() + int64(i/3) // three per second
			if _, err := s.Record(ctx(t), ev); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		q := messages.Query{AccountID: "acme", Limit: 4}
		for {
			p, err := s.History(ctx(t), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range p.Messages {
				got = append(got, m.MessageID)
			}
			if p.NextCursor == "" {
				break
			}
			q.Cursor = p.NextCursor
		}
		if fmt.Sprint(got) != "[K8 K7 K6 K5 K4 K3 K2 K1 K0]" {
			t.Fatalf("walk: %v", got)
		}
		for _, bad := range []string{"x", "bTF8", "YzF8MDAwMDAwMDAwMDAxOkE"} {
			if _, err := s.History(ctx(t), messages.Query{AccountID: "acme", Cursor: bad}); !errors.Is(err, messages.ErrBadCursor) {
				t.Errorf("cursor %q: %v", bad, err)
			}
		}
		if k := messages.SortKey(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), "ID"); k != "001767225600:ID" {
			t.Fatalf("SortKey %q", k)
		}
	})
}

// TestFailStalePending: placeholders older than the cutoff (their daemon
// died mid-send) become failed with the reason; newer ones, and messages
// that completed, are left alone.
func TestFailStalePending(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		for _, id := range []string{"P1", "P2", "DONE"} {
			if err := s.StorePending(ctx(t), pending(id, "x")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Record(ctx(t), msgEvent(event.KindMessageSent, "DONE", "x", true)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.FailStalePending(ctx(t), time.Now().Add(-time.Minute), "gone"); err != nil || n != 0 {
			t.Fatalf("a cutoff before every message marked %d (%v)", n, err)
		}
		n, err := s.FailStalePending(ctx(t), time.Now().Add(time.Minute), "the daemon stopped before sending")
		if err != nil || n != 2 {
			t.Fatalf("marked %d (%v), want the 2 placeholders", n, err)
		}
		for id, want := range map[string]messages.Status{"P1": messages.StatusFailed, "P2": messages.StatusFailed, "DONE": messages.StatusSent} {
			m, err := s.Get(ctx(t), "acme", id)
			if err != nil || m.Status != want {
				t.Fatalf("%s: %v %v, want %s", id, m.Status, err, want)
			}
			if want == messages.StatusFailed && m.Error != "the daemon stopped before sending" {
				t.Fatalf("%s: reason %q", id, m.Error)
			}
		}
	})
}
