package messages_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// seedHistory stores a small mixed history: two chats, both directions,
// several types, three senders' forms, texts for q.
func seedHistory(t *testing.T, s *messages.Store) {
	t.Helper()
	rows := []struct {
		id, chat, from, fromPN string
		fromMe                 bool
		typ                    event.MessageType
		ts                     int64
		text                   string
	}{
		{"H0", "c1", "ann@lid", "ann@pn", false, event.TypeText, 100, "Hello World"},
		{"H1", "c1", "me", "", true, event.TypeText, 101, "hi ann"},
		{"H2", "c2", "bob@lid", "bob@pn", false, event.TypeImage, 101, "a PHOTO of the order #42"},
		{"H3", "c1", "ann@lid", "ann@pn", false, event.TypeText, 103, "Order shipped? ¿Qué tal?"},
		{"H4", "c2", "me", "", true, event.TypeText, 104, "your order 100% ready_now"},
		{"H5", "c1", "ann@lid", "ann@pn", false, event.TypeText, 105, "ok"},
		{"H6", "c2", "bob@lid", "bob@pn", false, event.TypeText, 106, "QUÉ TAL"},
	}
	for _, r := range rows {
		kind := event.KindMessageReceived
		if r.fromMe {
			kind = event.KindMessageSent
		}
		ev := msgEvent(kind, r.id, r.text, r.fromMe)
		ev.ChatID, ev.Message.ChatID, ev.Message.From, ev.Message.FromPN = r.chat, r.chat, r.from, r.fromPN
		ev.Message.Type, ev.Message.Timestamp, ev.Message.HasMedia = r.typ, t0.Unix()+r.ts, r.typ == event.TypeImage
		if _, err := s.Record(ctx(t), ev); err != nil {
			t.Fatal(err)
		}
	}
	// Another account's messages never show.
	other := msgEvent(event.KindMessageReceived, "X1", "hello order", false)
	other.AccountID, other.ID, other.Message.AccountID = "other", "other:X1", "other"
	if _, err := s.Record(ctx(t), other); err != nil {
		t.Fatal(err)
	}
}

func ids(ms []*messages.Message) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.MessageID
	}
	return strings.Join(out, " ")
}

// TestHistoryFilters: every filter of GET /messages, alone and combined,
// gives the same rows in the same order on both engines, and a walk with a
// cursor under a filter neither repeats nor skips.
func TestHistoryFilters(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name string
		q    messages.Query
		want string
	}{
		{"all", messages.Query{}, "H6 H5 H4 H3 H2 H1 H0"},
		{"chat", messages.Query{ChatID: "c1"}, "H5 H3 H1 H0"},
		{"from lid", messages.Query{From: "ann@lid"}, "H5 H3 H0"},
		{"from pn", messages.Query{From: "bob@pn"}, "H6 H2"},
		{"type", messages.Query{Type: event.TypeImage}, "H2"},
		{"fromMe", messages.Query{FromMe: &yes}, "H4 H1"},
		{"not fromMe in c2", messages.Query{ChatID: "c2", FromMe: &no}, "H6 H2"},
		{"since inclusive", messages.Query{Since: time.Unix(t0.Unix()+104, 0)}, "H6 H5 H4"},
		{"until exclusive", messages.Query{Until: time.Unix(t0.Unix()+103, 0)}, "H2 H1 H0"},
		{"since and until", messages.Query{Since: time.Unix(t0.Unix()+101, 0), Until: time.Unix(t0.Unix()+105, 0)}, "H4 H3 H2 H1"},
		{"q ignores case", messages.Query{Text: "ORDER"}, "H4 H3 H2"},
		{"q substring", messages.Query{Text: "rder ship"}, "H3"},
		{"q non-ASCII folds", messages.Query{Text: "qué tal"}, "H6 H3"},
		{"q with LIKE metacharacters", messages.Query{Text: "100% ready_"}, "H4"},
		{"q with a quote", messages.Query{Text: `"x`}, ""},
		{"q of two characters", messages.Query{Text: "OK"}, "H5"},
		{"q of one character", messages.Query{Text: "#"}, "H2"},
		{"q of two, LIKE metacharacter", messages.Query{Text: "%"}, "H4"},
		{"q and chat and from", messages.Query{Text: "order", ChatID: "c1", From: "ann@pn"}, "H3"},
		{"nothing", messages.Query{ChatID: "c9"}, ""},
	}
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		seedHistory(t, s)
		for _, c := range cases {
			q := c.q
			q.AccountID = "acme"
			p, err := s.History(ctx(t), q)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := ids(p.Messages); got != c.want || p.NextCursor != "" {
				t.Errorf("%s: %q (next %q), want %q", c.name, got, p.NextCursor, c.want)
			}
			if p.Messages == nil {
				t.Errorf("%s: Messages is nil; an empty page is [] in JSON, not null", c.name)
			}
			// The same listing one message per page.
			var walked []*messages.Message
			q.Limit = 1
			for {
				p, err := s.History(ctx(t), q)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				walked = append(walked, p.Messages...)
				if p.NextCursor == "" {
					break
				}
				q.Cursor = p.NextCursor
			}
			if got := ids(walked); got != c.want {
				t.Errorf("%s walked one per page: %q, want %q", c.name, got, c.want)
			}
		}
	})
}

// TestHistoryCursorIsStableWhileMessagesArrive: messages stored during a
// walk (newer ones, and an older one synced from history) never make the
// walk repeat a message, and the walk sees every message older than where
// it stands.
func TestHistoryCursorIsStableWhileMessagesArrive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		rec := func(id string, ts int64) {
			ev := msgEvent(event.KindMessageReceived, id, "x", false)
			ev.Message.Timestamp = ts
			if _, err := s.Record(ctx(t), ev); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 6 {
			rec(fmt.Sprintf("A%d", i), t0.Unix()+int64(i))
		}
		q := messages.Query{AccountID: "acme", Limit: 2}
		var got []string
		for page := 0; ; page++ {
			p, err := s.History(ctx(t), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range p.Messages {
				got = append(got, m.MessageID)
			}
			if page == 0 {
				rec("NEW", t0.Unix()+100) // newer: before the walk's position
				rec("OLD", t0.Unix()-100) // older: still ahead of it
			}
			if p.NextCursor == "" {
				break
			}
			q.Cursor = p.NextCursor
		}
		if fmt.Sprint(got) != "[A5 A4 A3 A2 A1 A0 OLD]" {
			t.Fatalf("walk %v", got)
		}
	})
}

// TestChatsPageByActivity: chats are listed most recently active first,
// paged with a cursor, each once; the last message and counts follow.
func TestChatsPageByActivity(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		for i, chat := range []string{"c0", "c1", "c2", "c3", "c4"} {
			for k := range 2 {
				ev := msgEvent(event.KindMessageReceived, fmt.Sprintf("%s-%d", chat, k), "hey "+chat, false)
				ev.ChatID, ev.Message.ChatID = chat, chat
				ev.Message.Timestamp = t0.Unix() + int64(10*i+k)
				if _, err := s.Record(ctx(t), ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		// An old message (synced history) does not make c0 the latest.
		old := msgEvent(event.KindMessageReceived, "c0-old", "old", false)
		old.ChatID, old.Message.ChatID, old.Source = "c0", "c0", event.SourceHistory
		old.Message.Timestamp = t0.Unix() - 1000
		if _, err := s.Record(ctx(t), old); err != nil {
			t.Fatal(err)
		}
		var got []string
		q := messages.ChatQuery{AccountID: "acme", Limit: 2}
		for {
			p, err := s.Chats(ctx(t), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range p.Chats {
				got = append(got, fmt.Sprintf("%s:%s:%d/%d", c.ChatID, c.LastMessage.MessageID, c.UnreadCount, c.MessageCount))
			}
			if p.NextCursor == "" {
				break
			}
			q.Cursor = p.NextCursor
		}
		want := "[c4:c4-1:2/2 c3:c3-1:2/2 c2:c2-1:2/2 c1:c1-1:2/2 c0:c0-1:2/3]"
		if fmt.Sprint(got) != want {
			t.Fatalf("chats %v\nwant  %s", got, want)
		}
		if _, err := s.Chats(ctx(t), messages.ChatQuery{AccountID: "acme", Cursor: "bogus"}); !errors.Is(err, messages.ErrBadCursor) {
			t.Fatalf("bad cursor: %v", err)
		}
		// Our read on another device clears the unread count.
		rd := statusEvent("c3-1", event.StatusRead)
		rd.Status.Self, rd.Status.ChatID = true, "c3"
		if _, err := s.ApplyStatus(ctx(t), rd); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Chat(ctx(t), "acme", "c3"); err != nil || c.UnreadCount != 0 || c.LastActivity != t0.Unix()+31 {
			t.Fatalf("after read: %+v %v", c, err)
		}
		if n, err := s.DeleteAccount(ctx(t), "acme"); err != nil || n != 11 {
			t.Fatalf("purge %d %v", n, err)
		}
		if _, err := s.Chat(ctx(t), "acme", "c3"); !errors.Is(err, messages.ErrChatNotFound) {
			t.Fatalf("chat after purge: %v", err)
		}
	})
}

// TestConcurrentRecordsFoldIntoTheirChat: messages of one chat stored at
// once all count, and the chat ends with the newest as its last message.
func TestConcurrentRecordsFoldIntoTheirChat(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		const n = 40
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ev := msgEvent(event.KindMessageReceived, fmt.Sprintf("C%02d", i), "x", false)
				ev.Message.Timestamp = t0.Unix() + int64(i)
				if _, err := s.Record(context.Background(), ev); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		c, err := s.Chat(ctx(t), "acme", "15550001111@s.whatsapp.net")
		if err != nil || c.MessageCount != n || c.UnreadCount != n || c.LastMessage.MessageID != fmt.Sprintf("C%02d", n-1) {
			t.Fatalf("chat %+v %v", c, err)
		}
	})
}

// TestEventsAfterResumesInStoredOrder: the stream's resume lists the
// events stored after a given one, across accounts, in stored order,
// leaving out those the pipeline has not finished; positions continue it.
func TestEventsAfterResumesInStoredOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		clock := t0
		messages.SetNow(s, func() time.Time { clock = clock.Add(time.Millisecond); return clock })
		var all []string
		for i, id := range []string{"Z1", "A2", "M3", "B4", "Y5", "C6"} {
			ev := msgEvent(event.KindMessageReceived, id, "x", false)
			if i%2 == 1 {
				ev.AccountID, ev.ID, ev.Message.AccountID = "beta", "beta:"+id, "beta"
			}
			if _, err := s.Record(ctx(t), ev); err != nil {
				t.Fatal(err)
			}
			if id != "B4" { // B4 is still in the pipeline
				if err := s.MarkProcessed(ctx(t), ev.ID); err != nil {
					t.Fatal(err)
				}
			}
			all = append(all, ev.ID)
		}
		var got []string
		after := all[0]
		for {
			evs, next, found, err := s.EventsAfter(ctx(t), after, 2)
			if err != nil || !found {
				t.Fatalf("EventsAfter(%q): %v %v", after, found, err)
			}
			for _, ev := range evs {
				got = append(got, ev.ID)
			}
			if next == "" {
				break
			}
			after = next
		}
		if want := "[beta:A2 acme:M3 acme:Y5 beta:C6]"; fmt.Sprint(got) != want {
			t.Fatalf("resumed %v, want %s", got, want)
		}
		if _, _, found, err := s.EventsAfter(ctx(t), "acme:nope", 2); found || err != nil {
			t.Fatalf("unknown id: found %v, %v", found, err)
		}
	})
}

// TestMediaLinks: the media archive's outcome is recorded once, an
// archived message is not downgraded, references are listed, and expiry
// unlinks them.
func TestMediaLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		for i, id := range []string{"P1", "P2", "T3"} {
			ev := msgEvent(event.KindMessageReceived, id, "pic", false)
			ev.Message.HasMedia = id != "T3"
			ev.Message.Timestamp = t0.Unix() + int64(i)
			if _, err := s.Record(ctx(t), ev); err != nil {
				t.Fatal(err)
			}
		}
		a := messages.MediaArchive{Status: messages.MediaArchived, SHA256: "abc", Size: 3, Targets: []string{"local"}}
		m, changed, err := s.SetMediaArchive(ctx(t), "acme", "P1", "med1", a)
		if err != nil || !changed || m.MediaID != "med1" || m.MediaURL != "/v1/media/med1" || m.MediaArchive.Status != messages.MediaArchived {
			t.Fatalf("archive: %+v %v %v", m, changed, err)
		}
		if _, changed, err := s.SetMediaArchive(ctx(t), "acme", "P1", "med1", a); changed || err != nil {
			t.Fatalf("again: %v %v", changed, err)
		}
		if _, changed, err := s.SetMediaArchive(ctx(t), "acme", "P1", "", messages.MediaArchive{Status: messages.MediaSkipped, Reason: "big"}); changed || err != nil {
			t.Fatalf("downgrade: %v %v", changed, err)
		}
		if _, changed, err := s.SetMediaArchive(ctx(t), "acme", "P2", "", messages.MediaArchive{Status: messages.MediaSkipped, Reason: "big"}); !changed || err != nil {
			t.Fatalf("skip: %v %v", changed, err)
		}
		if _, _, err := s.SetMediaArchive(ctx(t), "acme", "nope", "m", a); !errors.Is(err, messages.ErrNotFound) {
			t.Fatalf("unknown message: %v", err)
		}
		refs, err := s.MediaRefs(ctx(t))
		if err != nil || len(refs) != 1 || refs[0].ID != "acme:P1" || refs[0].MediaID != "med1" || !refs[0].Archived || refs[0].Timestamp != t0.Unix() {
			t.Fatalf("refs %+v %v", refs, err)
		}
		ms, err := s.MediaMessages(ctx(t), "acme", t0.Unix(), []string{string(event.KindMessageReceived)})
		if err != nil || ids(ms) != "P1 P2" || ms[0].RawMessage != nil {
			t.Fatalf("media messages %q %v", ids(ms), err)
		}
		if ms, err := s.MediaMessages(ctx(t), "acme", t0.Unix()+1, nil); err != nil || ids(ms) != "P2" {
			t.Fatalf("media messages since: %q %v", ids(ms), err)
		}
		if n, err := s.ExpireMedia(ctx(t), "med1"); n != 1 || err != nil {
			t.Fatalf("expire %d %v", n, err)
		}
		got, _ := s.Get(ctx(t), "acme", "P1")
		if got.MediaID != "" || got.MediaURL != "" || got.MediaArchive.Status != messages.MediaExpired || got.MediaArchive.SHA256 != "abc" {
			t.Fatalf("after expiry %+v %+v", got, got.MediaArchive)
		}
		if refs, _ := s.MediaRefs(ctx(t)); len(refs) != 0 {
			t.Fatalf("refs after expiry %+v", refs)
		}
	})
}

// TestIdempotencyKeys: the first request claims a key, a retry gets its
// answer, a released or expired or abandoned key is claimed again.
func TestIdempotencyKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).idem
		now := t0
		messages.SetIdempotencyNow(s, func() time.Time { return now })
		if old, err := s.Claim(ctx(t), "acme:k1", "h1"); old != nil || err != nil {
			t.Fatalf("first claim: %+v %v", old, err)
		}
		old, err := s.Claim(ctx(t), "acme:k1", "h1")
		if err != nil || old == nil || old.Done || old.RequestHash != "h1" {
			t.Fatalf("claim while in flight: %+v %v", old, err)
		}
		if err := s.Complete(ctx(t), "acme:k1", 202, "application/json", "/v1/x", []byte(`{"ok":true}`)); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx(t), "acme:k1"); err != nil { // done: stays
			t.Fatal(err)
		}
		old, err = s.Claim(ctx(t), "acme:k1", "h2")
		if err != nil || old == nil || !old.Done || old.Status != 202 || string(old.Body) != `{"ok":true}` || old.Location != "/v1/x" || old.RequestHash != "h1" {
			t.Fatalf("retry: %+v %v", old, err)
		}
		// Released before done: claimable again.
		if old, _ := s.Claim(ctx(t), "acme:k2", "h"); old != nil {
			t.Fatal("k2 taken")
		}
		if err := s.Release(ctx(t), "acme:k2"); err != nil {
			t.Fatal(err)
		}
		if old, err := s.Claim(ctx(t), "acme:k2", "h"); old != nil || err != nil {
			t.Fatalf("after release: %+v %v", old, err)
		}
		// Abandoned (not done for minutes): taken over.
		now = now.Add(3 * time.Minute)
		if old, err := s.Claim(ctx(t), "acme:k2", "h"); old != nil || err != nil {
			t.Fatalf("abandoned: %+v %v", old, err)
		}
		// Expired after the TTL, then swept.
		now = now.Add(2 * time.Hour)
		if old, err := s.Claim(ctx(t), "acme:k1", "h3"); old != nil || err != nil {
			t.Fatalf("expired: %+v %v", old, err)
		}
		if n, err := s.Sweep(ctx(t)); n != 1 || err != nil { // k2
			t.Fatalf("sweep %d %v", n, err)
		}
	})
}

// TestSQLiteMessageAndChatCommitTogether: when the chat cannot be written
// the message is not stored either (one transaction), and the write after
// it is unaffected.
func TestSQLiteMessageAndChatCommitTogether(t *testing.T) {
	v := newEnv(t, storetest.SQLite)
	if err := v.sql.Write(ctx(t), func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TRIGGER refuse_chat BEFORE INSERT ON chats WHEN new.chat_id = 'broken'
			BEGIN SELECT RAISE(ABORT, 'chat refused'); END`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ev := msgEvent(event.KindMessageReceived, "B1", "x", false)
	ev.ChatID, ev.Message.ChatID = "broken", "broken"
	if _, err := v.s.Record(ctx(t), ev); err == nil {
		t.Fatal("Record succeeded with its chat refused")
	}
	if _, err := v.s.Get(ctx(t), "acme", "B1"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("message stored without its chat: %v", err)
	}
	if _, err := v.s.Record(ctx(t), msgEvent(event.KindMessageReceived, "G1", "x", false)); err != nil {
		t.Fatal(err)
	}
	if c, err := v.s.Chat(ctx(t), "acme", "15550001111@s.whatsapp.net"); err != nil || c.MessageCount != 1 {
		t.Fatalf("chat after the refused one: %+v %v", c, err)
	}
}

// TestSQLiteQueriesUseIndexes: the hot queries are answered from an index,
// never a scan of the messages table.
func TestSQLiteQueriesUseIndexes(t *testing.T) {
	v := newEnv(t, storetest.SQLite)
	for _, q := range []string{
		`UPDATE messages SET status = 'read', status_rank = 3, status_at = 1 WHERE id = 'a:b' AND status_rank < 3`,
		`SELECT * FROM messages WHERE account_id = 'a' AND chat_id = 'c' AND sort_key < 'k' ORDER BY sort_key DESC LIMIT 51`,
		`SELECT * FROM messages WHERE account_id = 'a' AND sort_key < 'k' ORDER BY sort_key DESC LIMIT 51`,
		`SELECT * FROM messages WHERE account_id = 'a' AND pipeline_done = 0 AND seq > 0 ORDER BY seq LIMIT 500`,
		`SELECT * FROM messages WHERE seq > 5 AND pipeline_done IS NOT 0 ORDER BY seq LIMIT 100`,
		`UPDATE messages SET status = 'failed' WHERE status = 'pending' AND stored_at < 5`,
		`SELECT * FROM chats WHERE account_id = 'a' AND activity_key < 'k' ORDER BY activity_key DESC LIMIT 51`,
		`SELECT * FROM messages WHERE account_id = 'a' AND chat_id = 'c' AND seq IN (SELECT rowid FROM messages_text WHERE messages_text MATCH '"abc"') ORDER BY sort_key DESC LIMIT 51`,
	} {
		rows, err := v.sql.Reader().Query(`EXPLAIN QUERY PLAN ` + q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, step := range plan {
			if (strings.HasPrefix(step, "SCAN ") && !strings.Contains(step, "VIRTUAL TABLE")) || strings.Contains(step, "TEMP B-TREE") {
				t.Errorf("%s\nplan: %v", q, plan)
			}
		}
	}
}

// TestFailuresAreRecordedPerAction: the pipeline's failed actions are kept
// on the message, one entry per stage and action index — a re-run's
// failure replaces its entry in place — beside the tags the same stage
// stored, and survive a later edit; a message that is not stored is no
// error.
func TestFailuresAreRecordedPerAction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		ev := msgEvent(event.KindMessageReceived, "F1", "ping", false)
		if _, err := s.Record(ctx(t), ev); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Minute + 123456789) // sub-millisecond part: stored as milliseconds
		reply := messages.ActionFailure{Stage: "rules", Action: "reply", Index: 1, Origin: "ping", Error: "reply to x: no session", Attempts: 1, At: at}
		read := messages.ActionFailure{Stage: "rules", Action: "markRead", Index: 3, Error: "no session", Attempts: 1, At: at}
		if err := s.Annotate(ctx(t), ev, []string{"ping"}, map[string]string{"seen": "yes"}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordFailures(ctx(t), ev.ID, []messages.ActionFailure{reply, read}); err != nil {
			t.Fatal(err)
		}
		later := reply
		later.Error, later.Attempts, later.At = "reply to x: still no session", 3, at.Add(time.Hour)
		other := messages.ActionFailure{Stage: "plugin", Action: "send", Index: 1, Error: "boom", Attempts: 1, At: at}
		if err := s.RecordFailures(ctx(t), ev.ID, []messages.ActionFailure{later, other}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ApplyEdit(ctx(t), &event.Event{ID: "acme:F1E", Kind: event.KindMessageEdited, AccountID: "acme", Timestamp: t0.Add(2 * time.Hour),
			Edit: &event.Edit{TargetID: "F1", Text: "ping!"}, Message: &event.Message{MessageID: "F1E"}}); err != nil {
			t.Fatal(err)
		}
		m, err := s.Get(ctx(t), "acme", "F1")
		if err != nil {
			t.Fatal(err)
		}
		ms := func(a messages.ActionFailure) messages.ActionFailure {
			a.At = a.At.Truncate(time.Millisecond)
			return a
		}
		want := []messages.ActionFailure{ms(later), ms(read), ms(other)}
		if !reflect.DeepEqual(m.Failures, want) {
			t.Fatalf("failures\n%+v\nwant\n%+v", m.Failures, want)
		}
		if !slices.Equal(m.Tags, []string{"ping"}) || m.Annotations["seen"] != "yes" || m.Text != "ping!" {
			t.Fatalf("tags %v, annotations %v, text %q: recording failures lost them", m.Tags, m.Annotations, m.Text)
		}
		if err := s.RecordFailures(ctx(t), "acme:nope", []messages.ActionFailure{reply}); err != nil {
			t.Fatalf("failures of a message not stored: %v", err)
		}
	})
}

// TestGroupChatsCarryTheSubject: a group.update with a subject names the
// group's chat (creating it before its first message), a message keeps the
// name, a rename replaces it, and a change without a subject leaves it.
func TestGroupChatsCarryTheSubject(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newEnv(t, e).s
		const g = "120363000000000001@g.us"
		group := func(u *event.GroupUpdate, at time.Time) *event.Event {
			u.JID = g
			return &event.Event{ID: event.GroupEventID("acme", at, u), Kind: event.KindGroupUpdate, AccountID: "acme", Timestamp: at,
				ChatID: g, Source: event.SourcePhone, Group: u}
		}
		// Joined: the whole group's info names the chat.
		if ok, err := s.ApplyGroup(ctx(t), group(&event.GroupUpdate{Self: event.GroupSelfAdded, Info: &event.GroupInfo{JID: g, Name: "Team"}}, t0)); err != nil || !ok {
			t.Fatalf("joined: %v %v", ok, err)
		}
		c, err := s.Chat(ctx(t), "acme", g)
		if err != nil || c.Name != "Team" || !c.IsGroup || c.MessageCount != 0 || c.LastMessage != nil || c.LastActivity != t0.Unix() {
			t.Fatalf("chat after joining: %+v %v", c, err)
		}
		ev := msgEvent(event.KindMessageReceived, "G1", "hello team", false)
		ev.ChatID, ev.Message.ChatID, ev.Message.IsGroup, ev.Message.Timestamp = g, g, true, t0.Unix()+5
		ev.Message.PushName = "Ann"
		if _, err := s.Record(ctx(t), ev); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.ApplyGroup(ctx(t), group(&event.GroupUpdate{Promoted: []string{"x@s.whatsapp.net"}}, t0.Add(time.Minute))); err != nil || ok {
			t.Fatalf("promotion: %v %v", ok, err)
		}
		if c, _ := s.Chat(ctx(t), "acme", g); c.Name != "Team" || c.MessageCount != 1 || c.LastMessage == nil || c.LastMessage.MessageID != "G1" {
			t.Fatalf("after a message: %+v", c)
		}
		if _, err := s.ApplyGroup(ctx(t), group(&event.GroupUpdate{Name: "Team 2"}, t0.Add(2*time.Minute))); err != nil {
			t.Fatal(err)
		}
		p, err := s.Chats(ctx(t), messages.ChatQuery{AccountID: "acme", Limit: 10})
		if err != nil || len(p.Chats) != 1 || p.Chats[0].Name != "Team 2" || p.Chats[0].MessageCount != 1 || p.Chats[0].LastActivity != t0.Unix()+5 {
			t.Fatalf("chats after the rename: %+v %v", p.Chats, err)
		}
	})
}
