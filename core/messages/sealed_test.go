package messages_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// markers are distinctive strings put in every sealed field.
var markers = []string{"TEXTMARK-7f3a", "CAPTIONMARK-19bd", "QUOTEMARK-55e1", "RAWMARK-c0de", "EDITMARK-e417", "IDEMMARK-90aa"}

func sealedEvents() []*event.Event {
	text := msgEvent(event.KindMessageReceived, "S1", "hello TEXTMARK-7f3a there", false)
	text.Message.Raw = []byte("\x0a\x10RAWMARK-c0de....")
	text.Message.Quoted = &event.Quoted{MessageID: "Q0", Text: "QUOTEMARK-55e1"}
	img := msgEvent(event.KindMessageReceived, "S2", "CAPTIONMARK-19bd", false)
	img.Message.Type, img.Message.HasMedia = event.TypeImage, true
	img.Message.Timestamp++
	img.Message.Media = &event.Media{Mimetype: "image/jpeg", Caption: "CAPTIONMARK-19bd", Filename: "CAPTIONMARK-19bd.jpg"}
	return []*event.Event{text, img}
}

// rawDump is the engine's stored bytes: the database file and its WAL on
// SQLite, every document of every collection on MongoDB.
func (v *env) rawDump(t *testing.T) []byte {
	t.Helper()
	if v.sql != nil {
		return sealtest.SQLiteBytes(t, v.sql.Path())
	}
	return sealtest.MongoBytes(t, v.mongo)
}

// keyIDs lists the key ids the stored messages' texts are sealed under,
// read beneath the store.
func (v *env) keyIDs(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	var docs []*messages.Message
	if v.sql != nil {
		rows, err := v.sql.Reader().Query(`SELECT doc FROM messages`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var doc string
			if err := rows.Scan(&doc); err != nil {
				t.Fatal(err)
			}
			var m messages.Message
			if err := bson.UnmarshalExtJSON([]byte(doc), false, &m); err != nil {
				t.Fatal(err)
			}
			docs = append(docs, &m)
		}
	} else {
		cur, err := v.mongo.Collection(store.Messages).Find(context.Background(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if err := cur.All(context.Background(), &docs); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range docs {
		if m.Text == "" {
			continue
		}
		if !sealing.IsSealedString(m.Text) {
			out["plain"]++
			continue
		}
		// The key id is in the clear part of the sealed value; opening
		// with a keyring that lacks the key names it.
		_, err := (*sealing.Keyring)(nil).OpenString(m.Text)
		i := strings.Index(err.Error(), `key "`)
		id := err.Error()[i+5:]
		out[id[:strings.Index(id, `"`)]]++
	}
	return out
}

func recordAll(t *testing.T, v *env, evs ...*event.Event) {
	t.Helper()
	for _, ev := range evs {
		if _, err := v.s.Record(ctx(t), ev); err != nil {
			t.Fatal(err)
		}
	}
}

func checkReadable(t *testing.T, v *env, ids ...string) {
	t.Helper()
	for _, id := range ids {
		m, err := v.s.Get(ctx(t), "acme", id)
		if err != nil {
			t.Fatalf("Get %s: %v", id, err)
		}
		if m.Text == "" || sealing.IsSealedString(m.Text) {
			t.Fatalf("Get %s: text %q", id, m.Text)
		}
	}
}

func TestSealedContentIsNotStoredInTheClear(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		k1 := sealtest.Key(t, "k1")
		keys := sealtest.Ring(t, "", k1)
		v.s.Seal(keys)
		v.idem.Seal(keys)
		recordAll(t, v, sealedEvents()...)
		edit := editEvent("ED1", "S1", "now EDITMARK-e417")
		if _, err := v.s.ApplyEdit(ctx(t), edit); err != nil {
			t.Fatal(err)
		}
		if _, err := v.idem.Claim(ctx(t), "acme:key1", "h"); err != nil {
			t.Fatal(err)
		}
		if err := v.idem.Complete(ctx(t), "acme:key1", 202, "application/json", "", []byte(`{"text":"IDEMMARK-90aa"}`)); err != nil {
			t.Fatal(err)
		}
		sealtest.NoPlaintext(t, string(e), v.rawDump(t), markers...)

		// Everything reads back through the store.
		m, err := v.s.Get(ctx(t), "acme", "S1")
		if err != nil {
			t.Fatal(err)
		}
		if m.Text != "now EDITMARK-e417" || m.EditHistory[0].Text != "hello TEXTMARK-7f3a there" || m.Quoted.Text != "QUOTEMARK-55e1" ||
			string(m.RawMessage) != "\x0a\x10RAWMARK-c0de...." {
			t.Fatalf("read back %+v", m)
		}
		img, err := v.s.Get(ctx(t), "acme", "S2")
		if err != nil || img.Text != "CAPTIONMARK-19bd" || img.Media.Caption != "CAPTIONMARK-19bd" || img.Media.Filename != "CAPTIONMARK-19bd.jpg" {
			t.Fatalf("caption read back %+v, %v", img, err)
		}
		p, err := v.s.History(ctx(t), messages.Query{AccountID: "acme"})
		if err != nil || len(p.Messages) != 2 || p.Messages[0].Text != "CAPTIONMARK-19bd" {
			t.Fatalf("history %+v, %v", p, err)
		}
		cp, err := v.s.Chats(ctx(t), messages.ChatQuery{AccountID: "acme"})
		if err != nil || len(cp.Chats) != 1 || cp.Chats[0].LastMessage.Text != "CAPTIONMARK-19bd" {
			t.Fatalf("chats %+v, %v", cp, err)
		}
		old, err := v.idem.Claim(ctx(t), "acme:key1", "h")
		if err != nil || old == nil || string(old.Body) != `{"text":"IDEMMARK-90aa"}` {
			t.Fatalf("idempotent replay %+v, %v", old, err)
		}
		// The text search cannot look into sealed text: refused, not empty.
		if _, err := v.s.History(ctx(t), messages.Query{AccountID: "acme", Text: "TEXTMARK"}); !errors.Is(err, messages.ErrSearchOff) {
			t.Fatalf("q with encryption on: %v", err)
		}
	})
}

func TestSealedRotationAndReencrypt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		k1, k2 := sealtest.Key(t, "k1"), sealtest.Key(t, "k2")

		// Written in plaintext before encryption was turned on.
		recordAll(t, v, msgEvent(event.KindMessageReceived, "P1", "plain TEXTMARK-7f3a", false))
		sealtest.HasPlaintext(t, "before encryption", v.rawDump(t), "TEXTMARK-7f3a")

		// On with k1: the old message still reads, new ones are sealed
		// under k1.
		v.s.Seal(sealtest.Ring(t, "", k1))
		recordAll(t, v, sealedEvents()...)
		checkReadable(t, v, "P1", "S1", "S2")
		if got := v.keyIDs(t); got["plain"] != 1 || got["k1"] != 2 {
			t.Fatalf("key ids after turning on: %v", got)
		}

		// Rotation: k2 added and active. Old messages read; new ones go
		// under k2.
		v.s.Seal(sealtest.Ring(t, "k2", k1, k2))
		recordAll(t, v, msgEvent(event.KindMessageReceived, "R1", "rotated EDITMARK-e417", false))
		checkReadable(t, v, "P1", "S1", "S2", "R1")
		if got := v.keyIDs(t); got["plain"] != 1 || got["k1"] != 2 || got["k2"] != 1 {
			t.Fatalf("key ids after rotation: %v", got)
		}

		// Reencrypt moves everything, the plaintext one included, to k2.
		n, chats, err := v.s.Reencrypt(ctx(t), 2)
		if err != nil || n != 3 || chats != 1 {
			t.Fatalf("Reencrypt = %d messages, %d chats, %v; want 3, 1", n, chats, err)
		}
		if got := v.keyIDs(t); got["k2"] != 4 || len(got) != 1 {
			t.Fatalf("key ids after reencrypt: %v", got)
		}
		if n, _, err := v.s.Reencrypt(ctx(t), 2); err != nil || n != 0 {
			t.Fatalf("second Reencrypt = %d, %v; want 0", n, err)
		}
		if e == storetest.SQLite {
			// The old rows' pages linger in the free list and the WAL
			// until vacuumed (the reencrypt command does).
			sealtest.HasPlaintext(t, "before vacuum", v.rawDump(t), "TEXTMARK-7f3a")
			if err := v.sql.Vacuum(ctx(t)); err != nil {
				t.Fatal(err)
			}
		}
		sealtest.NoPlaintext(t, "after reencrypt", v.rawDump(t), markers...)

		// k1 can go: everything reads with k2 alone.
		v.s.Seal(sealtest.Ring(t, "", k2))
		checkReadable(t, v, "P1", "S1", "S2", "R1")
		p, err := v.s.History(ctx(t), messages.Query{AccountID: "acme"})
		if err != nil || len(p.Messages) != 4 {
			t.Fatalf("history with k2 only: %v", err)
		}
	})
}

func TestSealedWrongOrMissingKeyFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		v.s.Seal(sealtest.Ring(t, "", sealtest.Key(t, "k1")))
		recordAll(t, v, sealedEvents()...)
		for _, tc := range []struct {
			name string
			keys *sealing.Keyring
			want error
		}{
			{"missing key", sealtest.Ring(t, "", sealtest.Key(t, "other")), sealing.ErrUnknownKey},
			{"encryption off", nil, sealing.ErrUnknownKey},
			{"wrong secret under the same id", sealtest.Ring(t, "", sealtest.Key(t, "k1")), sealing.ErrAuth},
		} {
			v.s.Seal(tc.keys)
			if _, err := v.s.Get(ctx(t), "acme", "S1"); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), `"k1"`) {
				t.Errorf("%s: Get = %v, want %v naming k1", tc.name, err, tc.want)
			}
			if _, err := v.s.History(ctx(t), messages.Query{AccountID: "acme"}); !errors.Is(err, tc.want) {
				t.Errorf("%s: History = %v, want %v", tc.name, err, tc.want)
			}
			if _, err := v.s.Chats(ctx(t), messages.ChatQuery{AccountID: "acme"}); !errors.Is(err, tc.want) {
				t.Errorf("%s: Chats = %v, want %v", tc.name, err, tc.want)
			}
		}
	})
}

// TestSealedPlaintextLookalike: a text that looks like a sealed value,
// written while encryption is off, reads back as itself after encryption
// is turned on.
func TestSealedPlaintextLookalike(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		v.s.Seal(nil)
		tricky := "\x1bwc:AAAA"
		recordAll(t, v, msgEvent(event.KindMessageReceived, "L1", tricky, false))
		v.s.Seal(sealtest.Ring(t, "", sealtest.Key(t, "k1")))
		m, err := v.s.Get(ctx(t), "acme", "L1")
		if err != nil || m.Text != tricky {
			t.Fatalf("Get = %q, %v", m.Text, err)
		}
	})
}
