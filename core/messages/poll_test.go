package messages_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func optionHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// pollEvent is a poll we sent, in a group, with options Red, Green, Blue.
func pollEvent(id string) *event.Event {
	ev := msgEvent(event.KindMessageSent, id, "", true)
	ev.ChatID, ev.Message.ChatID, ev.Message.IsGroup = "120363000000000001@g.us", "120363000000000001@g.us", true
	ev.Message.From, ev.Message.Type = "15550009999@s.whatsapp.net", event.TypePoll
	ev.Message.Poll = &event.Poll{Name: "Colour?", SelectableCount: 0}
	for _, o := range []string{"Red", "Green", "Blue"} {
		ev.Message.Poll.Options = append(ev.Message.Poll.Options, event.PollOption{Name: o, Hash: optionHash(o)})
	}
	return ev
}

// voteEvent is voter's vote (id) on poll, cast at atMs, choosing options
// by name.
func voteEvent(id, poll, voter string, atMs int64, options ...string) *event.Event {
	ev := msgEvent(event.KindMessageReceived, id, "", false)
	ev.ChatID, ev.Message.ChatID, ev.Message.IsGroup = "120363000000000001@g.us", "120363000000000001@g.us", true
	ev.Message.From, ev.Message.Type = voter, event.TypePollVote
	ev.Message.PollVote = &event.PollVote{PollMessageID: poll, PollFromMe: true, Decrypted: true, SenderTimestampMs: atMs, SelectedOptions: []string{}}
	for _, o := range options {
		ev.Message.PollVote.SelectedOptions = append(ev.Message.PollVote.SelectedOptions, optionHash(o))
	}
	return ev
}

// tally renders a stored poll's tally: "Red=2[ann,bob] Green=0[] …/voters".
func tally(t *testing.T, m *messages.Message) string {
	t.Helper()
	if m.PollTally == nil {
		t.Fatalf("poll %s has no tally", m.MessageID)
	}
	var parts []string
	for _, o := range m.PollTally.Options {
		if o.Hash != optionHash(o.Name) {
			t.Fatalf("option %q has hash %s", o.Name, o.Hash)
		}
		vs := make([]string, len(o.Voters))
		for i, v := range o.Voters {
			vs[i], _, _ = strings.Cut(v, "@")
		}
		slices.Sort(vs)
		parts = append(parts, fmt.Sprintf("%s=%d[%s]", o.Name, o.Votes, strings.Join(vs, ",")))
	}
	return fmt.Sprintf("%s /%d", strings.Join(parts, " "), m.PollTally.Voters)
}

// TestPollTally: votes on a stored poll are tallied on it as they are
// stored; a voter's later vote replaces the earlier, a withdrawal removes
// it, a redelivered or late (older) vote changes nothing, and the tally
// shows in Get and History with the options' names — on both engines, and
// with the poll's content sealed.
func TestPollTally(t *testing.T) {
	const ann, bob, cy = "ann@s.whatsapp.net", "bob@s.whatsapp.net", "cy@lid"
	steps := []pollStep{
		{"ann votes Red", voteEvent("V1", "P1", ann, 1000, "Red"), true, "Red=1[ann] Green=0[] Blue=0[] /1"},
		{"bob votes Red and Green", voteEvent("V2", "P1", bob, 2000, "Red", "Green"), true, "Red=2[ann,bob] Green=1[bob] Blue=0[] /2"},
		{"bob's vote redelivered", voteEvent("V2", "P1", bob, 2000, "Red", "Green"), false, "Red=2[ann,bob] Green=1[bob] Blue=0[] /2"},
		{"ann changes to Blue", voteEvent("V3", "P1", ann, 3000, "Blue"), true, "Red=1[bob] Green=1[bob] Blue=1[ann] /2"},
		{"ann's older vote arrives late", voteEvent("V0", "P1", ann, 500, "Green"), true, "Red=1[bob] Green=1[bob] Blue=1[ann] /2"},
		{"cy votes an option the poll lacks", voteEvent("V4", "P1", cy, 4000, "Purple"), true, "Red=1[bob] Green=1[bob] Blue=1[ann] /2"},
		{"cy votes Blue twice over", voteEvent("V5", "P1", cy, 5000, "Blue", "Blue"), true, "Red=1[bob] Green=1[bob] Blue=2[ann,cy] /3"},
		{"bob withdraws", voteEvent("V6", "P1", bob, 6000), true, "Red=0[] Green=0[] Blue=2[ann,cy] /2"},
		{"bob's first vote redelivered after", voteEvent("V2", "P1", bob, 2000, "Red", "Green"), false, "Red=0[] Green=0[] Blue=2[ann,cy] /2"},
		{"a vote on another poll", voteEvent("V7", "P2", ann, 7000, "Red"), true, "Red=0[] Green=0[] Blue=2[ann,cy] /2"},
		{"a vote on a poll not stored", voteEvent("V8", "NOPE", ann, 8000, "Red"), true, "Red=0[] Green=0[] Blue=2[ann,cy] /2"},
	}
	for _, sealed := range []bool{false, true} {
		// Subtests named apart: a second Each in one test would be
		// "sqlite#01", and a '#' in the database path cuts its file: URI.
		t.Run(map[bool]string{false: "clear", true: "sealed"}[sealed], func(t *testing.T) { eachPollTally(t, sealed, steps) })
	}
}

type pollStep = struct {
	name   string
	ev     *event.Event
	stored bool
	want   string
}

func eachPollTally(t *testing.T, sealed bool, steps []pollStep) {
	{
		storetest.Each(t, func(t *testing.T, e storetest.Engine) {
			v := newEnv(t, e)
			if sealed {
				v.s.Seal(sealtest.Ring(t, "", sealtest.Key(t, "k1")))
			}
			for _, id := range []string{"P1", "P2"} {
				if _, err := v.s.Record(ctx(t), pollEvent(id)); err != nil {
					t.Fatal(err)
				}
			}
			p, err := v.s.Get(ctx(t), "acme", "P1")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tally(t, p), "Red=0[] Green=0[] Blue=0[] /0"; got != want {
				t.Fatalf("sealed=%v: an unvoted poll shows %q, want %q", sealed, got, want)
			}
			for _, st := range steps {
				stored, err := v.s.Record(ctx(t), st.ev)
				if err != nil || stored != st.stored {
					t.Fatalf("sealed=%v %s: Record = %v, %v; want %v", sealed, st.name, stored, err, st.stored)
				}
				p, err := v.s.Get(ctx(t), "acme", "P1")
				if err != nil {
					t.Fatal(err)
				}
				if got := tally(t, p); got != st.want {
					t.Fatalf("sealed=%v %s: tally %q, want %q", sealed, st.name, got, st.want)
				}
			}
			// The vote is stored as its own message, the other poll got ann's
			// vote, and the history page shows tallies too.
			if m, err := v.s.Get(ctx(t), "acme", "V6"); err != nil || m.Type != event.TypePollVote || m.PollTally != nil {
				t.Fatalf("vote V6: %+v %v", m, err)
			}
			page, err := v.s.History(ctx(t), messages.Query{AccountID: "acme", Type: event.TypePoll})
			if err != nil || len(page.Messages) != 2 {
				t.Fatalf("polls: %v %v", page, err)
			}
			got := map[string]string{}
			for _, m := range page.Messages {
				got[m.MessageID] = tally(t, m)
			}
			if got["P1"] != "Red=0[] Green=0[] Blue=2[ann,cy] /2" || got["P2"] != "Red=1[ann] Green=0[] Blue=0[] /1" {
				t.Fatalf("sealed=%v: history tallies %v", sealed, got)
			}
		})
	}
}

// TestPollTallySurvivesSendCompletion: votes counted while our poll was
// still the pending placeholder stay counted when WhatsApp's rendering
// completes it.
func TestPollTallySurvivesSendCompletion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		ev := pollEvent("P1")
		pending := &messages.Message{Message: *ev.Message, Kind: event.KindMessageSent, Source: event.SourceAPI}
		pending.Raw = nil
		if err := v.s.StorePending(ctx(t), pending); err != nil {
			t.Fatal(err)
		}
		if _, err := v.s.Record(ctx(t), voteEvent("V1", "P1", "ann@s.whatsapp.net", 1000, "Green")); err != nil {
			t.Fatal(err)
		}
		if fresh, err := v.s.Record(ctx(t), ev); err != nil || !fresh {
			t.Fatalf("completing the poll: %v %v", fresh, err)
		}
		p, err := v.s.Get(ctx(t), "acme", "P1")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := tally(t, p), "Red=0[] Green=1[ann] Blue=0[] /1"; got != want || p.Status != messages.StatusSent {
			t.Fatalf("after completion: %q (status %s), want %q", got, p.Status, want)
		}
	})
}

// TestSQLiteVoteAndTallyCommitTogether: a vote whose tally update fails is
// not stored either, so WhatsApp's redelivery counts it later.
func TestSQLiteVoteAndTallyCommitTogether(t *testing.T) {
	v := newEnv(t, storetest.SQLite)
	if _, err := v.s.Record(ctx(t), pollEvent("P1")); err != nil {
		t.Fatal(err)
	}
	if err := v.sql.Write(ctx(t), func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TRIGGER refuse_tally BEFORE UPDATE ON messages WHEN old.id = 'acme:P1'
			BEGIN SELECT RAISE(ABORT, 'tally refused'); END`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	vote := voteEvent("V1", "P1", "ann@s.whatsapp.net", 1000, "Red")
	if _, err := v.s.Record(ctx(t), vote); err == nil {
		t.Fatal("Record succeeded with the tally refused")
	}
	if _, err := v.s.Get(ctx(t), "acme", "V1"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("vote stored without its tally: %v", err)
	}
	if err := v.sql.Write(ctx(t), func(tx *sql.Tx) error {
		_, err := tx.Exec(`DROP TRIGGER refuse_tally`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if stored, err := v.s.Record(ctx(t), vote); err != nil || !stored {
		t.Fatalf("redelivered vote: %v %v", stored, err)
	}
	p, err := v.s.Get(ctx(t), "acme", "P1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tally(t, p), "Red=1[ann] Green=0[] Blue=0[] /1"; got != want {
		t.Fatalf("tally %q, want %q", got, want)
	}
}
