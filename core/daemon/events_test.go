package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/poll"
)

// sseEvent is one event read from GET /v1/events.
type sseEvent struct {
	id, kind string
	ev       event.Event
}

// sseStream reads server-sent events in the background.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

func openStream(t *testing.T, c *client, query, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/events?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 1000), cancel: cancel}
	t.Cleanup(s.close)
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var cur sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.id != "" {
					if err := json.Unmarshal([]byte(data), &cur.ev); err != nil {
						panic(fmt.Sprintf("event data is not JSON: %q", data))
					}
					s.events <- cur
				}
				cur, data = sseEvent{}, ""
			case strings.HasPrefix(line, "id: "):
				cur.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				cur.kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return s
}

func (s *sseStream) close() { s.cancel(); s.resp.Body.Close() }

// next returns the next event, failing after 10 s.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case e, ok := <-s.events:
		if !ok {
			t.Fatal("event stream ended")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return sseEvent{}
}

// TestEventStream: GET /v1/events delivers each event once it is through
// the pipeline (tags included), filtered like a stage match; a client that
// reconnects with Last-Event-ID gets what it missed, from the daemon's
// memory and, after a restart, from the stored messages; bad filters are
// refused naming the parameter.
func TestEventStream(t *testing.T) {
	cfg := accountsConfig(t)
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "vip", Builtin: "tag", Config: map[string]any{"tag": "vip"}, Match: pipeline.Match{Kinds: []string{"message.received"}}},
	}
	d, c := accountsDaemon(t, cfg, time.Millisecond, nil)
	c.connectSim("ev")

	for _, tc := range []struct{ query, field string }{
		{"kinds=message.nope", "kinds"},
		{"chat=room", "chat"},
		{"fromMe=perhaps", "fromMe"},
		{"sources=pigeon", "sources"},
		{"colour=red", "colour"},
		{"accounts=../x", "accounts[0]"},
		{"accounts=ev,%u002e", "query"},
	} {
		checkProblem(t, c.get("/v1/events?"+tc.query), 400, tc.field)
	}

	received := openStream(t, c, "kinds=message.received&accounts=ev", "")
	all := openStream(t, c, "accounts=ev", "")
	id1 := c.inject("ev", `{"from":"+15550002222","id":"S01","text":"first"}`)
	got := received.next(t)
	if got.id != "ev:"+id1 || got.kind != "message.received" || got.ev.Message == nil || got.ev.Message.Text != "first" {
		t.Fatalf("first streamed event %+v", got)
	}
	if len(got.ev.Tags) != 1 || got.ev.Tags[0] != "vip" {
		t.Fatalf("streamed event tags %v, want the pipeline's [vip]", got.ev.Tags)
	}
	// The unfiltered stream also carries the message's status events
	// (the sim marks our sends delivered and read) — and the send itself.
	sent := c.send("ev", `{"to":"+15550002222","text":"an answer"}`)
	kinds := map[string]bool{}
	for !kinds["message.sent"] || !kinds["message.status"] {
		e := all.next(t)
		kinds[e.kind] = true
		if e.kind == "message.sent" && e.ev.Message.MessageID != sent {
			t.Fatalf("sent event for %s, want %s", e.ev.Message.MessageID, sent)
		}
	}

	// Two more while the filtered reader is away; it resumes after id1.
	received.close()
	id2 := c.inject("ev", `{"from":"+15550002222","id":"S02","text":"second"}`)
	id3 := c.inject("ev", `{"from":"+15550002222","id":"S03","text":"third"}`)
	poll.Until(t, 10*time.Second, func() error {
		if m := c.message("ev", id3); len(m.Tags) == 0 {
			return fmt.Errorf("third message not through the pipeline yet")
		}
		return nil
	})
	resumed := openStream(t, c, "kinds=message.received&accounts=ev", "ev:"+id1)
	for _, want := range []string{id2, id3} {
		if e := resumed.next(t); e.id != "ev:"+want {
			t.Fatalf("resumed with %s, want ev:%s", e.id, want)
		}
	}
	resumed.close()

	// After a restart the daemon remembers nothing: the stored messages
	// fill the gap, then live events follow without a repeat.
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, c2 := accountsDaemon(t, cfg, time.Millisecond, nil)
	c2.waitState("ev", "connected")
	afterRestart := openStream(t, c2, "kinds=message.received", "ev:"+id1)
	for _, want := range []string{id2, id3} {
		e := afterRestart.next(t)
		if e.id != "ev:"+want || len(e.ev.Tags) != 1 {
			t.Fatalf("replayed %s with tags %v, want ev:%s tagged", e.id, e.ev.Tags, want)
		}
	}
	id4 := c2.inject("ev", `{"from":"+15550002222","id":"S04","text":"fourth"}`)
	if e := afterRestart.next(t); e.id != "ev:"+id4 {
		t.Fatalf("live event after the replay %s, want ev:%s", e.id, id4)
	}

	// An id nobody knows: live events only.
	unknown := openStream(t, c2, "kinds=message.received", "ev:NOPE")
	id5 := c2.inject("ev", `{"from":"+15550002222","id":"S05","text":"fifth"}`)
	if e := unknown.next(t); e.id != "ev:"+id5 {
		t.Fatalf("stream with an unknown Last-Event-ID got %s, want ev:%s", e.id, id5)
	}
}

// TestMetricsEndpoint: GET /metrics serves the pipeline's per-stage
// counters and the outbox's depth in the Prometheus text format.
func TestMetricsEndpoint(t *testing.T) {
	cfg := accountsConfig(t)
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "vip", Builtin: "tag", Config: map[string]any{"tag": "vip"}, Match: pipeline.Match{Kinds: []string{"message.received"}}},
	}
	_, c := accountsDaemon(t, cfg, time.Millisecond, nil)
	c.connectSim("met")
	c.inject("met", `{"from":"+15550003333","id":"M01","text":"count me"}`)
	poll.Until(t, 10*time.Second, func() error {
		body := string(c.must(c.get("/metrics"), 200).body)
		for _, want := range []string{
			`wildcat_pipeline_stage_events_total{stage="vip"} 1`,
			`wildcat_pipeline_stage_actions_total{action="tag",stage="vip"} 1`,
			`wildcat_pipeline_stage_duration_seconds_count{stage="vip"} 1`,
			"wildcat_outbox_oldest_pending_seconds 0",
			"go_goroutines",
		} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("metrics lack %q", want)
			}
		}
		return nil
	})
}
