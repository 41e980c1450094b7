package main

import (
	"context"
	"slices"
	"testing"

	"github.com/wildcathub/wildcat/sdk"
	"github.com/wildcathub/wildcat/sdk/plugintest"
)

func TestKeywordTag(t *testing.T) {
	h := plugintest.Start(t, &KeywordTag{}, plugintest.WithConfig(map[string]any{
		"keywords": map[string]any{"refund": "billing", "invoice": "billing", "broken": "support"},
	}))
	ctx := context.Background()

	actions, err := h.Handle(ctx, plugintest.TextMessage("My INVOICE is wrong and the app is broken; refund please"))
	if err != nil {
		t.Fatal(err)
	}
	if len(actions) != 1 || actions[0].Kind != sdk.ActionTag || !slices.Equal(actions[0].Tags, []string{"billing", "support"}) {
		t.Fatalf("got %+v", actions)
	}

	actions, err = h.Handle(ctx, plugintest.TextMessage("hello"))
	if err != nil || len(actions) != 0 {
		t.Fatalf("hello: got %+v, %v", actions, err)
	}
}
