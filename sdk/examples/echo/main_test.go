package main

import (
	"context"
	"slices"
	"testing"

	"github.com/wildcathub/wildcat/sdk"
	"github.com/wildcathub/wildcat/sdk/plugintest"
)

func TestEcho(t *testing.T) {
	h := plugintest.Start(t, Echo{})
	if info := h.Info(); info.Name != "echo" || !slices.Equal(info.Capabilities, []sdk.Capability{sdk.CapabilityInline}) {
		t.Fatalf("Describe: %+v", info)
	}
	ctx := context.Background()

	actions, err := h.Handle(ctx, plugintest.TextMessage(" Ping "))
	if err != nil {
		t.Fatal(err)
	}
	if len(actions) != 2 || actions[0].Kind != sdk.ActionReply || actions[0].Message.Text != "pong" || !actions[0].Quote ||
		actions[1].Kind != sdk.ActionTag || !slices.Equal(actions[1].Tags, []string{"ping"}) {
		t.Fatalf("ping: got %+v", actions)
	}

	actions, err = h.Handle(ctx, plugintest.TextMessage("hello"))
	if err != nil || len(actions) != 0 {
		t.Fatalf("hello: got %+v, %v", actions, err)
	}
}
