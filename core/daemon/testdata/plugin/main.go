// Command plugin is the daemon tests' plugin: inline and sink, with a
// behaviour chosen by the event's message text.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/wildcathub/wildcat/sdk"
)

type testPlugin struct{ greeting string }

func (p *testPlugin) Describe() sdk.Description {
	return sdk.Description{Name: "daemon-test", Version: "0.9.1", EventKinds: []string{"message.received"}}
}

func (p *testPlugin) Configure(_ context.Context, cfg map[string]any) error {
	p.greeting, _ = cfg["greeting"].(string)
	return nil
}

func text(ev *sdk.Event) string {
	if ev.Message == nil {
		return ""
	}
	return ev.Message.Text
}

func (p *testPlugin) Handle(ctx context.Context, ev *sdk.Event) ([]sdk.Action, error) {
	host := sdk.HostFrom(ctx)
	switch t := text(ev); t {
	case "ping":
		return []sdk.Action{sdk.QuoteReply(p.greeting + " pong"), sdk.Tag("plugged"), sdk.Annotate("plugin", "seen")}, nil
	case "plain":
		return []sdk.Action{sdk.Reply("plain reply")}, nil
	case "drop":
		return []sdk.Action{sdk.Tag("dropped-by-plugin"), sdk.Drop()}, nil
	case "host":
		// The daemon's services: look the message up, send through the
		// session, keep a value.
		m, err := host.GetMessage(ctx, ev.AccountID, ev.Message.MessageID)
		if err != nil {
			return nil, err
		}
		_, missing := host.GetMessage(ctx, ev.AccountID, "NOPE")
		id, err := host.SendMessage(ctx, ev.AccountID, &sdk.SendRequest{To: ev.ChatID, Text: "sent by the plugin"})
		if err != nil {
			return nil, err
		}
		if err := host.KVSet(ctx, "last", []byte(m.MessageID), 0); err != nil {
			return nil, err
		}
		v, _, err := host.KVGet(ctx, "last")
		if err != nil {
			return nil, err
		}
		return []sdk.Action{sdk.Annotate("looked-up", m.Text), sdk.Annotate("missing", fmt.Sprint(errors.Is(missing, sdk.ErrNotFound))),
			sdk.Annotate("sent", id), sdk.Annotate("kv", string(v))}, nil
	case "crash":
		os.Exit(6)
	case "boom":
		return nil, errors.New("handler says no")
	}
	return nil, nil
}

// Deliver acts on "deliver <what>" messages; anything else is delivered.
func (p *testPlugin) Deliver(ctx context.Context, job *sdk.Job) sdk.Result {
	host := sdk.HostFrom(ctx)
	switch strings.TrimPrefix(text(job.Event), "deliver ") {
	case "retry":
		if job.Attempt < 2 {
			return sdk.Retry(fmt.Errorf("busy (attempt %d)", job.Attempt))
		}
	case "fail":
		return sdk.Fail(errors.New("410 gone"))
	case "crash":
		// The first attempt takes the process down; the restarted one
		// delivers. The KV store outlives the process.
		_, crashed, err := host.KVGet(ctx, "crashed:"+job.ID)
		if err != nil {
			return sdk.Retry(err)
		}
		if !crashed {
			if err := host.KVSet(ctx, "crashed:"+job.ID, []byte("yes"), 0); err != nil {
				return sdk.Retry(err)
			}
			os.Exit(7)
		}
	}
	return sdk.OK()
}

func main() { sdk.Serve(&testPlugin{}) }
