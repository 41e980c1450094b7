package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// wireTrace is GET /v1/accounts/{id}/messages/{messageId}/trace.
type wireTrace struct {
	MessageID  string         `json:"messageId"`
	EventID    string         `json:"eventId"`
	Trace      pipeline.Trace `json:"trace"`
	Deliveries []struct {
		ID     string `json:"id"`
		Target string `json:"target"`
		State  string `json:"state"`
		Log    []struct {
			Result string `json:"result"`
			Status int    `json:"status"`
		} `json:"log"`
	} `json:"deliveries"`
}

func (w wireTrace) stage(t *testing.T, name string) pipeline.StageTrace {
	t.Helper()
	for _, st := range w.Trace.Stages {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no stage %q in the trace %+v", name, w.Trace)
	return pipeline.StageTrace{}
}

// A message through a rules stage (one rule tags it, one throws), a plugin
// stage and the webhooks sink: its trace names the rule that tagged it and
// the one that failed (with its line), the plugin's actions, every stage's
// timing, and the webhook job with its delivery.
func TestMessageTraceOverREST(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testMessageTrace(t, e) })
}

func testMessageTrace(t *testing.T, e storetest.Engine) {
	dir := t.TempDir()
	writeRule(t, dir, "10-vip.js", `on("message.received", (msg, ctx) => {
  if ((msg.message.text ?? "").includes("ping")) ctx.tag("vip");
});`)
	writeRule(t, dir, "20-broken.js", `on("message.received", (msg, ctx) => {
  if ((msg.message.text ?? "").includes("break")) {
    throw new Error("broken on purpose");
  }
});`)
	hook := newHookReceiver(t)
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	_, c := webhookDaemon(t, func(cfg *config.Config) {
		if e == storetest.MongoDB {
			cfg.MongoDB.URI, cfg.MongoDB.Database = storetest.URI(t), storetest.DatabaseName(t)
		}
		cfg.Plugins["dp"] = pluginhost.Config{Path: pluginBin("plugin"), Config: map[string]any{"greeting": "hello"}}
		cfg.Webhooks.Endpoints = []webhooks.Declared{{ID: "crm", URL: hook.URL, Events: []string{"message.received"}}}
		cfg.Pipeline = []pipeline.StageConfig{
			{Name: "rules", Rules: []string{filepath.Join(dir, "*.js")}, Match: recv, Timeout: 30 * time.Second},
			{Name: "dp", Plugin: "dp", Match: recv},
			{Name: "status-only", Builtin: "tag", Config: map[string]any{"tag": "never"}, Match: pipeline.Match{Kinds: []string{"message.status"}}},
			{Name: "hooks", Sink: webhooks.SinkName, Match: recv},
		}
	})
	c.connectSim("tr")

	c.must(c.get("/v1/accounts/tr/messages/NOPE/trace"), 404)
	c.must(c.get("/v1/accounts/nobody/messages/NOPE/trace"), 404)

	id := c.inject("tr", `{"from":"+15550001111","id":"TR01","text":"ping"}`)
	hook.wait(t, "message.received", "ping")
	var w wireTrace
	poll.Until(t, 30*time.Second, func() error {
		r := c.get("/v1/accounts/tr/messages/" + id + "/trace")
		if r.status != 200 {
			return fmt.Errorf("trace: %d %s", r.status, r.body)
		}
		w = wireTrace{}
		if err := json.Unmarshal(r.body, &w); err != nil {
			return err
		}
		if len(w.Deliveries) != 1 || w.Deliveries[0].State != "done" {
			return fmt.Errorf("deliveries %+v, want the webhook job done", w.Deliveries)
		}
		return nil
	})
	if w.EventID != "tr:"+id || w.Trace.EventID != w.EventID || w.Trace.DurationMs <= 0 {
		t.Fatalf("trace of %s: %+v", id, w)
	}
	rules := w.stage(t, "rules")
	if rules.Kind != pipeline.KindRules || rules.Outcome != pipeline.OutcomeOK || rules.DurationMs <= 0 {
		t.Fatalf("rules stage %+v", rules)
	}
	if len(rules.Actions) != 1 || rules.Actions[0].Type != pipeline.ActionTag || rules.Actions[0].Origin != "10-vip" ||
		!slices.Equal(rules.Actions[0].Tags, []string{"vip"}) {
		t.Fatalf("rules stage actions %+v, want the tag vip by 10-vip", rules.Actions)
	}
	if len(rules.Rules) != 2 || rules.Rules[0].Rule != "10-vip" || rules.Rules[0].Effects != 1 || rules.Rules[1].Rule != "20-broken" || rules.Rules[1].Error != "" {
		t.Fatalf("rules %+v, want 10-vip with one effect and 20-broken without error", rules.Rules)
	}
	dp := w.stage(t, "dp")
	if dp.Kind != pipeline.KindPlugin || dp.Outcome != pipeline.OutcomeOK || dp.StartMs < rules.StartMs+rules.DurationMs {
		t.Fatalf("plugin stage %+v after rules %+v", dp, rules)
	}
	var tagged, replied bool
	for _, a := range dp.Actions {
		tagged = tagged || (a.Type == pipeline.ActionTag && slices.Contains(a.Tags, "plugged"))
		replied = replied || (a.Type == pipeline.ActionReply && a.Text == "hello pong")
	}
	if !tagged || !replied {
		t.Fatalf("plugin actions %+v, want its tag plugged and reply hello pong", dp.Actions)
	}
	if st := w.stage(t, "status-only"); st.Outcome != pipeline.OutcomeSkipped || st.Skipped != "match" {
		t.Fatalf("a stage that does not match: %+v", st)
	}
	hooks := w.stage(t, "hooks")
	if hooks.Kind != pipeline.KindSink || hooks.Outcome != pipeline.OutcomeOK || !slices.Equal(hooks.Targets, []string{"webhook:crm"}) {
		t.Fatalf("sink stage %+v", hooks)
	}
	if d := w.Deliveries[0]; d.Target != "webhook:crm" || d.ID != w.EventID+"|webhook:crm" || len(d.Log) == 0 || d.Log[0].Status != 200 {
		t.Fatalf("delivery %+v, want the webhook job with its 200 attempt", d)
	}

	// A rule that throws fails the stage's call: the trace says which rule,
	// with its line, and the plugin stage still ran (onError skip).
	bad := c.inject("tr", `{"from":"+15550001111","id":"TR02","text":"ping break"}`)
	hook.wait(t, "message.received", "ping break")
	poll.Until(t, 30*time.Second, func() error {
		r := c.get("/v1/accounts/tr/messages/" + bad + "/trace")
		if r.status != 200 {
			return fmt.Errorf("trace: %d %s", r.status, r.body)
		}
		w = wireTrace{}
		return json.Unmarshal(r.body, &w)
	})
	rules = w.stage(t, "rules")
	if rules.Outcome != pipeline.OutcomeError || !strings.Contains(rules.Error, "broken on purpose") || len(rules.Actions) != 0 {
		t.Fatalf("failed rules stage %+v", rules)
	}
	if len(rules.Rules) != 2 || rules.Rules[1].Rule != "20-broken" || !strings.Contains(rules.Rules[1].Error, "broken on purpose") || rules.Rules[1].Line != 3 {
		t.Fatalf("rules %+v, want 20-broken failing at line 3", rules.Rules)
	}
	if dp := w.stage(t, "dp"); dp.Outcome != pipeline.OutcomeOK {
		t.Fatalf("plugin stage after a failed rules stage: %+v", dp)
	}
}

// A trace is kept as long as the event's delivered jobs: once both are
// older than outbox.retention, the sweeps remove both, and the route says
// the message has no trace (not that it does not exist).
func TestTracesArePurgedWithTheDeliveredJobs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		sink := &countingSink{}
		cfg := engineConfig(t, e)
		const retention = 100 * time.Millisecond
		cfg.Outbox.Retention = retention
		cfg.Pipeline = []pipeline.StageConfig{
			{Name: "tag", Builtin: "tag", Config: map[string]any{"tag": "seen"}},
			{Name: "out", Sink: "archive"},
		}
		d, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) {
			o.Sinks = map[string]outbox.Sink{"archive": sink}
			o.OutboxPoll = 20 * time.Millisecond
		})
		c.connectSim("pg")
		id := c.inject("pg", `{"from":"+15550001111","id":"PG01","text":"hello"}`)
		poll.Until(t, 30*time.Second, func() error {
			var w wireTrace
			r := c.get("/v1/accounts/pg/messages/" + id + "/trace")
			if r.status != 200 {
				return fmt.Errorf("trace: %d %s", r.status, r.body)
			}
			if err := json.Unmarshal(r.body, &w); err != nil {
				return err
			}
			if len(w.Deliveries) != 1 || w.Deliveries[0].State != "done" {
				return fmt.Errorf("deliveries %+v", w.Deliveries)
			}
			return nil
		})
		ctx := context.Background()
		poll.Until(t, 30*time.Second, func() error {
			if _, err := d.Outbox().Purge(ctx, time.Now().Add(-retention)); err != nil {
				return err
			}
			if _, err := d.PurgeTraces(ctx); err != nil {
				return err
			}
			if ds := c.deliveries("eventId=pg:" + id); len(ds) != 0 {
				return fmt.Errorf("delivered job still listed: %+v", ds)
			}
			r := c.get("/v1/accounts/pg/messages/" + id + "/trace")
			if r.status != 404 || !strings.Contains(string(r.body), "no-trace") {
				return fmt.Errorf("trace after retention: %d %s", r.status, r.body)
			}
			return nil
		})
		// The message itself stays.
		c.must(c.get("/v1/accounts/pg/messages/"+id), 200)
	})
}
