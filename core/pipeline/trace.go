package pipeline

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wildcathub/wildcat/core/event"
)

// The trace of one event: which stages ran, what each returned, how long it
// took. It is collected in memory while the event runs (no write of its
// own) and handed to the Progress with the done mark (TraceFrom), which
// stores it in the same write. Its size is bounded: strings and lists are
// cut (Truncated says so), so a chatty rule cannot grow a message's row.
//
// Like a tracing span, it travels in the context: the rules stage adds its
// per-rule record through StageTraceFrom, and a Progress reads the whole
// trace with TraceFrom, without the engine's interfaces changing.

// Bounds of a trace.
const (
	traceMaxStages  = 64
	traceMaxActions = 32
	traceMaxRules   = 64
	traceMaxList    = 32  // tags, annotations, sinks, targets of one action or stage
	traceMaxString  = 200 // names, tags, annotation values, errors
	traceMaxText    = 120 // the excerpt of a reply's or send's text
)

// Stage outcomes.
const (
	OutcomeOK = "ok"
	// OutcomeError: the stage's call failed (its onError decided what followed).
	OutcomeError = "error"
	// OutcomeTimeout: the stage's call outlived its timeout.
	OutcomeTimeout = "timeout"
	// OutcomeActionsFailed: the call succeeded but some of its actions failed.
	OutcomeActionsFailed = "actionsFailed"
	// OutcomeDropped: the stage dropped the event; later stages did not run.
	OutcomeDropped = "dropped"
	// OutcomeSkipped: the stage did not run (Skipped says why).
	OutcomeSkipped = "skipped"
)

// Trace is what the pipeline did with one event.
type Trace struct {
	EventID string    `json:"eventId"`
	Started time.Time `json:"started"`
	// DurationMs is the whole pipeline's time, up to the done mark.
	DurationMs float64      `json:"durationMs"`
	Stages     []StageTrace `json:"stages"`
	// DeadLetteredAt names the stage the event was dead-lettered at.
	DeadLetteredAt string `json:"deadLetteredAt,omitempty"`
	// Truncated: something was cut to keep the trace small.
	Truncated bool `json:"truncated,omitempty"`

	mu *sync.Mutex // the stage records; a stuck handler may write late
}

// StageTrace is one stage of the plan, as it went for this event.
type StageTrace struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// StartMs is the stage's start, in ms after the trace's; DurationMs
	// includes retries and carrying out the actions.
	StartMs    float64 `json:"startMs"`
	DurationMs float64 `json:"durationMs"`
	Outcome    string  `json:"outcome"`
	// Skipped is why a stage did not run: "match" (its match did not
	// select the event) or "route" (an earlier stage routed elsewhere).
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
	// Actions are what an inline stage returned, in order.
	Actions []ActionTrace `json:"actions,omitempty"`
	// Rules are the rules of a rules stage that handled the event.
	Rules []RuleTrace `json:"rules,omitempty"`
	// Targets are the outbox targets a sink stage made jobs for (job id:
	// outbox.JobID(eventId, target)).
	Targets []string `json:"targets,omitempty"`

	sealed bool // the stage ended: a late handler's records are ignored
}

// ActionTrace is one action an inline stage returned.
type ActionTrace struct {
	Type ActionType `json:"type"`
	// Origin is who in the stage asked for it (a rule's name).
	Origin      string            `json:"origin,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Sinks       []string          `json:"sinks,omitempty"`
	To          string            `json:"to,omitempty"`
	Text        string            `json:"text,omitempty"`
	// Error is why the action could not be carried out.
	Error string `json:"error,omitempty"`
}

// RuleTrace is one rule's part of a rules stage's call.
type RuleTrace struct {
	Rule       string  `json:"rule"`
	File       string  `json:"file,omitempty"`
	DurationMs float64 `json:"durationMs"`
	// Effects is how many actions the rule asked for (they carry its name
	// as their origin).
	Effects int    `json:"effects"`
	Error   string `json:"error,omitempty"`
	Line    int    `json:"line,omitempty"`
	Timeout bool   `json:"timeout,omitempty"`
}

type traceKey struct{}
type stageTraceKey struct{}

// TraceFrom is the trace of the event whose done mark ctx carries; nil when
// the engine does not trace. A Progress stores it with the mark.
func TraceFrom(ctx context.Context) *Trace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	return t
}

// StageRecorder lets an inline handler add detail to its stage's trace.
type StageRecorder struct {
	t *Trace
	i int
}

// StageTraceFrom is the recorder of the stage whose call ctx is; nil when
// the engine does not trace.
func StageTraceFrom(ctx context.Context) *StageRecorder {
	r, _ := ctx.Value(stageTraceKey{}).(*StageRecorder)
	return r
}

// Rule adds one rule's record. Safe for concurrent use; a record added
// after the stage ended (a handler cut at its deadline) is dropped.
func (r *StageRecorder) Rule(rt RuleTrace) {
	if r == nil {
		return
	}
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	st := &r.t.Stages[r.i]
	if st.sealed {
		return
	}
	if len(st.Rules) >= traceMaxRules {
		r.t.Truncated = true
		return
	}
	rt.Rule, rt.File = r.t.cut(rt.Rule, traceMaxString), r.t.cut(rt.File, traceMaxString)
	rt.Error = r.t.cut(rt.Error, traceMaxString)
	st.Rules = append(st.Rules, rt)
}

func newTrace(ev *event.Event) *Trace {
	return &Trace{EventID: ev.ID, Started: time.Now().UTC(), mu: new(sync.Mutex)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// skip records a stage that did not run.
func (t *Trace) skip(st *stage, why string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.Stages) >= traceMaxStages {
		t.Truncated = true
		return
	}
	t.Stages = append(t.Stages, StageTrace{Name: st.cfg.Name, Kind: st.kind, Outcome: OutcomeSkipped, Skipped: why,
		StartMs: ms(time.Since(t.Started)), sealed: true})
}

// begin records a stage starting; ctx is given its recorder.
func (t *Trace) begin(ctx context.Context, st *stage, start time.Time) (context.Context, *StageRecorder) {
	if t == nil {
		return ctx, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.Stages) >= traceMaxStages {
		t.Truncated = true
		return ctx, nil
	}
	t.Stages = append(t.Stages, StageTrace{Name: st.cfg.Name, Kind: st.kind, StartMs: ms(start.Sub(t.Started))})
	r := &StageRecorder{t: t, i: len(t.Stages) - 1}
	return context.WithValue(ctx, stageTraceKey{}, r), r
}

// actions records what an inline stage returned.
func (r *StageRecorder) actions(acts []Action) {
	if r == nil {
		return
	}
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	st := &t.Stages[r.i]
	for i, a := range acts {
		if i >= traceMaxActions {
			t.Truncated = true
			break
		}
		at := ActionTrace{Type: a.Type, Origin: t.cut(a.Origin, traceMaxString), Tags: t.list(a.Tags), Sinks: t.list(a.Sinks)}
		if len(a.Annotations) > 0 {
			at.Annotations = make(map[string]string, min(len(a.Annotations), traceMaxList))
			for _, k := range slices.Sorted(maps.Keys(a.Annotations)) {
				if len(at.Annotations) >= traceMaxList {
					t.Truncated = true
					break
				}
				at.Annotations[t.cut(k, traceMaxString)] = t.cut(a.Annotations[k], traceMaxString)
			}
		}
		if a.Send != nil {
			at.To, at.Text = t.cut(a.Send.To, traceMaxString), t.cut(a.Send.Text, traceMaxText)
		}
		if at.To == "" && a.Type == ActionSend {
			at.To = t.cut(a.AccountID, traceMaxString)
		}
		st.Actions = append(st.Actions, at)
	}
}

// targets records the outbox targets of a sink stage.
func (r *StageRecorder) targets(targets []string) {
	if r == nil || len(targets) == 0 {
		return
	}
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	st := &r.t.Stages[r.i]
	st.Targets = append(st.Targets, r.t.list(targets)...)
}

// end records how the stage went.
func (r *StageRecorder) end(d time.Duration, out stageOutcome, err error) {
	if r == nil {
		return
	}
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	st := &t.Stages[r.i]
	st.sealed = true
	st.DurationMs = ms(d)
	switch {
	case errors.Is(err, ErrStageTimeout):
		st.Outcome, st.Error = OutcomeTimeout, t.cut(err.Error(), traceMaxString)
	case err != nil:
		st.Outcome, st.Error = OutcomeError, t.cut(err.Error(), traceMaxString)
	case len(out.failed) > 0:
		st.Outcome = OutcomeActionsFailed
		for _, f := range out.failed {
			if f.Index < len(st.Actions) {
				st.Actions[f.Index].Error = t.cut(f.Err.Error(), traceMaxString)
			}
		}
	case out.drop:
		st.Outcome = OutcomeDropped
	default:
		st.Outcome = OutcomeOK
	}
}

// finish closes the trace before it is stored.
func (t *Trace) finish(deadLetteredAt string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.DurationMs = ms(time.Since(t.Started))
	t.DeadLetteredAt = deadLetteredAt
	for i := range t.Stages {
		t.Stages[i].sealed = true
	}
}

// Snapshot is a copy of the trace safe to read (encode) while a late
// handler may still try to add to it.
func (t *Trace) Snapshot() *Trace {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &Trace{EventID: t.EventID, Started: t.Started, DurationMs: t.DurationMs, DeadLetteredAt: t.DeadLetteredAt,
		Truncated: t.Truncated, Stages: slices.Clone(t.Stages)}
	for i := range c.Stages {
		c.Stages[i].Actions = slices.Clone(c.Stages[i].Actions)
		c.Stages[i].Rules = slices.Clone(c.Stages[i].Rules)
		c.Stages[i].Targets = slices.Clone(c.Stages[i].Targets)
	}
	return c
}

// cut bounds s to n bytes (at a rune boundary). Called with t.mu held.
func (t *Trace) cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	t.Truncated = true
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// list bounds a list of strings. Called with t.mu held.
func (t *Trace) list(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	if len(in) > traceMaxList {
		t.Truncated = true
		in = in[:traceMaxList]
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = t.cut(s, traceMaxString)
	}
	return out
}
