package daemon_test

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/clock"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/poll"
)

// sentAt is one of the account's sends as the session made it, at the
// daemon's (fake) time.
type sentAt struct {
	text   string
	source event.Source
	at     time.Time
}

// TestSendsArePacedOnEveryPath: with send.pacing.sim.interval 10 s, a REST
// send, a rule's reply, a plugin's reply action, a plugin's send through
// the host service and another REST send of one account go out 10 s apart,
// in the order they were made, each at the (fake) time its slot came; the
// REST answer says when; /metrics shows the queue.
func TestSendsArePacedOnEveryPath(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	dir := t.TempDir()
	writeRule(t, dir, "reply.js", `on("message.received", (msg, ctx) => { if (msg.message.text === "rule") ctx.reply("sent by the rule"); });`)
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	cfg := accountsConfig(t)
	cfg.Send.Pacing.Sim = config.DriverPacing{Interval: 10 * time.Second}
	cfg.Plugins = map[string]pluginhost.Config{"dp": {Path: pluginBin("plugin"), Config: map[string]any{"greeting": "hello"}}}
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "rules", Rules: []string{filepath.Join(dir, "*.js")}, Match: recv},
		{Name: "dp", Plugin: "dp", Match: recv},
	}
	var (
		mu   sync.Mutex
		sent []sentAt
	)
	_, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) {
		o.Clock = clk
		o.PluginHost = pluginhost.Options{HealthInterval: 50 * time.Millisecond,
			RestartBackoff: pluginhost.Backoff{Min: 10 * time.Millisecond, Max: time.Second}}
		o.OutboxSchedule = &outbox.Schedule{Delays: []time.Duration{50 * time.Millisecond}, Every: 300 * time.Millisecond, MaxAge: 30 * time.Second, MaxRetryAfter: time.Second}
		o.OnEvent = func(_ context.Context, ev *event.Event) error {
			if ev.Kind == event.KindMessageSent && ev.AccountID == "pace" {
				mu.Lock()
				sent = append(sent, sentAt{text: ev.Message.Text, source: ev.Source, at: clk.Now()})
				mu.Unlock()
			}
			return nil
		}
	})
	c.connectSim("pace")
	sends := func() []sentAt {
		mu.Lock()
		defer mu.Unlock()
		return append([]sentAt(nil), sent...)
	}
	waitSent := func(n int) {
		t.Helper()
		poll.Until(t, 10*time.Second, func() error {
			if got := len(sends()); got != n {
				return fmt.Errorf("%d sent, want %d", got, n)
			}
			return nil
		})
	}
	waitQueued := func(n int) {
		t.Helper()
		poll.Until(t, 10*time.Second, func() error {
			if got := metric(t, c, `wildcat_send_queued{account="pace"}`); got != fmt.Sprint(n) {
				return fmt.Errorf("queued %q, want %d", got, n)
			}
			return nil
		})
	}
	restSend := func(text string, want time.Time) {
		t.Helper()
		r := c.must(c.post("/v1/accounts/pace/messages", fmt.Sprintf(`{"to":"+15550001111","text":%q}`, text)), 202).json(t)
		if r["scheduledAt"] != want.Format(time.RFC3339) {
			t.Fatalf("%s: scheduledAt %v, want %s", text, r["scheduledAt"], want.Format(time.RFC3339))
		}
	}
	inject := func(id, text string) {
		c.inject("pace", fmt.Sprintf(`{"from":"+15550001111","id":%q,"text":%q}`, id, text))
	}

	restSend("first by REST", t0)
	waitSent(1)
	inject("PACE01", "rule") // the rule replies
	waitQueued(1)
	inject("PACE02", "plain") // the plugin replies (an action)
	waitQueued(2)
	inject("PACE03", "host") // the plugin sends through the host service
	waitQueued(3)
	restSend("last by REST", t0.Add(40*time.Second))
	waitQueued(4)

	for i := 1; i <= 4; i++ {
		clk.Advance(9 * time.Second)
		if got := len(sends()); got != i {
			t.Fatalf("%d sent 9 s into gap %d, want %d", got, i, i)
		}
		clk.Advance(time.Second)
		waitSent(i + 1)
	}
	want := []sentAt{
		{"first by REST", event.SourceAPI, t0},
		{"sent by the rule", event.SourceRule, t0.Add(10 * time.Second)},
		{"plain reply", event.SourcePlugin, t0.Add(20 * time.Second)},
		{"sent by the plugin", event.SourcePlugin, t0.Add(30 * time.Second)},
		{"last by REST", event.SourceAPI, t0.Add(40 * time.Second)},
	}
	got := sends()
	for i := range want {
		if got[i].text != want[i].text || got[i].source != want[i].source || !got[i].at.Equal(want[i].at) {
			t.Fatalf("send %d: %+v, want %+v (all: %+v)", i, got[i], want[i], got)
		}
	}
	waitQueued(0)
	if h := metric(t, c, `wildcat_send_throttle_wait_seconds_sum`); h != "100" {
		t.Fatalf("throttle waits summed to %s s, want 10+20+30+40", h)
	}
}

// metric reads one sample of /metrics by its name and labels.
func metric(t *testing.T, c *client, series string) string {
	t.Helper()
	r := c.must(c.get("/metrics"), 200)
	sc := bufio.NewScanner(strings.NewReader(string(r.body)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return v
		}
	}
	return ""
}

// TestRateLimitsFromConfig: http.rate_limits reaches the API (loopback not
// exempt here): a burst of reads gets 429 with Retry-After and the
// RateLimit headers, checked against the OpenAPI document like every
// answer, and reads come back once the (fake) clock has refilled the
// bucket; sends have a bucket of their own.
func TestRateLimitsFromConfig(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	cfg := accountsConfig(t)
	rl := &cfg.HTTP.RateLimits
	rl.ExemptLoopback = false
	rl.ReadsPerMinute, rl.ReadsBurst = 30, 3
	_, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) { o.Clock = clk })

	for i := range 3 {
		r := c.must(c.get("/v1/accounts"), 200)
		if r.header.Get("RateLimit-Limit") != "3" || r.header.Get("RateLimit-Remaining") != fmt.Sprint(2-i) {
			t.Fatalf("read %d: headers %v", i, r.header)
		}
	}
	r := c.must(c.get("/v1/accounts"), 429)
	if r.header.Get("Retry-After") != "2" || r.header.Get("RateLimit-Remaining") != "0" || r.header.Get("RateLimit-Reset") != "6" {
		t.Fatalf("over the burst: %v %s", r.header, r.body)
	}
	// The send route counts in its own bucket (here: refused for the
	// unknown account, after the limiter let it through).
	c.must(c.post("/v1/accounts/nobody/messages", `{"to":"+15550001111","text":"hi"}`), 404)
	clk.Advance(2 * time.Second)
	c.must(c.get("/v1/accounts"), 200)
	c.must(c.get("/v1/accounts"), 429)
}
