// Command echo is the smallest useful Wildcat plugin: it answers "ping"
// with "pong". Build it with `go build -o bin/plugins/echo ./sdk/examples/echo`
// and declare it in config.yaml under plugins.echo.path.
package main

import (
	"context"
	"strings"

	"github.com/wildcathub/wildcat/sdk"
)

// Echo replies "pong" to every received "ping".
type Echo struct{}

// Describe names the plugin and asks only for received messages.
func (Echo) Describe() sdk.Description {
	return sdk.Description{Name: "echo", Version: "1.0.0", EventKinds: []string{"message.received"}}
}

// Handle answers a ping, quoting it, and tags the event.
func (Echo) Handle(ctx context.Context, ev *sdk.Event) ([]sdk.Action, error) {
	if ev.Message == nil || !strings.EqualFold(strings.TrimSpace(ev.Message.Text), "ping") {
		return nil, nil
	}
	sdk.Logger(ctx).Info("ping received", "chat", ev.ChatID)
	return []sdk.Action{sdk.QuoteReply("pong"), sdk.Tag("ping")}, nil
}

func main() { sdk.Serve(Echo{}) }
