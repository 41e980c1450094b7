package messages_test

import (
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestUnprocessedListsRecordedUntilMarked: Record stores pipelineDone
// false, so the message is listed, rebuilt as the event Record stored;
// MarkProcessed takes it off; pages go by storedAt then _id; documents
// without the field (stored before it existed) are not listed.
func TestUnprocessedListsRecordedUntilMarked(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		s := v.s
		ev := msgEvent(event.KindMessageReceived, "M1", "hello", false)
		if _, err := s.Record(ctx(t), ev); err != nil {
			t.Fatal(err)
		}
		evs, next, err := s.Unprocessed(ctx(t), "acme", "", 10)
		if err != nil || len(evs) != 1 || next == "" {
			t.Fatalf("Unprocessed = %d events, %q, %v", len(evs), next, err)
		}
		if !reflect.DeepEqual(evs[0], ev) {
			t.Fatalf("rebuilt event\n%+v\n%+v\nwant\n%+v\n%+v", evs[0], evs[0].Message, ev, ev.Message)
		}
		if evs, _, err := s.Unprocessed(ctx(t), "acme", next, 10); err != nil || len(evs) != 0 {
			t.Fatalf("page after the last = %d events, %v", len(evs), err)
		}
		if evs, _, err := s.Unprocessed(ctx(t), "other", "", 10); err != nil || len(evs) != 0 {
			t.Fatalf("another account = %d events, %v", len(evs), err)
		}
		if err := s.MarkProcessed(ctx(t), ev.ID); err != nil {
			t.Fatal(err)
		}
		if evs, _, err := s.Unprocessed(ctx(t), "acme", "", 10); err != nil || len(evs) != 0 {
			t.Fatalf("after MarkProcessed = %d events, %v", len(evs), err)
		}
		// A document from before the field existed counts as processed.
		v.insertLegacy(t, "acme", "OLD")
		if evs, _, err := s.Unprocessed(ctx(t), "acme", "", 10); err != nil || len(evs) != 0 {
			t.Fatalf("old document listed: %d events, %v", len(evs), err)
		}
	})
}

func TestUnprocessedPagesInStoredOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		s := v.s
		// Ids out of order, and their messages' timestamps reversed, so only
		// storedAt order gives the insertion order; B4 and B5 share a storedAt
		// (then _id decides), as do Y6 and Y7.
		clock := t0
		messages.SetNow(s, func() time.Time { return clock })
		var want []string
		for i, id := range []string{"Z1", "A2", "M3", "B4", "B5", "Y6", "Y7"} {
			if id != "B5" && id != "Y7" {
				clock = clock.Add(time.Millisecond)
			}
			ev := msgEvent(event.KindMessageReceived, id, "hi", false)
			ev.Message.Timestamp = t0.Unix() - int64(i)
			ev.Timestamp = time.Unix(ev.Message.Timestamp, 0).UTC()
			if _, err := s.Record(ctx(t), ev); err != nil {
				t.Fatal(err)
			}
			want = append(want, ev.ID)
		}
		if err := s.MarkProcessed(ctx(t), event.MessageEventID("acme", "M3")); err != nil {
			t.Fatal(err)
		}
		want = append(want[:2:2], want[3:]...)
		var got []string
		after := ""
		pages := 0
		for {
			evs, next, err := s.Unprocessed(ctx(t), "acme", after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			pages++
			for _, ev := range evs {
				got = append(got, ev.ID)
			}
			after = next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || pages != 3 {
			t.Fatalf("paged %v in %d pages, want %v in 3", got, pages, want)
		}
	})
}

// TestEventRoundTripsEditAndReaction: the payloads of edit, revoke and
// reaction documents come back, so their events validate.
func TestEventRoundTripsEditAndReaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		s := v.s
		ed := msgEvent(event.KindMessageEdited, "E1", "new text", false)
		ed.Edit = &event.Edit{TargetID: "M1", Text: "new text"}
		re := msgEvent(event.KindMessageReaction, "R1", "", false)
		re.Reaction = &event.Reaction{TargetID: "M1", Emoji: "👍"}
		for _, ev := range []*event.Event{ed, re} {
			if _, err := s.Record(ctx(t), ev); err != nil {
				t.Fatal(err)
			}
		}
		evs, _, err := s.Unprocessed(ctx(t), "acme", "", 10)
		if err != nil || len(evs) != 2 {
			t.Fatalf("Unprocessed = %d, %v", len(evs), err)
		}
		byID := map[string]*event.Event{evs[0].ID: evs[0], evs[1].ID: evs[1]}
		for _, ev := range []*event.Event{ed, re} {
			if got := byID[ev.ID]; !reflect.DeepEqual(got, ev) {
				t.Fatalf("rebuilt %+v, want %+v", got, ev)
			}
		}
	})
}

// TestPendingSendListedOnceCompleted: the API's pending placeholder is no
// pipeline event; WhatsApp's rendering that completes it is, and is listed
// until processed.
func TestPendingSendListedOnceCompleted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		s := v.s
		ev := msgEvent(event.KindMessageSent, "S1", "out", true)
		ev.Source = event.SourceAPI
		pending := &messages.Message{Message: *ev.Message, Kind: event.KindMessageSent, Source: event.SourceAPI}
		pending.Raw = nil
		if err := s.StorePending(ctx(t), pending); err != nil {
			t.Fatal(err)
		}
		if evs, _, err := s.Unprocessed(ctx(t), "acme", "", 10); err != nil || len(evs) != 0 {
			t.Fatalf("pending placeholder listed: %d, %v", len(evs), err)
		}
		if fresh, err := s.Record(ctx(t), ev); err != nil || !fresh {
			t.Fatalf("Record = %v, %v", fresh, err)
		}
		evs, _, err := s.Unprocessed(ctx(t), "acme", "", 10)
		if err != nil || len(evs) != 1 || evs[0].ID != ev.ID || evs[0].Kind != event.KindMessageSent || string(evs[0].Message.Raw) != string(ev.Message.Raw) {
			t.Fatalf("completed send: %d events, %v", len(evs), err)
		}
	})
}

// MarkProcessedTx sets the mark inside the caller's own Write: it commits
// or rolls back with it. A MongoDB store has no such transaction.
func TestMarkProcessedTxIsPartOfTheCallersWrite(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		s := v.s
		ev := msgEvent(event.KindMessageReceived, "M1", "hi", false)
		if _, err := s.Record(ctx(t), ev); err != nil {
			t.Fatal(err)
		}
		if v.sql == nil {
			if err := s.MarkProcessedTx(ctx(t), nil, ev.ID); !errors.Is(err, messages.ErrNoTx) {
				t.Fatalf("MarkProcessedTx on MongoDB: %v, want ErrNoTx", err)
			}
			return
		}
		boom := errors.New("the rest of the write failed")
		err := v.sql.Write(ctx(t), func(tx *sql.Tx) error {
			if err := s.MarkProcessedTx(ctx(t), tx, ev.ID); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("write: %v", err)
		}
		if p, err := s.PipelinePending(ctx(t), ev.ID); err != nil || !p {
			t.Fatalf("mark stayed after its write failed: pending %v, %v", p, err)
		}
		if err := v.sql.Write(ctx(t), func(tx *sql.Tx) error { return s.MarkProcessedTx(ctx(t), tx, ev.ID) }); err != nil {
			t.Fatal(err)
		}
		if p, err := s.PipelinePending(ctx(t), ev.ID); err != nil || p {
			t.Fatalf("after MarkProcessedTx: pending %v, %v", p, err)
		}
	})
}
