package daemon_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// waitGroupText waits for the message of the group chat with text prefix
// and returns it.
func waitGroupText(t *testing.T, c *client, acct, jid, prefix string) *messages.Message {
	t.Helper()
	var found *messages.Message
	poll.Until(t, 30*time.Second, func() error {
		for _, m := range c.allMessages(acct) {
			if m.ChatID == jid && strings.HasPrefix(m.Text, prefix) {
				found = m
				return nil
			}
		}
		return fmt.Errorf("%s has no message starting %q in %s", acct, prefix, jid)
	})
	return found
}

// TestGroupEventsReachRulesAndWebhooks: group.update events go through the
// pipeline like any other. The shipped group rule, running for a bot
// account, hears it was added (and greets the group), answers "!help" in a
// mention by @-mentioning the asker; a webhook endpoint subscribed to
// group.update gets the bot's group events and nothing else.
func TestGroupEventsReachRulesAndWebhooks(t *testing.T) {
	hooks := newHookReceiver(t)
	_, c := webhookDaemon(t, func(cfg *config.Config) {
		cfg.Pipeline = []pipeline.StageConfig{
			{Name: "rules", Rules: []string{shippedScript(t, "40-group-mention.js")}, Match: pipeline.Match{Accounts: []string{"gbot"}},
				Timeout: 30 * time.Second, Config: map[string]any{"40-group-mention": map[string]any{"timeout": "10s"}}},
			{Name: "hooks", Sink: webhooks.SinkName},
		}
	})
	c.connectSim("gbot")
	c.connectSim("gboss")
	c.must(c.post("/v1/webhooks", fmt.Sprintf(`{"id":"groups","url":%q,"events":["group.update"],"accounts":["gbot"]}`, hooks.URL)), 201)
	bot, boss := sim.JID("gbot").String(), sim.JID("gboss").String()

	g := decode[wireGroup](t, c.must(c.post("/v1/accounts/gboss/groups", fmt.Sprintf(`{"subject":"Help desk","participants":[%q]}`, phoneOf("gbot"))), 201))

	// The rule saw the bot's group.update: its greeting reaches the boss.
	greeting := waitGroupText(t, c, "gboss", g.JID, "Hello Help desk!")
	if greeting.From != bot || greeting.Source != "phone" {
		t.Fatalf("greeting %+v", greeting.Message)
	}
	// "!help" with a mention of the bot: the answer @-mentions the boss,
	// who is the group's admin.
	c.send("gboss", fmt.Sprintf(`{"to":%q,"text":"@%s !help","mentions":[%q]}`, g.JID, sim.JID("gbot").User, phoneOf("gbot")))
	answer := waitGroupText(t, c, "gboss", g.JID, "@"+sim.JID("gboss").User+" mention me")
	if answer.From != bot || !slices.Contains(answer.Mentions, boss) || !strings.Contains(answer.Text, "Admins: @"+sim.JID("gboss").User) {
		t.Fatalf("help answer %+v", answer.Message)
	}
	if answer.Quoted == nil {
		t.Fatalf("the help answer quotes nothing: %+v", answer.Message)
	}

	// The webhook got the bot's group.update (it was added, with the
	// group's info) and, subscribed to group.update only, no message.
	c.must(c.do("PATCH", groupPath("gboss", g.JID), "application/json", `{"subject":"Help desk 2"}`), 200)
	var groupHooks []map[string]any
	poll.Until(t, 30*time.Second, func() error {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		groupHooks = nil
		for _, r := range hooks.got {
			if r.env.Type != "group.update" {
				return fmt.Errorf("the group.update endpoint got a %s", r.env.Type)
			}
			var env struct {
				Data struct {
					Group map[string]any `json:"group"`
				} `json:"data"`
			}
			_ = json.Unmarshal(r.body, &env)
			groupHooks = append(groupHooks, env.Data.Group)
		}
		if len(groupHooks) < 2 {
			return fmt.Errorf("%d group webhooks", len(groupHooks))
		}
		return nil
	})
	added, renamed := groupHooks[0], groupHooks[1]
	if added["self"] != "added" || added["actor"] != boss || added["info"].(map[string]any)["name"] != "Help desk" {
		t.Fatalf("added webhook %v", added)
	}
	if renamed["name"] != "Help desk 2" || renamed["self"] != nil {
		t.Fatalf("renamed webhook %v", renamed)
	}
}
