package pipeline

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// txFakes is fakes with a Progress that stores the jobs with the mark
// (ProcessedWithJobs): it records each call as it arrives, with how many
// jobs had gone to the Enqueuer by then (none may).
type txFakes struct {
	*fakes
	fail atomic.Int64 // fail this many calls first

	mu       sync.Mutex
	calls    map[string][][]EnqueueRequest // event id → the jobs of each successful call
	tries    atomic.Int64
	plain    atomic.Int64 // MarkProcessed calls (must be none)
	enqEarly atomic.Int64 // Enqueuer calls seen by the time of a call
}

func newTxFakes() *txFakes {
	return &txFakes{fakes: newFakes(), calls: map[string][][]EnqueueRequest{}}
}

func (p *txFakes) MarkProcessed(ctx context.Context, id string) error {
	p.plain.Add(1)
	return p.fakes.MarkProcessed(ctx, id)
}

func (p *txFakes) MarkProcessedWithJobs(ctx context.Context, id string, jobs []EnqueueRequest) error {
	p.tries.Add(1)
	if p.fail.Add(-1) >= 0 {
		return errors.New("disk I/O error")
	}
	p.fakes.mu.Lock()
	p.enqEarly.Add(int64(len(p.fakes.jobs)))
	p.fakes.mu.Unlock()
	p.mu.Lock()
	p.calls[id] = append(p.calls[id], jobs)
	p.mu.Unlock()
	// Counted as processed, so waitProcessed sees it.
	return p.fakes.MarkProcessed(ctx, id)
}

func withTxFakes(p *txFakes, opts Options) Options {
	opts = withFakes(p.fakes, opts)
	opts.Progress = p
	return opts
}

func stageOf(e *Engine, name string) StageStats {
	for _, s := range e.Snapshot().Stages {
		if s.Name == name {
			return s
		}
	}
	return StageStats{}
}

// With a ProcessedWithJobs Progress, no sink stage enqueues on its own:
// every sink stage's jobs (a fan-out's targets, a plain sink's) arrive with
// the done mark in one call after the last stage, each with the event as
// its stage saw it, and the stages' enqueued counts follow that call.
func TestSinkJobsArriveWithTheDoneMark(t *testing.T) {
	reg := testRegistry()
	reg.RegisterSink("archive")
	reg.RegisterFanout("hooks", func(ev *event.Event) []string { return []string{"webhook:a", "webhook:b"} })
	p := newTxFakes()
	e := newEngine(t, withTxFakes(p, Options{Registry: reg, Stages: []StageConfig{
		{Name: "hooks", Sink: "hooks"},
		{Name: "vip", Builtin: "tag", Config: map[string]any{"tag": "vip"}},
		{Name: "archive", Sink: "archive"},
		{Name: "late", Builtin: "tag", Config: map[string]any{"tag": "late"}},
		{Name: "nobody", Sink: "hooks", Match: Match{Kinds: []string{"message.edited"}}},
	}}))
	ev := chatEvent("acct", "c", 1)
	if err := e.Submit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	calls := p.calls[ev.ID]
	if len(calls) != 1 || p.tries.Load() != 1 {
		t.Fatalf("%d calls (%d tries) for the event, want one: %v", len(calls), p.tries.Load(), p.calls)
	}
	if n := p.plain.Load(); n != 0 {
		t.Errorf("MarkProcessed called %d times besides MarkProcessedWithJobs", n)
	}
	if n := p.enqEarly.Load(); n != 0 || len(p.fakes.jobs) != 0 {
		t.Errorf("the Enqueuer was called (%d before the mark): %v", n, p.fakes.jobs)
	}
	type job struct {
		id      string
		tags    []string
		targets []string
	}
	var got []job
	for _, r := range calls[0] {
		got = append(got, job{r.Event.ID, r.Event.Tags, r.Targets})
	}
	want := []job{
		{ev.ID, nil, []string{"webhook:a", "webhook:b"}},
		{ev.ID, []string{"vip"}, []string{"archive"}}, // not "late": a later stage's tag
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("jobs %+v, want %+v", got, want)
	}
	for stage, n := range map[string]uint64{"hooks": 1, "archive": 1, "nobody": 0} {
		if s := stageOf(e, stage); s.Enqueued != n || s.Errors != 0 {
			t.Errorf("stage %s: enqueued %d, errors %d; want %d, 0", stage, s.Enqueued, s.Errors, n)
		}
	}
}

// A dead-letter stop still stores the jobs of the sink stages before it,
// with the mark; a stop caused by the shutdown stores neither, so recovery
// runs the event again from the start.
func TestSinkJobsOnDeadLetterAndStop(t *testing.T) {
	stopping := fmt.Errorf("reply to x: account %q: %w", "acct", session.ErrClosed)
	other := fmt.Errorf("reply to x: %w", session.ErrWrongState)
	for _, tt := range []struct {
		name     string
		err      error
		wantJobs []string // nil: no call at all
	}{
		{"dead letter", other, []string{"archive"}},
		{"stopping", stopping, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := testRegistry()
			reg.RegisterSink("archive")
			p := newTxFakes()
			opts := withTxFakes(p, Options{Registry: reg, Stages: []StageConfig{
				{Name: "archive", Sink: "archive"},
				{Name: "answer", Builtin: "reply", Config: map[string]any{"text": "pong"}, OnError: OnErrorDeadLetter},
				{Name: "hooks", Sink: "webhooks"},
			}})
			opts.Sender = failingSender{p.fakes, tt.err}
			e := newEngine(t, opts)
			ev := chatEvent("acct", "c", 1)
			if err := e.Submit(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			if err := e.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			calls := p.calls[ev.ID]
			if tt.wantJobs == nil {
				if len(calls) != 0 || p.tries.Load() != 0 || p.fakes.processed[ev.ID] != 0 {
					t.Fatalf("stopped event stored: %d calls", p.tries.Load())
				}
				if s := stageOf(e, "archive"); s.Enqueued != 0 {
					t.Errorf("archive enqueued %d, want 0", s.Enqueued)
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("%d calls, want 1", len(calls))
			}
			var targets []string
			for _, r := range calls[0] {
				targets = append(targets, r.Targets...)
			}
			if !reflect.DeepEqual(targets, tt.wantJobs) {
				t.Errorf("jobs for %v, want %v", targets, tt.wantJobs)
			}
			if p.fakes.buried[ev.ID] != "pipeline:answer" {
				t.Errorf("buried %v", p.fakes.buried)
			}
			if len(p.fakes.jobs) != 0 {
				t.Errorf("the Enqueuer was called: %v", p.fakes.jobs)
			}
		})
	}
}

// The combined write is tried again when it fails; a write that fails
// every try leaves the event unprocessed (for recovery) and counts an
// error, not an enqueue, on each sink stage whose jobs it held.
func TestSinkJobsWriteRetried(t *testing.T) {
	for _, tt := range []struct {
		fail        int64
		wantTries   int64
		wantStored  bool
		wantErrors  uint64
		wantEnqueue uint64
	}{
		{fail: 1, wantTries: 2, wantStored: true, wantEnqueue: 1},
		{fail: 3, wantTries: 3, wantStored: false, wantErrors: 1},
	} {
		t.Run(fmt.Sprintf("fail %d", tt.fail), func(t *testing.T) {
			p := newTxFakes()
			p.fail.Store(tt.fail)
			e := newEngine(t, withTxFakes(p, Options{RetryAttempts: 3, RetryBackoff: time.Millisecond, Stages: []StageConfig{
				{Name: "hooks", Sink: "webhooks"},
			}}))
			ev := chatEvent("acct", "c", 1)
			if err := e.Submit(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			if err := e.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			stored := len(p.calls[ev.ID]) == 1
			p.mu.Unlock()
			if p.tries.Load() != tt.wantTries || stored != tt.wantStored {
				t.Errorf("%d tries, stored %v; want %d, %v", p.tries.Load(), stored, tt.wantTries, tt.wantStored)
			}
			if s := stageOf(e, "hooks"); s.Errors != tt.wantErrors || s.Enqueued != tt.wantEnqueue {
				t.Errorf("hooks: errors %d, enqueued %d; want %d, %d", s.Errors, s.Enqueued, tt.wantErrors, tt.wantEnqueue)
			}
		})
	}
}

// markFakes is txFakes whose Progress also takes the stages' tags and
// annotations with the done mark (ProcessedWithMarks).
type markFakes struct {
	*txFakes
	marks map[string]struct {
		tags []string
		ann  map[string]string
	}
}

func (p *markFakes) MarkProcessedWithMarks(ctx context.Context, ev *event.Event, tags []string, ann map[string]string, jobs []EnqueueRequest) error {
	p.mu.Lock()
	p.marks[ev.ID] = struct {
		tags []string
		ann  map[string]string
	}{tags, ann}
	p.mu.Unlock()
	return p.MarkProcessedWithJobs(ctx, ev.ID, jobs)
}

func (p *markFakes) CheckAnnotations(ann map[string]string) error {
	for k := range ann {
		if k == "bad.key" {
			return fmt.Errorf("annotation key %q may not contain '.'", k)
		}
	}
	return nil
}

// With a ProcessedWithMarks Progress the stages' tags and annotations are
// not written one stage at a time (no Annotate call, so no commit to wait
// for) but arrive with the done mark, all of them; a later stage and the
// sink jobs still see them, and an annotation the store refuses fails its
// action at once, as an immediate write would.
func TestMarksArriveWithTheDoneMark(t *testing.T) {
	reg := testRegistry()
	reg.RegisterSink("archive")
	p := &markFakes{txFakes: newTxFakes(), marks: map[string]struct {
		tags []string
		ann  map[string]string
	}{}}
	e := newEngine(t, withTxFakes(p.txFakes, Options{Registry: reg, Stages: []StageConfig{
		{Name: "vip", Builtin: "tag", Config: map[string]any{"tag": "vip"}},
		{Name: "team", Builtin: "annotate", Config: map[string]any{"key": "team", "value": "sales"}},
		{Name: "bad", Builtin: "annotate", Config: map[string]any{"key": "bad.key", "value": "x"}},
		{Name: "archive", Sink: "archive"},
		{Name: "late", Builtin: "tag", Config: map[string]any{"tag": "late"}},
	}}))
	e.opts.Progress = p
	ev := chatEvent("acct", "c", 1)
	if err := e.Submit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.fakes.annotated) != 0 || len(p.fakes.ann) != 0 {
		t.Fatalf("tags written on their own: %v %v", p.fakes.annotated, p.fakes.ann)
	}
	m, ok := p.marks[ev.ID]
	if !ok || !reflect.DeepEqual(m.tags, []string{"vip", "late"}) || !reflect.DeepEqual(m.ann, map[string]string{"team": "sales"}) {
		t.Fatalf("marks with the done mark: %+v (found %v), want tags [vip late] and team=sales", m, ok)
	}
	jobs := p.calls[ev.ID]
	if len(jobs) != 1 || len(jobs[0]) != 1 || !reflect.DeepEqual(jobs[0][0].Event.Tags, []string{"vip"}) || jobs[0][0].Event.Annotations["team"] != "sales" {
		t.Fatalf("the sink stage's job saw %+v, want the tags and annotations of the stages before it", jobs)
	}
	if n := stageOf(e, "bad").ActionFailures[string(ActionAnnotate)]; n != 1 {
		t.Fatalf("the refused annotation's stage counts %d failed annotate actions, want 1", n)
	}
}
