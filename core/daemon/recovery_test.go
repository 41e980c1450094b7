package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/poll"
)

// TestRecoverUnfinishedEventsAfterRestart: an event stored but not run
// through the pipeline (as when the daemon died between storing it and the
// last stage) runs through it exactly once when the next daemon starts the
// account; an event the first daemon finished is not run again.
func TestRecoverUnfinishedEventsAfterRestart(t *testing.T) {
	cfg := accountsConfig(t)
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "vip", Builtin: "tag", Config: map[string]any{"tag": "vip"}, Match: recv},
		{Name: "good", Sink: "good", Match: recv},
	}
	withSink := func(s outbox.Sink) func(*daemon.Options) {
		return func(o *daemon.Options) {
			o.Sinks = map[string]outbox.Sink{"good": s}
			o.OutboxPoll = 20 * time.Millisecond
		}
	}
	first, second := &countingSink{}, &countingSink{}
	d1, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, withSink(first))
	c.connectSim("rec")
	doneID := "rec:" + c.inject("rec", `{"from":"+15550001111","id":"R01","text":"finished"}`)
	poll.Until(t, 10*time.Second, func() error {
		if n := first.count(doneID); n != 1 {
			return fmt.Errorf("first daemon's sink got %s %d times", doneID, n)
		}
		return nil
	})
	// Stored, never submitted: what a crash right after storing leaves.
	at := time.Now().UTC().Truncate(time.Second)
	ev := &event.Event{
		ID: event.MessageEventID("rec", "R02"), Kind: event.KindMessageReceived, AccountID: "rec",
		Timestamp: at, ChatID: "15550001111@s.whatsapp.net", Source: event.SourcePhone,
		Message: &event.Message{
			AccountID: "rec", MessageID: "R02", ChatID: "15550001111@s.whatsapp.net",
			From: "15550001111@s.whatsapp.net", Timestamp: at.Unix(), Type: event.TypeText, Text: "unfinished",
		},
	}
	if fresh, err := d1.Messages().Record(context.Background(), ev); err != nil || !fresh {
		t.Fatalf("Record = %v, %v", fresh, err)
	}
	if err := d1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := first.count(ev.ID); n != 0 {
		t.Fatalf("first daemon delivered the unsubmitted event %d times", n)
	}

	_, c2 := accountsDaemonWith(t, cfg, -1, nil, withSink(second))
	c2.waitState("rec", "connected")
	poll.Until(t, 10*time.Second, func() error {
		var m struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(c2.must(c2.get("/v1/accounts/rec/messages/R02"), 200).body, &m); err != nil {
			return err
		}
		if len(m.Tags) != 1 || m.Tags[0] != "vip" {
			return fmt.Errorf("tags %v, want [vip]", m.Tags)
		}
		ds := c2.deliveries("sink=good&eventId=" + ev.ID)
		if len(ds) != 1 || ds[0].State != "done" {
			return fmt.Errorf("deliveries %+v, want one done", ds)
		}
		if n := second.count(ev.ID); n != 1 {
			return fmt.Errorf("second daemon's sink got it %d times", n)
		}
		if st := c2.pipelineStage("good"); st.In < 1 {
			return fmt.Errorf("stage good saw %d", st.In)
		}
		return nil
	})
	// Exactly once, and the finished event was not run again.
	if st := c2.pipelineStage("vip"); st.In != 1 {
		t.Fatalf("tag stage ran %d times after the restart, want 1", st.In)
	}
	if n, m := second.count(ev.ID), second.count(doneID); n != 1 || m != 0 {
		t.Fatalf("second daemon's sink got the recovered event %d times, the finished one %d times", n, m)
	}
}
