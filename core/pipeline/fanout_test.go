package pipeline

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/poll"
)

// A fan-out sink enqueues each event for the targets its function returns
// (none: nothing), while a plain sink stage keeps its own name as target.
func TestFanoutSinkEnqueuesPerTarget(t *testing.T) {
	reg := NewRegistry()
	reg.RegisterSink("archive")
	reg.RegisterFanout("webhooks", func(ev *event.Event) []string {
		if ev.AccountID == "acme" {
			return []string{"webhook:a", "webhook:b"}
		}
		return nil
	})
	if !reg.HasSink("webhooks") {
		t.Fatal("a fan-out is a sink name stages can use")
	}
	f := newFakes()
	e := newEngine(t, withFakes(f, Options{Registry: reg, Stages: []StageConfig{
		{Name: "hooks", Sink: "webhooks"},
		{Name: "archive", Sink: "archive"},
	}}))
	acme, other := chatEvent("acme", "c1", 1), chatEvent("other", "c1", 1)
	for _, ev := range []*event.Event{acme, other} {
		if err := e.Submit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	f.waitProcessed(t, 2)
	poll.Until(t, 10*time.Second, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if got := f.jobs[acme.ID]; !slices.Equal(got, []string{"webhook:a", "webhook:b", "archive"}) {
			return fmt.Errorf("acme jobs %v", got)
		}
		if got := f.jobs[other.ID]; !slices.Equal(got, []string{"archive"}) {
			return fmt.Errorf("other jobs %v", got)
		}
		return nil
	})
}

// A route names fan-out targets by endpoint id or full target: the
// event goes to those only; a route naming the fan-out's stage or sink
// keeps every target, and a route naming neither skips the stage.
func TestRouteSelectsFanoutTargets(t *testing.T) {
	tests := []struct {
		route []string
		want  []string
	}{
		{[]string{"billing"}, []string{"webhook:billing"}},
		{[]string{"webhook:orders", "nowhere"}, []string{"webhook:orders"}},
		{[]string{"hooks"}, []string{"webhook:billing", "webhook:orders", "webhook:all"}},
		{[]string{"webhooks"}, []string{"webhook:billing", "webhook:orders", "webhook:all"}},
		{[]string{"nowhere"}, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.route), func(t *testing.T) {
			reg := NewRegistry()
			reg.RegisterFanout("webhooks", func(*event.Event) []string {
				return []string{"webhook:billing", "webhook:orders", "webhook:all"}
			})
			reg.RegisterBuiltin("router", func(StageConfig) (InlineHandler, error) {
				return HandlerFunc(func(context.Context, *event.Event) ([]Action, error) {
					return []Action{Route(tt.route...)}, nil
				}), nil
			})
			f := newFakes()
			e := newEngine(t, withFakes(f, Options{Registry: reg, Stages: []StageConfig{
				{Name: "route", Builtin: "router"},
				{Name: "hooks", Sink: "webhooks"},
			}}))
			ev := chatEvent("acme", "c1", 1)
			if err := e.Submit(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			f.waitProcessed(t, 1)
			f.mu.Lock()
			defer f.mu.Unlock()
			if got := f.jobs[ev.ID]; !slices.Equal(got, tt.want) {
				t.Fatalf("jobs %v, want %v", got, tt.want)
			}
		})
	}
}

// The loop guard is for stages that can cause events: an inline stage
// without sources skips what rules and plugins caused, while a sink stage
// (webhooks) delivers every source unless its match names some.
func TestSinkStagesSeeEverySource(t *testing.T) {
	reg := NewRegistry()
	reg.RegisterSink("all")
	reg.RegisterSink("phoneonly")
	f := newFakes()
	e := newEngine(t, withFakes(f, Options{Registry: reg, Stages: []StageConfig{
		{Name: "seen", Builtin: "tag", Config: map[string]any{"tag": "seen"}},
		{Name: "all", Sink: "all"},
		{Name: "phoneonly", Sink: "phoneonly", Match: Match{Sources: []string{"phone"}}},
	}}))
	phone := chatEvent("acct", "c1", 1)
	reply := chatEvent("acct", "c1", 2)
	reply.Kind, reply.Source, reply.Message.FromMe = event.KindMessageSent, event.SourceRule, true
	pong := chatEvent("acct", "c1", 3)
	pong.Kind, pong.Source, pong.Message.FromMe = event.KindMessageSent, event.SourcePlugin, true
	for _, ev := range []*event.Event{phone, reply, pong} {
		if err := e.Submit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	f.waitProcessed(t, 3)
	f.mu.Lock()
	defer f.mu.Unlock()
	want := map[string][]string{phone.ID: {"all", "phoneonly"}, reply.ID: {"all"}, pong.ID: {"all"}}
	for id, targets := range want {
		if got := f.jobs[id]; !slices.Equal(got, targets) {
			t.Errorf("%s enqueued for %v, want %v", id, got, targets)
		}
	}
	if !slices.Equal(f.annotated[phone.ID], []string{"seen"}) || f.annotated[reply.ID] != nil || f.annotated[pong.ID] != nil {
		t.Errorf("the inline stage's loop guard: tags %v", f.annotated)
	}
}
