package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/poll"
)

// pongRule answers "ping" with a quoting "pong" and tags the ping.
const pongRule = `on("message.received", (msg, ctx) => {
  if (msg.message.text !== "ping") return;
  ctx.reply("pong", { quote: true });
  ctx.tag("ping");
});
`

// shutdownConfig is the shipped configuration's shape: a log stage, a rules
// stage that answers pings, and the webhooks sink; one declared sim account.
func shutdownConfig(t *testing.T) config.Config {
	dir := t.TempDir()
	writeRule(t, dir, "pong.js", pongRule)
	cfg := accountsConfig(t)
	cfg.Accounts = []config.Account{{ID: "demo", Driver: "sim", Name: "Demo"}}
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "log", Builtin: "log", Config: map[string]any{"level": "debug"}, Match: pipeline.Match{Kinds: []string{"message.*"}}},
		{Name: "rules", Rules: []string{dir + "/*.js"}, Config: map[string]any{"pong": map[string]any{"timeout": "2s"}}},
		{Name: "webhooks", Sink: "webhooks"},
	}
	return cfg
}

// injectPings posts n "ping"s concurrently from a few senders and fails
// unless every one is accepted; it returns their message ids.
func injectPings(t *testing.T, c *client, n int) []string {
	t.Helper()
	ids := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = fmt.Sprintf("PING%03d", i)
		wg.Go(func() {
			body := fmt.Sprintf(`{"from":"+1555000%04d","id":%q,"text":"ping"}`, i%6, ids[i])
			if r := c.post("/v1/accounts/demo/sim/inbound", body); r.status != 201 {
				errs <- fmt.Errorf("inject %s: %d %s", ids[i], r.status, r.body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

// pongsAndTags counts, per ping id, the account's "pong" replies quoting it
// and whether the ping carries the tag "ping".
func pongsAndTags(c *client) (pongs map[string]int, tagged map[string]bool, err error) {
	pongs, tagged = map[string]int{}, map[string]bool{}
	cursor := ""
	for {
		path := "/v1/accounts/demo/messages?limit=500"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := c.get(path)
		if r.status != 200 {
			return nil, nil, fmt.Errorf("list messages: %d %s", r.status, r.body)
		}
		var page struct {
			Messages []struct {
				MessageID string   `json:"messageId"`
				FromMe    bool     `json:"fromMe"`
				Text      string   `json:"text"`
				Tags      []string `json:"tags"`
				Quoted    *struct {
					MessageID string `json:"messageId"`
				} `json:"quoted"`
			} `json:"messages"`
			NextCursor *string `json:"nextCursor"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			return nil, nil, err
		}
		for _, m := range page.Messages {
			switch {
			case m.FromMe && m.Text == "pong" && m.Quoted != nil:
				pongs[m.Quoted.MessageID]++
			case !m.FromMe && slices.Contains(m.Tags, "ping"):
				tagged[m.MessageID] = true
			}
		}
		if page.NextCursor == nil {
			return pongs, tagged, nil
		}
		cursor = *page.NextCursor
	}
}

// stopUnderLoad: 60 concurrent pings, a stop right after they are
// accepted, a restart on the same store; once recovery is through, every
// ping has exactly one pong and its tag.
func stopUnderLoad(t *testing.T, deadline time.Duration) {
	cfg := shutdownConfig(t)
	d1, c1 := accountsDaemonWith(t, cfg, time.Millisecond, nil, nil)
	c1.waitState("demo", "connected")
	ids := injectPings(t, c1, 60)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	err := d1.Shutdown(ctx)
	cancel()
	t.Logf("first daemon stopped within %v: %v", deadline, err)

	_, c2 := accountsDaemonWith(t, cfg, -1, nil, nil)
	c2.waitState("demo", "connected")
	var pongs map[string]int
	var tagged map[string]bool
	poll.Until(t, time.Minute, func() error {
		var err error
		if pongs, tagged, err = pongsAndTags(c2); err != nil {
			return err
		}
		var missing []string
		for _, id := range ids {
			if pongs[id] == 0 || !tagged[id] {
				missing = append(missing, fmt.Sprintf("%s (pongs %d, tagged %v)", id, pongs[id], tagged[id]))
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d pings not answered and tagged: %v", len(missing), len(ids), missing)
		}
		return nil
	})
	for _, id := range ids {
		if pongs[id] != 1 {
			t.Errorf("ping %s has %d pongs, want 1", id, pongs[id])
		}
	}
}

// TestStopUnderLoadDrainsThePipeline: a stop with time to spare finishes
// every accepted ping before the sessions close — the replies go out through
// the still-open session.
func TestStopUnderLoadDrainsThePipeline(t *testing.T) {
	stopUnderLoad(t, 30*time.Second)
}

// TestStopUnderLoadPastItsDeadlineLeavesWorkForRecovery: a stop whose
// deadline ends mid-drain leaves what it could not finish unprocessed, never
// marked done with its reply or tag dropped; the restart finishes it.
func TestStopUnderLoadPastItsDeadlineLeavesWorkForRecovery(t *testing.T) {
	stopUnderLoad(t, 20*time.Millisecond)
}
