package messages_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// The pipeline's trace rides on the done mark: stored with it, read back
// as stored, absent (ErrNoTrace) before it and after the purge, and the
// message itself is untouched by both.
func TestTraceIsStoredWithTheMarkAndPurged(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		ev := msgEvent(event.KindMessageReceived, "T1", "hello", false)
		other := msgEvent(event.KindMessageReceived, "T2", "other", false)
		for _, x := range []*event.Event{ev, other} {
			if _, err := s.Record(ctx(t), x); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.Trace(ctx(t), "acme", "T1"); !errors.Is(err, messages.ErrNoTrace) {
			t.Fatalf("trace before the mark: %v, want ErrNoTrace", err)
		}
		if _, _, err := s.Trace(ctx(t), "acme", "nope"); !errors.Is(err, messages.ErrNotFound) {
			t.Fatalf("trace of a message not stored: %v, want ErrNotFound", err)
		}
		before := time.Now().Add(-time.Second)
		trace := `{"eventId":"acme:T1","stages":[{"name":"rules"}]}`
		if err := s.MarkProcessedTraced(ctx(t), ev.ID, []byte(trace)); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkProcessed(ctx(t), other.ID); err != nil {
			t.Fatal(err)
		}
		got, at, err := s.Trace(ctx(t), "acme", "T1")
		if err != nil || string(got) != trace || at.Before(before) {
			t.Fatalf("trace %q at %v (%v), want %q", got, at, err, trace)
		}
		if pending, err := s.PipelinePending(ctx(t), ev.ID); err != nil || pending {
			t.Fatalf("the traced mark did not mark the event done: pending %v (%v)", pending, err)
		}
		// The message reads as before, alone and in a history page.
		if m, err := s.Get(ctx(t), "acme", "T1"); err != nil || m.Text != "hello" {
			t.Fatalf("traced message: %+v (%v)", m, err)
		}
		if p, err := s.History(ctx(t), messages.Query{AccountID: "acme", Limit: 10}); err != nil || len(p.Messages) != 2 {
			t.Fatalf("history with a traced message: %+v (%v)", p, err)
		}
		if _, _, err := s.Trace(ctx(t), "acme", "T2"); !errors.Is(err, messages.ErrNoTrace) {
			t.Fatalf("untraced mark: %v, want ErrNoTrace", err)
		}

		if n, err := s.PurgeTraces(ctx(t), before); err != nil || n != 0 {
			t.Fatalf("purge of traces before the one stored: %d (%v), want 0", n, err)
		}
		if n, err := s.PurgeTraces(ctx(t), time.Now().Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("purge: %d (%v), want 1", n, err)
		}
		if _, _, err := s.Trace(ctx(t), "acme", "T1"); !errors.Is(err, messages.ErrNoTrace) {
			t.Fatalf("trace after the purge: %v, want ErrNoTrace", err)
		}
		m, err := s.Get(ctx(t), "acme", "T1")
		if err != nil || m.Text != "hello" {
			t.Fatalf("message after the purge: %+v (%v)", m, err)
		}
		if pending, err := s.PipelinePending(ctx(t), ev.ID); err != nil || pending {
			t.Fatalf("the purge undid the done mark: pending %v (%v)", pending, err)
		}
	})
}

// A trace holds rule output (reply texts, annotations): with encryption at
// rest it is sealed like the message's text, and reads back through the
// store.
func TestTraceIsSealed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		v.s.Seal(sealtest.Ring(t, "", sealtest.Key(t, "k1")))
		ev := msgEvent(event.KindMessageReceived, "T3", "hi", false)
		if _, err := v.s.Record(ctx(t), ev); err != nil {
			t.Fatal(err)
		}
		trace := `{"stages":[{"actions":[{"type":"reply","text":"TRACEMARK-5c1e"}]}]}`
		if err := v.s.MarkProcessedTraced(ctx(t), ev.ID, []byte(trace)); err != nil {
			t.Fatal(err)
		}
		sealtest.NoPlaintext(t, string(e), v.rawDump(t), "TRACEMARK-5c1e")
		got, _, err := v.s.Trace(ctx(t), "acme", "T3")
		if err != nil || string(got) != trace {
			t.Fatalf("trace %q (%v), want %q", got, err, trace)
		}
	})
}
