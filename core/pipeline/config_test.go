package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

func testRegistry() *Registry {
	r := NewRegistry()
	r.RegisterRules(func(st StageConfig) (InlineHandler, error) { return actions(), nil })
	r.RegisterPlugin("mediaarchive", nil, true)
	r.RegisterPlugin("spamfilter", func(st StageConfig) (InlineHandler, error) { return actions(), nil }, false)
	r.RegisterSink("webhooks")
	return r
}

func TestValidateAcceptsTheDocumentedExample(t *testing.T) {
	stages := []StageConfig{
		{Name: "rules", Rules: []string{"scripts/*.js"}},
		{Name: "archive", Plugin: "mediaarchive", Mode: ModeSink, Match: Match{Kinds: []string{"message.received"}, HasMedia: ptr(true)}},
		{Name: "spam", Plugin: "spamfilter", Timeout: time.Second, OnError: OnErrorRetry},
		{Name: "vip", Builtin: "tag", Config: map[string]any{"tag": "vip"}, Match: Match{Chat: []string{"group"}, Sources: []string{"phone", "rule"}}},
		{Name: "webhooks", Sink: "webhooks"},
	}
	if err := Compile(stages, testRegistry()); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejectsBadStages(t *testing.T) {
	ok := StageConfig{Name: "first", Builtin: "drop"}
	tests := []struct {
		name  string
		stage StageConfig
		want  string
	}{
		{"duplicate name", StageConfig{Name: "first", Builtin: "drop"}, `duplicate name`},
		{"empty name", StageConfig{Builtin: "drop"}, `name must not be empty`},
		{"no kind", StageConfig{Name: "x"}, `needs one of rules, plugin, sink or builtin`},
		{"plugin and sink", StageConfig{Name: "x", Plugin: "mediaarchive", Sink: "webhooks"}, `sets both plugin and sink`},
		{"unknown plugin", StageConfig{Name: "x", Plugin: "nope"}, `unknown plugin "nope"`},
		{"unknown sink", StageConfig{Name: "x", Sink: "nope"}, `unknown sink "nope"`},
		{"unknown builtin", StageConfig{Name: "x", Builtin: "nope"}, `unknown builtin "nope"`},
		{"bad mode", StageConfig{Name: "x", Builtin: "drop", Mode: "sideways"}, `unknown mode "sideways"`},
		{"inline sink", StageConfig{Name: "x", Sink: "webhooks", Mode: ModeInline}, `mode inline is not possible`},
		{"sink-only plugin inline", StageConfig{Name: "x", Plugin: "mediaarchive"}, `has no inline handler`},
		{"inline-only plugin as sink", StageConfig{Name: "x", Plugin: "spamfilter", Mode: ModeSink}, `is not a sink`},
		{"rules as sink", StageConfig{Name: "x", Rules: []string{"a.js"}, Mode: ModeSink}, `mode sink is not possible`},
		{"bad glob", StageConfig{Name: "x", Rules: []string{"scripts/[a-.js"}}, `bad rules glob "scripts/[a-.js"`},
		{"bad match kind", StageConfig{Name: "x", Builtin: "drop", Match: Match{Kinds: []string{"mesage.*"}}}, `match: kinds:`},
		{"bad chat kind", StageConfig{Name: "x", Builtin: "drop", Match: Match{Chat: []string{"channel"}}}, `unknown chat kind "channel"`},
		{"bad source", StageConfig{Name: "x", Builtin: "drop", Match: Match{Sources: []string{"robot"}}}, `unknown source "robot"`},
		{"negative timeout", StageConfig{Name: "x", Builtin: "drop", Timeout: -time.Second}, `timeout -1s`},
		{"huge timeout", StageConfig{Name: "x", Builtin: "drop", Timeout: time.Hour}, `timeout 1h0m0s`},
		{"bad onError", StageConfig{Name: "x", Builtin: "drop", OnError: "ignore"}, `unknown onError "ignore"`},
		{"builtin without its config", StageConfig{Name: "x", Builtin: "tag"}, `needs config.tag`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Compile([]StageConfig{ok, tt.stage}, testRegistry())
			if err == nil {
				t.Fatal("accepted")
			}
			prefix := `pipeline[1] "` + tt.stage.Name + `": `
			if !strings.Contains(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q\nwant it to name the stage (%s) and say %q", err, prefix, tt.want)
			}
			var se *StageError
			if !errors.As(err, &se) || se.Index != 1 {
				t.Fatalf("error %v is not a *StageError of stage 1", err)
			}
		})
	}
}

func TestRulesNeedTheRuleEngine(t *testing.T) {
	err := Validate([]StageConfig{{Name: "r", Rules: []string{"*.js"}}}, NewRegistry())
	if err == nil || !strings.Contains(err.Error(), `pipeline[0] "r": rules are not available`) {
		t.Fatalf("error = %v", err)
	}
}

func TestReloadRejectsABadListAndKeepsTheOld(t *testing.T) {
	e := newEngine(t, Options{Stages: []StageConfig{{Name: "a", Builtin: "drop"}}})
	if err := e.Reload([]StageConfig{{Name: "b", Builtin: "nope"}}); err == nil {
		t.Fatal("bad reload accepted")
	}
	if got := e.Stages(); len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("stages after a failed reload = %+v", got)
	}
	_ = e.Submit(context.Background(), &event.Event{ID: "x", AccountID: "a", Kind: event.KindAccountConnected, Source: event.SourcePhone})
}

func ptr[T any](v T) *T { return &v }
