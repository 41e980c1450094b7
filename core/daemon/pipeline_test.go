package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/poll"
)

// countingSink records the event ids it was handed; fail makes every
// delivery a retryable failure.
type countingSink struct {
	mu   sync.Mutex
	got  map[string]int
	fail bool
}

func (s *countingSink) Deliver(_ context.Context, j *outbox.Job) outbox.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = map[string]int{}
	}
	s.got[j.EventID]++
	if s.fail {
		return outbox.Retry(errors.New("receiver is down"))
	}
	return outbox.OK()
}

func (s *countingSink) count(eventID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[eventID]
}

type wireDelivery struct {
	ID       string `json:"id"`
	EventID  string `json:"eventId"`
	Target   string `json:"target"`
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	Log      []struct {
		At     time.Time `json:"at"`
		Result string    `json:"result"`
		Error  string    `json:"error"`
		Status int       `json:"status"`
	} `json:"log"`
	Event struct {
		Tags []string `json:"tags"`
	} `json:"event"`
}

func (c *client) deliveries(query string) []wireDelivery {
	c.t.Helper()
	var p struct {
		Deliveries []wireDelivery `json:"deliveries"`
	}
	if err := json.Unmarshal(c.must(c.get("/v1/deliveries?"+query), 200).body, &p); err != nil {
		c.t.Fatal(err)
	}
	return p.Deliveries
}

func (c *client) pipelineStage(name string) pipeline.StageStats {
	c.t.Helper()
	var s pipeline.Snapshot
	if err := json.Unmarshal(c.must(c.get("/v1/pipeline"), 200).body, &s); err != nil {
		c.t.Fatal(err)
	}
	for _, st := range s.Stages {
		if st.Name == name {
			return st
		}
	}
	c.t.Fatalf("no stage %q in %+v", name, s)
	return pipeline.StageStats{}
}

// TestPipelineTagsAndDelivers runs the configured pipeline in a daemon: a
// builtin tag stage whose tag is stored on the message, a sink that gets
// each event exactly once through the outbox, a failing sink that retries
// and then dead-letters, the counters of GET /v1/pipeline, and a refused
// reload that leaves the running stages alone.
func TestPipelineTagsAndDelivers(t *testing.T) {
	good, bad := &countingSink{}, &countingSink{fail: true}
	cfg := accountsConfig(t)
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "vip", Builtin: "tag", Config: map[string]any{"tag": "vip"}, Match: recv},
		{Name: "good", Sink: "good", Match: recv},
		{Name: "bad", Sink: "bad", Match: recv},
	}
	_, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) {
		o.Sinks = map[string]outbox.Sink{"good": good, "bad": bad}
		// Retries after 50 ms, 50 ms, then every 100 ms until the next one
		// would come more than 500 ms after the first attempt: the dead
		// letter cannot come earlier than that (see the good sink's count).
		o.OutboxSchedule = &outbox.Schedule{Delays: []time.Duration{50 * time.Millisecond, 50 * time.Millisecond},
			Every: 100 * time.Millisecond, MaxAge: 500 * time.Millisecond, Jitter: 0, MaxRetryAfter: time.Second}
		o.OutboxPoll = 20 * time.Millisecond
	})
	c.connectSim("pipe")
	id := c.inject("pipe", `{"from":"+15550001111","id":"P01","text":"hello pipeline"}`)
	eventID := "pipe:" + id

	// The tag is stored on the message.
	poll.Until(t, 10*time.Second, func() error {
		var m struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(c.must(c.get("/v1/accounts/pipe/messages/"+id), 200).body, &m); err != nil {
			return err
		}
		if len(m.Tags) != 1 || m.Tags[0] != "vip" {
			return fmt.Errorf("tags %v, want [vip]", m.Tags)
		}
		return nil
	})

	// The good sink got it, once, tagged; the delivery shows done.
	poll.Until(t, 10*time.Second, func() error {
		ds := c.deliveries("sink=good&eventId=" + eventID)
		if len(ds) != 1 || ds[0].State != "done" {
			return fmt.Errorf("deliveries %+v, want one done", ds)
		}
		if len(ds[0].Event.Tags) != 1 || ds[0].Event.Tags[0] != "vip" {
			return fmt.Errorf("delivered event tags %v", ds[0].Event.Tags)
		}
		return nil
	})

	// The bad sink: retried on the schedule, then dead-lettered.
	var dead wireDelivery
	poll.Until(t, 10*time.Second, func() error {
		ds := c.deliveries("sink=bad&state=deadletter")
		if len(ds) != 1 {
			return fmt.Errorf("%d dead letters", len(ds))
		}
		dead = ds[0]
		return nil
	})
	if dead.Attempts < 2 || len(dead.Log) != dead.Attempts || dead.Log[0].Result != "retry" || !strings.Contains(dead.Log[0].Error, "receiver is down") {
		t.Fatalf("dead letter %+v: want several logged retries", dead)
	}
	if n := bad.count(eventID); n != dead.Attempts {
		t.Fatalf("bad sink called %d times, job says %d attempts", n, dead.Attempts)
	}
	// The dead letter comes no sooner than the schedule's MaxAge (500 ms)
	// after the bad sink's first attempt, which the same event caused: a
	// second delivery to the good sink soon after its first would have
	// happened by then. A barrier instead of a sleep.
	if ds := c.deliveries("sink=good&eventId=" + eventID); len(ds) != 1 || ds[0].State != "done" || ds[0].Attempts != 1 {
		t.Fatalf("good deliveries %+v, want one done in one attempt", ds)
	}
	if n := good.count(eventID); n != 1 {
		t.Fatalf("good sink got the event %d times, want 1", n)
	}
	var one wireDelivery
	if err := json.Unmarshal(c.must(c.get("/v1/deliveries/"+dead.ID), 200).body, &one); err != nil || one.State != "deadletter" {
		t.Fatalf("GET one delivery: %+v %v", one, err)
	}
	// Retrying a dead letter queues it again; a pending one cannot be.
	bad.mu.Lock()
	bad.fail = false
	bad.mu.Unlock()
	c.must(c.post("/v1/deliveries/"+dead.ID+"/retry", ""), 200)
	poll.Until(t, 10*time.Second, func() error {
		if ds := c.deliveries("sink=bad&state=done"); len(ds) != 1 {
			return fmt.Errorf("retried job not done yet")
		}
		return nil
	})
	checkProblem(t, c.get("/v1/deliveries/nope%7Cbad"), 404, "")
	checkProblem(t, c.get("/v1/deliveries?cursor=%25%25"), 400, "cursor")
	checkProblem(t, c.get("/v1/deliveries?state=lost"), 400, "state")
	var replayed struct{ Count int }
	if err := json.Unmarshal(c.must(c.post("/v1/deliveries/replay", `{"state":"done","sink":"good"}`), 200).body, &replayed); err != nil || replayed.Count != 1 {
		t.Fatalf("replay: %+v %v", replayed, err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if n := good.count(eventID); n != 2 {
			return fmt.Errorf("good sink got the replayed event %d times in all, want 2", n)
		}
		return nil
	})

	// Counters moved.
	if st := c.pipelineStage("vip"); st.In != 1 || st.Actions["tag"] != 1 {
		t.Fatalf("vip stage %+v", st)
	}
	if st := c.pipelineStage("good"); st.In != 1 || st.Enqueued != 1 {
		t.Fatalf("good stage %+v", st)
	}

	// A bad reload is refused naming the stage; the old stages keep running.
	r := c.post("/v1/pipeline/reload", `{"stages":[{"name":"vip","builtin":"tag","config":{"tag":"vip"}},{"name":"x","builtin":"nope"}]}`)
	checkProblem(t, r, 400, "stages[1]")
	if !strings.Contains(string(r.body), `pipeline[1] \"x\": unknown builtin \"nope\"`) {
		t.Fatalf("reload problem does not name the stage: %s", r.body)
	}
	id2 := c.inject("pipe", `{"from":"+15550001111","id":"P02","text":"still tagged"}`)
	poll.Until(t, 10*time.Second, func() error {
		if ds := c.deliveries("sink=good&state=done&eventId=pipe:" + id2); len(ds) != 1 {
			return fmt.Errorf("second event not delivered by the old stages")
		}
		return nil
	})
	if st := c.pipelineStage("vip"); st.In != 2 {
		t.Fatalf("vip stage after refused reload %+v", st)
	}

	// A good reload takes effect for the next event.
	c.must(c.post("/v1/pipeline/reload", `{"stages":[{"name":"only","builtin":"tag","config":{"tag":"new"}}]}`), 200)
	id3 := c.inject("pipe", `{"from":"+15550001111","id":"P03","text":"new stages"}`)
	poll.Until(t, 10*time.Second, func() error {
		var m struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(c.must(c.get("/v1/accounts/pipe/messages/"+id3), 200).body, &m); err != nil {
			return err
		}
		if len(m.Tags) != 1 || m.Tags[0] != "new" {
			return fmt.Errorf("tags %v, want [new]", m.Tags)
		}
		return nil
	})
	if ds := c.deliveries("eventId=pipe:" + id3); len(ds) != 0 {
		t.Fatalf("event after reload delivered to removed sinks: %+v", ds)
	}
}
