package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/sqlite"
)

// The trace costs no write: on the embedded engine the same events through
// the same stages take exactly as many writes (one per event: the done
// mark with its tags and jobs) with tracing on as with it off, and with it
// on every event's trace is stored — by that same write.
func TestTraceCostsNoWrite(t *testing.T) {
	const n = 20
	run := func(t *testing.T, trace bool) (writes uint64, ms *messages.Store, ids []string) {
		ctx := context.Background()
		db, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "wildcat.db"), Sync: sqlite.SyncNormal,
			Schemas: []sqlite.Schema{messages.SQLiteSchema, outbox.SQLiteSchema}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		ms = messages.NewSQLite(db, nil)
		ob, err := outbox.OpenSQLite(db, outbox.Options{})
		if err != nil {
			t.Fatal(err)
		}
		reg := pipeline.NewRegistry()
		reg.RegisterSink("archive")
		eng, err := pipeline.New(pipeline.Options{Registry: reg, Progress: txProgress{db: db, messages: ms, outbox: ob}, Trace: trace,
			Stages: []pipeline.StageConfig{
				{Name: "tag", Builtin: "tag", Config: map[string]any{"tag": "seen"}},
				{Name: "out", Sink: "archive"},
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = eng.Close(context.Background()) })
		var evs []*event.Event
		for i := range n {
			id := fmt.Sprintf("W%02d", i)
			ev := &event.Event{
				ID: event.MessageEventID("acme", id), Kind: event.KindMessageReceived, AccountID: "acme",
				ChatID: fmt.Sprintf("1555000%04d@s.whatsapp.net", i), Source: event.SourcePhone, Timestamp: time.Now().UTC(),
				Message: &event.Message{AccountID: "acme", MessageID: id, ChatID: fmt.Sprintf("1555000%04d@s.whatsapp.net", i),
					From: fmt.Sprintf("1555000%04d@s.whatsapp.net", i), Timestamp: time.Now().Unix(), Type: event.TypeText, Text: "hi"},
			}
			if _, err := ms.Record(ctx, ev); err != nil {
				t.Fatal(err)
			}
			evs, ids = append(evs, ev), append(ids, id)
		}
		before := db.Stats().Writes
		for _, ev := range evs {
			if err := eng.Submit(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		poll.Until(t, 30*time.Second, func() error {
			for _, ev := range evs {
				if pending, err := ms.PipelinePending(ctx, ev.ID); err != nil || pending {
					return fmt.Errorf("%s pending (%v)", ev.ID, err)
				}
			}
			return nil
		})
		return db.Stats().Writes - before, ms, ids
	}

	off, _, _ := run(t, false)
	on, ms, ids := run(t, true)
	if off != n || on != off {
		t.Fatalf("%d events took %d writes with tracing off and %d with it on; want %d both times", n, off, on, n)
	}
	for _, id := range ids {
		raw, _, err := ms.Trace(context.Background(), "acme", id)
		if err != nil {
			t.Fatalf("trace of %s: %v", id, err)
		}
		var tr pipeline.Trace
		if err := json.Unmarshal(raw, &tr); err != nil {
			t.Fatal(err)
		}
		if len(tr.Stages) != 2 || tr.Stages[0].Name != "tag" || tr.Stages[1].Targets[0] != "archive" {
			t.Fatalf("trace of %s: %s", id, raw)
		}
	}
}
