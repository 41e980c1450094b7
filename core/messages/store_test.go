package messages_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func msgEvent(kind event.Kind, id, text string, fromMe bool) *event.Event {
	return &event.Event{
		ID: event.MessageEventID("acme", id), Kind: kind, AccountID: "acme", Timestamp: t0,
		ChatID: "15550001111@s.whatsapp.net", Source: event.SourcePhone,
		Message: &event.Message{
			AccountID: "acme", MessageID: id, ChatID: "15550001111@s.whatsapp.net",
			From: "15550001111@s.whatsapp.net", FromMe: fromMe, Timestamp: t0.Unix(),
			Type: event.TypeText, Text: text, Raw: []byte{0x0a, 0x02, 'h', 'i'},
		},
	}
}

func statusEvent(id string, s event.MessageStatus) *event.Event {
	return &event.Event{
		ID: event.StatusEventID("acme", id, s, ""), Kind: event.KindMessageStatus, AccountID: "acme",
		Timestamp: t0.Add(time.Minute), Source: event.SourcePhone,
		Status: &event.Status{MessageID: id, Status: s, ChatID: "15550001111@s.whatsapp.net"},
	}
}

func TestRecordIsIdempotentAndKeepsTheReferenceShape(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		s := v.s
		ev := msgEvent(event.KindMessageReceived, "M1", "hello", false)
		for i, want := range []bool{true, false, false} {
			got, err := s.Record(ctx(t), ev)
			if err != nil || got != want {
				t.Fatalf("Record #%d = %v, %v; want %v", i, got, err, want)
			}
		}
		if n := v.countStored(t, "acme"); n != 1 {
			t.Fatalf("%d documents after three Records", n)
		}
		keys, rawProto := v.storedFields(t, "acme:M1")
		for _, k := range []string{"accountId", "messageId", "chatId", "from", "fromMe", "timestamp", "type", "text", "hasMedia", "rawMessage", "source", "kind"} {
			if !keys[k] {
				t.Errorf("document lacks %q: %v", k, keys)
			}
		}
		if keys["raw"] {
			t.Error(`raw proto stored as "raw" as well as "rawMessage"`)
		}
		if string(rawProto) != "\x0a\x02hi" {
			t.Errorf("rawMessage = %#v, want the proto bytes", rawProto)
		}
		got, err := s.Get(ctx(t), "acme", "M1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Text != "hello" || got.FromMe || got.Status != "" || got.Source != event.SourcePhone || got.Kind != event.KindMessageReceived {
			t.Fatalf("got %+v", got)
		}
		if _, err := s.Get(ctx(t), "acme", "nope"); err == nil {
			t.Fatal("Get of a missing message succeeded")
		}
	})
}

func TestStatusNeverMovesBackwards(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		if _, err := s.Record(ctx(t), msgEvent(event.KindMessageSent, "S1", "out", true)); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			status  event.MessageStatus
			applied bool
			want    messages.Status
		}{
			{event.StatusSent, false, messages.StatusSent}, // already sent on Record
			{event.StatusRead, true, messages.StatusRead},
			{event.StatusDelivered, false, messages.StatusRead}, // overtaken
			{event.StatusRead, false, messages.StatusRead},      // redelivered
			{event.StatusPlayed, true, messages.StatusPlayed},
		}
		for _, st := range steps {
			applied, err := s.ApplyStatus(ctx(t), statusEvent("S1", st.status))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := s.Get(ctx(t), "acme", "S1")
			if applied != st.applied || got.Status != st.want {
				t.Fatalf("after %s: applied=%v status=%s; want %v %s", st.status, applied, got.Status, st.applied, st.want)
			}
		}
		if applied, err := s.ApplyStatus(ctx(t), statusEvent("unknown", event.StatusRead)); applied || err != nil {
			t.Fatalf("status of an unknown message: %v, %v", applied, err)
		}
	})
}

// TestConcurrentStatusesEndAtTheHighest races every receipt at once.
func TestConcurrentStatusesEndAtTheHighest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		if _, err := s.Record(ctx(t), msgEvent(event.KindMessageSent, "S2", "out", true)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 3 {
			for _, st := range []event.MessageStatus{event.StatusRead, event.StatusDelivered, event.StatusSent} {
				wg.Go(func() {
					if _, err := s.ApplyStatus(context.Background(), statusEvent("S2", st)); err != nil {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		if got, _ := s.Get(ctx(t), "acme", "S2"); got.Status != messages.StatusRead {
			t.Fatalf("status %s after racing receipts, want read", got.Status)
		}
	})
}

func editEvent(editID, target, text string) *event.Event {
	ev := msgEvent(event.KindMessageEdited, editID, text, false)
	ev.Message.Type = event.TypeEdit
	ev.Edit = &event.Edit{TargetID: target, Text: text}
	return ev
}

func TestEditKeepsHistoryAndRevokeMarks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		if _, err := s.Record(ctx(t), msgEvent(event.KindMessageReceived, "E1", "first", false)); err != nil {
			t.Fatal(err)
		}
		for _, e := range []struct{ id, text string }{{"ED1", "second"}, {"ED2", "third"}, {"ED1", "second"}} {
			if _, err := s.ApplyEdit(ctx(t), editEvent(e.id, "E1", e.text)); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := s.Get(ctx(t), "acme", "E1")
		if got.Text != "third" || !got.Edited || len(got.EditHistory) != 2 ||
			got.EditHistory[0].Text != "first" || got.EditHistory[1].Text != "second" {
			t.Fatalf("after edits: text %q edited %v history %+v", got.Text, got.Edited, got.EditHistory)
		}
		// q follows the edit: the new text is found, the old one no more.
		for text, want := range map[string]int{"third": 1, "first": 0, "THI": 1} {
			if p, err := s.History(ctx(t), messages.Query{AccountID: "acme", Text: text}); err != nil || len(p.Messages) != want {
				t.Fatalf("q=%s after edits: %d messages, %v", text, len(p.Messages), err)
			}
		}
		if applied, err := s.ApplyEdit(ctx(t), editEvent("ED3", "missing", "x")); applied || err != nil {
			t.Fatalf("edit of an unknown message: %v %v", applied, err)
		}

		rev := msgEvent(event.KindMessageRevoked, "RV1", "", false)
		rev.Revoke = &event.Revoke{TargetID: "E1", By: "15550001111@s.whatsapp.net"}
		for i, want := range []bool{true, false} {
			applied, err := s.ApplyRevoke(ctx(t), rev)
			if err != nil || applied != want {
				t.Fatalf("revoke #%d: %v %v", i, applied, err)
			}
		}
		got, _ = s.Get(ctx(t), "acme", "E1")
		if !got.Revoked || got.RevokedBy != "15550001111@s.whatsapp.net" || got.Text != "third" {
			t.Fatalf("after revoke: %+v", got)
		}
	})
}

func TestConcurrentEditsAllLand(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		if _, err := s.Record(ctx(t), msgEvent(event.KindMessageReceived, "E2", "v0", false)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if _, err := s.ApplyEdit(context.Background(), editEvent(fmt.Sprintf("X%d", i), "E2", fmt.Sprintf("v%d", i+1))); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, _ := s.Get(ctx(t), "acme", "E2")
		if len(got.EditHistory) != 4 {
			t.Fatalf("%d history entries after 4 concurrent edits: %+v", len(got.EditHistory), got.EditHistory)
		}
	})
}

// TestPurge: DeleteAccount removes every message of the account and
// reports how many, and leaves other accounts' messages alone.
func TestPurge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		s := v.s
		for i := range 5 {
			ev := msgEvent(event.KindMessageReceived, fmt.Sprintf("L%d", i), "x", false)
			ev.Message.Timestamp = t0.Unix() + int64(i)
			if _, err := s.Record(ctx(t), ev); err != nil {
				t.Fatal(err)
			}
		}
		other := msgEvent(event.KindMessageReceived, "O1", "x", false)
		other.AccountID, other.Message.AccountID = "other", "other"
		other.ID = event.MessageEventID("other", "O1")
		if _, err := s.Record(ctx(t), other); err != nil {
			t.Fatal(err)
		}
		if n, err := s.DeleteAccount(ctx(t), "acme"); n != 5 || err != nil {
			t.Fatalf("purge: %d %v", n, err)
		}
		if n := v.countStored(t, "acme"); n != 0 {
			t.Fatalf("%d messages of the purged account left", n)
		}
		if n := v.countStored(t, "other"); n != 1 {
			t.Fatalf("%d messages of another account left, want 1", n)
		}
	})
}

// TestAnnotateAndMarkProcessed: pipeline tags are a set and annotations are
// set by key, so a re-run after a crash changes nothing; MarkProcessed
// records the end of the pipeline.
func TestAnnotateAndMarkProcessed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		s := v.s
		ev := msgEvent(event.KindMessageReceived, "A1", "hello", false)
		if _, err := s.Record(ctx(t), ev); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.Annotate(ctx(t), ev, []string{"vip", "sales"}, map[string]string{"team": "emea"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Annotate(ctx(t), ev, []string{"vip"}, map[string]string{"prio": "high"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Annotate(ctx(t), ev, nil, map[string]string{"a.b": "x"}); err == nil {
			t.Fatal("a dotted annotation key was accepted")
		}
		m, err := s.Get(ctx(t), "acme", "A1")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(m.Tags) != "[vip sales]" || m.Annotations["team"] != "emea" || m.Annotations["prio"] != "high" || len(m.Annotations) != 2 {
			t.Fatalf("tags %v annotations %v", m.Tags, m.Annotations)
		}
		if p, err := s.PipelinePending(ctx(t), ev.ID); err != nil || !p {
			t.Fatalf("PipelinePending before MarkProcessed: %v, %v", p, err)
		}
		if err := s.MarkProcessed(ctx(t), ev.ID); err != nil {
			t.Fatal(err)
		}
		if p, err := s.PipelinePending(ctx(t), ev.ID); err != nil || p {
			t.Fatalf("PipelinePending after MarkProcessed: %v, %v", p, err)
		}
		if m, err := s.Get(ctx(t), "acme", "A1"); err != nil || m.PipelineDone == nil || !*m.PipelineDone {
			t.Fatalf("pipelineDone %v, %v", m.PipelineDone, err)
		}
	})
}

// TestDoneMarkMatchesAnnotate: the SQL merge of the pipeline's done mark
// stores what Annotate does — tags in order, each once, annotations by key
// — sets the mark and the trace, and leaves the rest of the document as it
// was; a dotted key is refused and an event without a document is no
// error.
func TestDoneMarkMatchesAnnotate(t *testing.T) {
	steps := []struct {
		tags []string
		ann  map[string]string
	}{
		{[]string{"vip", "sales"}, map[string]string{"team": "emea"}},
		{[]string{"sales", "late", "vip"}, nil},
		{nil, map[string]string{"prio": "high", "team": "apac"}},
	}
	viaAnnotate, viaTx := newEnv(t, storetest.SQLite), newEnv(t, storetest.SQLite)
	ev := msgEvent(event.KindMessageReceived, "A1", "hello", false)
	for _, v := range []*env{viaAnnotate, viaTx} {
		if _, err := v.s.Record(ctx(t), ev); err != nil {
			t.Fatal(err)
		}
	}
	mark := func(id string, tags []string, ann map[string]string, trace []byte) error {
		m, err := viaTx.s.PrepareDone(id, tags, ann, trace)
		if err != nil {
			return err
		}
		return viaTx.sql.Write(ctx(t), func(tx *sql.Tx) error { return m.Tx(ctx(t), tx) })
	}
	for i, st := range steps {
		if err := viaAnnotate.s.Annotate(ctx(t), ev, st.tags, st.ann); err != nil {
			t.Fatal(err)
		}
		var trace []byte
		if i == 1 {
			trace = []byte(`{"stages":[]}`)
		}
		if err := mark(ev.ID, st.tags, st.ann, trace); err != nil {
			t.Fatal(err)
		}
	}
	if tr, _, err := viaTx.s.Trace(ctx(t), "acme", "A1"); err != nil || string(tr) != `{"stages":[]}` {
		t.Fatalf("trace %q, %v", tr, err)
	}
	want, err := viaAnnotate.s.Get(ctx(t), "acme", "A1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := viaTx.s.Get(ctx(t), "acme", "A1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Tags) != "[vip sales late]" || !reflect.DeepEqual(got.Annotations, map[string]string{"team": "apac", "prio": "high"}) {
		t.Fatalf("tags %v annotations %v", got.Tags, got.Annotations)
	}
	if got.PipelineDone == nil || !*got.PipelineDone {
		t.Fatalf("pipelineDone %v after the done mark", got.PipelineDone)
	}
	got.StoredAt, want.StoredAt = time.Time{}, time.Time{}
	got.PipelineDone, want.PipelineDone = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the done mark stored\n%+v\nAnnotate stored\n%+v", got, want)
	}
	if err := mark(ev.ID, nil, map[string]string{"a.b": "x"}, nil); err == nil {
		t.Fatal("a dotted annotation key was accepted")
	}
	if err := mark("acme:NOPE", []string{"x"}, nil, nil); err != nil {
		t.Fatalf("marking an event without a document: %v", err)
	}
}
