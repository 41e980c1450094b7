package messages_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// ftsIntact runs FTS5's integrity check, which for an external-content
// table compares the index with the text of every row of messages, once
// the index has taken in the rows stored since it last did.
func (v *env) ftsIntact(t *testing.T) {
	t.Helper()
	if err := messages.CatchUpText(context.Background(), v.s); err != nil {
		t.Fatal(err)
	}
	if err := v.sql.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO messages_text (messages_text, rank) VALUES ('integrity-check', 1)`)
		return err
	}); err != nil {
		t.Fatalf("the trigram index does not match the stored text: %v", err)
	}
}

// The trigram index is written by a before-commit hook, not by a trigger
// per row. Under concurrent stores, edits and account deletions it stays
// equal to the stored text, and a message is found by q as soon as its
// store returns.
func TestSQLiteTextIndexKeptPerCommit(t *testing.T) {
	v := newEnv(t, storetest.SQLite)
	ctx := context.Background()
	const n = 120
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("T%03d", i)
			ev := msgEvent(event.KindMessageReceived, id, fmt.Sprintf("needle %03d in the haystack", i), false)
			if _, err := v.s.Record(ctx, ev); err != nil {
				errs <- err
				return
			}
			// Found at once: the commit that stored it indexed it.
			page, err := v.s.History(ctx, messages.Query{AccountID: "acme", Text: fmt.Sprintf("needle %03d", i)})
			if err != nil || len(page.Messages) != 1 || page.Messages[0].MessageID != id {
				errs <- fmt.Errorf("q right after storing %s: %v %v", id, page, err)
				return
			}
			if i%3 == 0 {
				if _, err := v.s.ApplyEdit(ctx, &event.Event{ID: "acme:" + id + "E", Kind: event.KindMessageEdited, AccountID: "acme",
					Timestamp: t0, Edit: &event.Edit{TargetID: id, Text: fmt.Sprintf("edited %03d", i)}, Message: &event.Message{MessageID: id + "E"}}); err != nil {
					errs <- err
				}
			}
		})
		wg.Go(func() {
			ev := msgEvent(event.KindMessageReceived, fmt.Sprintf("G%03d", i), "needle of an account that goes", false)
			ev.AccountID, ev.ID, ev.Message.AccountID = "gone", fmt.Sprintf("gone:G%03d", i), "gone"
			if _, err := v.s.Record(ctx, ev); err != nil {
				errs <- err
			}
			if i%40 == 39 {
				if _, err := v.s.DeleteAccount(ctx, "gone"); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := v.s.DeleteAccount(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	v.ftsIntact(t)

	count := func(account, q string) int {
		t.Helper()
		page, err := v.s.History(ctx, messages.Query{AccountID: account, Text: q, Limit: messages.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Messages)
	}
	if got, want := count("acme", "NEEDLE"), n-n/3; got != want {
		t.Fatalf("q=NEEDLE: %d messages, want %d (the unedited ones)", got, want)
	}
	if got, want := count("acme", "edited"), n/3; got != want {
		t.Fatalf("q=edited: %d messages, want %d", got, want)
	}
	if got := count("gone", "needle"); got != 0 {
		t.Fatalf("%d messages of a deleted account still found", got)
	}
}

// Within one group a row can be stored, edited and deleted before the
// commit indexes anything: the triggers leave rows the index has not seen
// alone, and the commit indexes what is there at its end.
func TestSQLiteTextIndexWithinOneGroup(t *testing.T) {
	v := newEnv(t, storetest.SQLite)
	ctx := context.Background()
	insert := `INSERT INTO messages (` + messages.SQLiteRowCols + `) VALUES (?` +
		strings.Repeat(", ?", strings.Count(messages.SQLiteRowCols, ",")) + `)`
	row := func(id, text string) []any {
		m := &messages.Message{ID: "acme:" + id, SortKey: id, Kind: event.KindMessageReceived,
			Message: event.Message{AccountID: "acme", MessageID: id, ChatID: "c", Type: event.TypeText, Text: text}}
		args, err := messages.SQLiteRowArgs(m)
		if err != nil {
			t.Fatal(err)
		}
		return args
	}
	err := v.sql.Write(ctx, func(tx *sql.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{insert, row("A", "alpha before the edit")},
			{`UPDATE messages SET text = 'alpha after the edit' WHERE id = 'acme:A'`, nil},
			{insert, row("B", "bravo never committed to the index")},
			{`DELETE FROM messages WHERE id = 'acme:B'`, nil},
		} {
			if _, err := tx.Exec(q.sql, q.args...); err != nil {
				return fmt.Errorf("%s: %w", q.sql, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v.ftsIntact(t)
	for q, want := range map[string]int{"after the edit": 1, "before the edit": 0, "bravo": 0} {
		page, err := v.s.History(ctx, messages.Query{AccountID: "acme", Text: q})
		if err != nil || len(page.Messages) != want {
			t.Fatalf("q=%q: %v (%v), want %d messages", q, page, err, want)
		}
	}
	// And once indexed, an edit and a delete go through the triggers.
	err = v.sql.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`UPDATE messages SET text = 'alpha edited again' WHERE id = 'acme:A'`); err != nil {
			return err
		}
		_, err := tx.Exec(insert, row("C", "charlie")...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	v.ftsIntact(t)
	if _, err := v.s.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	v.ftsIntact(t)
}

// Both engines leave the raw proto out of history pages and keep it for
// Get.
func TestHistoryPagesLeaveRawOut(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		ctx := context.Background()
		if _, err := v.s.Record(ctx, msgEvent(event.KindMessageReceived, "R1", "with a raw proto", false)); err != nil {
			t.Fatal(err)
		}
		page, err := v.s.History(ctx, messages.Query{AccountID: "acme"})
		if err != nil || len(page.Messages) != 1 {
			t.Fatalf("page %v, %v", page, err)
		}
		if raw := page.Messages[0].RawMessage; raw != nil {
			t.Fatalf("a history page carries the raw proto (%d bytes)", len(raw))
		}
		m, err := v.s.Get(ctx, "acme", "R1")
		if err != nil || len(m.RawMessage) == 0 {
			t.Fatalf("Get lost the raw proto: %v, %v", m, err)
		}
	})
}

// A group commit takes new rows into the trigram index only once per
// interval, not in every group; a search first takes in what is left, so
// it finds a message stored a moment before.
func TestSQLiteTextIndexDeferredToTheSearch(t *testing.T) {
	db := storetest.NewSQLite(t, messages.SQLiteSchema)
	s := messages.NewSQLiteTextIndexEvery(db, time.Hour)
	ctx := context.Background()
	state := func() (indexed, top int64) {
		t.Helper()
		if err := db.Reader().QueryRow(`SELECT (SELECT indexed_seq FROM messages_text_state), (SELECT MAX(seq) FROM messages)`).Scan(&indexed, &top); err != nil {
			t.Fatal(err)
		}
		return indexed, top
	}
	// The first commit indexes (nothing was indexed yet in this process).
	if _, err := s.Record(ctx, msgEvent(event.KindMessageReceived, "D1", "first needle", false)); err != nil {
		t.Fatal(err)
	}
	if indexed, top := state(); indexed != top {
		t.Fatalf("after the first commit: indexed up to %d of %d", indexed, top)
	}
	// Commits within the interval leave the index alone.
	for _, id := range []string{"D2", "D3"} {
		if _, err := s.Record(ctx, msgEvent(event.KindMessageReceived, id, "later needle "+id, false)); err != nil {
			t.Fatal(err)
		}
	}
	indexed, top := state()
	if indexed >= top {
		t.Fatalf("commits within the interval indexed their rows (up to %d of %d)", indexed, top)
	}
	// A search finds them all, having indexed them first.
	page, err := s.History(ctx, messages.Query{AccountID: "acme", Text: "needle"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range page.Messages {
		got = append(got, m.MessageID)
	}
	if strings.Join(got, ",") != "D3,D2,D1" {
		t.Fatalf("q=needle found %v, want D3,D2,D1", got)
	}
	if indexed, top := state(); indexed != top {
		t.Fatalf("after the search: indexed up to %d of %d", indexed, top)
	}
	(&env{s: s, sql: db}).ftsIntact(t)
}
