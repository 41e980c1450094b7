package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/poll"
)

// traceCatcher is the fakes' Progress that keeps the trace each done mark
// carries.
type traceCatcher struct {
	*fakes
	mu     sync.Mutex
	traces map[string]*Trace
}

func (p *traceCatcher) MarkProcessed(ctx context.Context, id string) error {
	if tr := TraceFrom(ctx); tr != nil {
		p.mu.Lock()
		p.traces[id] = tr.Snapshot()
		p.mu.Unlock()
	}
	return p.fakes.MarkProcessed(ctx, id)
}

func (p *traceCatcher) trace(t *testing.T, id string) *Trace {
	t.Helper()
	var tr *Trace
	poll.Until(t, 30*time.Second, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if tr = p.traces[id]; tr == nil {
			return fmt.Errorf("no trace of %s", id)
		}
		return nil
	})
	return tr
}

// The trace records each stage's outcome — ok, timeout, dropped, skipped by
// match or by route, error with a dead letter — what inline stages returned,
// cut to its bounds, and the sink stages' targets.
func TestTraceRecordsOutcomes(t *testing.T) {
	reg := testRegistry()
	reg.RegisterSink("a")
	reg.RegisterSink("b")
	long := strings.Repeat("é", 1000)
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	reg.RegisterBuiltin("behave", func(st StageConfig) (InlineHandler, error) {
		return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
			switch ev.Message.Text {
			case "hang":
				<-ctx.Done()
				return nil, ctx.Err()
			case "big":
				return []Action{Reply(long), Tag(many...)}, nil
			case "route":
				return []Action{Route("a")}, nil
			case "drop":
				return []Action{Drop()}, nil
			case "dead":
				return nil, errors.New("refused")
			}
			return []Action{Tag("plain")}, nil
		}), nil
	})
	p := &traceCatcher{fakes: newFakes(), traces: map[string]*Trace{}}
	opts := withFakes(p.fakes, Options{Registry: reg, Trace: true, Stages: []StageConfig{
		{Name: "statuses", Builtin: "tag", Config: map[string]any{"tag": "x"}, Match: Match{Kinds: []string{"message.status"}}},
		{Name: "behave", Builtin: "behave", Timeout: 100 * time.Millisecond, OnError: OnErrorDeadLetter},
		{Name: "a", Sink: "a"},
		{Name: "b", Sink: "b"},
	}})
	opts.Progress = p
	e := newEngine(t, opts)

	tests := []struct {
		text    string
		outcome string
		stages  []string // the stages after "statuses" in the trace, with their outcomes
		check   func(t *testing.T, tr *Trace)
	}{
		{"hello", OutcomeOK, []string{"behave:ok", "a:ok", "b:ok"}, func(t *testing.T, tr *Trace) {
			if a := tr.Stages[1].Actions; len(a) != 1 || a[0].Type != ActionTag || !slices.Equal(a[0].Tags, []string{"plain"}) {
				t.Errorf("actions %+v", a)
			}
			if !slices.Equal(tr.Stages[2].Targets, []string{"a"}) || tr.Truncated {
				t.Errorf("sink stage %+v, truncated %v", tr.Stages[2], tr.Truncated)
			}
		}},
		{"hang", OutcomeTimeout, nil, func(t *testing.T, tr *Trace) {
			if !strings.Contains(tr.Stages[1].Error, "timed out") || tr.DeadLetteredAt != "behave" {
				t.Errorf("stage %+v, dead-lettered at %q", tr.Stages[1], tr.DeadLetteredAt)
			}
		}},
		{"big", OutcomeOK, []string{"behave:ok", "a:ok", "b:ok"}, func(t *testing.T, tr *Trace) {
			a := tr.Stages[1].Actions
			if !tr.Truncated || len(a) != 2 || len(a[0].Text) > traceMaxText+len("…") || !strings.HasSuffix(a[0].Text, "…") ||
				len(a[1].Tags) != traceMaxList {
				t.Errorf("a trace of big actions: truncated %v, actions %+v", tr.Truncated, a)
			}
		}},
		{"route", OutcomeOK, []string{"behave:ok", "a:ok", "b:skipped"}, func(t *testing.T, tr *Trace) {
			if tr.Stages[3].Skipped != "route" {
				t.Errorf("unrouted sink %+v", tr.Stages[3])
			}
		}},
		{"drop", OutcomeDropped, nil, nil},
		{"dead", OutcomeError, nil, func(t *testing.T, tr *Trace) {
			if tr.Stages[1].Error != "refused" || tr.DeadLetteredAt != "behave" {
				t.Errorf("stage %+v, dead-lettered at %q", tr.Stages[1], tr.DeadLetteredAt)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			ev := chatEvent("acme", fmt.Sprint("c", i), i)
			ev.Message.Text = tt.text
			if err := e.Submit(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			tr := p.trace(t, ev.ID)
			if tr.EventID != ev.ID || len(tr.Stages) < 2 {
				t.Fatalf("trace %+v", tr)
			}
			if st := tr.Stages[0]; st.Name != "statuses" || st.Outcome != OutcomeSkipped || st.Skipped != "match" {
				t.Errorf("a stage whose match does not select the event: %+v", st)
			}
			if st := tr.Stages[1]; st.Outcome != tt.outcome || st.Kind != KindBuiltin || st.DurationMs <= 0 {
				t.Errorf("behave stage %+v, want outcome %s", st, tt.outcome)
			}
			var got []string
			for _, st := range tr.Stages[1:] {
				got = append(got, st.Name+":"+st.Outcome)
			}
			if tt.stages != nil && !slices.Equal(got, tt.stages) {
				t.Errorf("stages %v, want %v", got, tt.stages)
			} else if tt.stages == nil && len(got) != 1 {
				t.Errorf("stages %v: nothing should run after behave", got)
			}
			if tt.check != nil {
				tt.check(t, tr)
			}
		})
	}
}

// Without Options.Trace the done mark carries no trace.
func TestNoTraceUnlessAsked(t *testing.T) {
	p := &traceCatcher{fakes: newFakes(), traces: map[string]*Trace{}}
	opts := withFakes(p.fakes, Options{Stages: []StageConfig{{Name: "tag", Builtin: "tag", Config: map[string]any{"tag": "x"}}}})
	opts.Progress = p
	e := newEngine(t, opts)
	if err := e.Submit(context.Background(), chatEvent("acme", "c", 1)); err != nil {
		t.Fatal(err)
	}
	p.waitProcessed(t, 1)
	if len(p.traces) != 0 {
		t.Fatalf("traces %v without Options.Trace", p.traces)
	}
}
