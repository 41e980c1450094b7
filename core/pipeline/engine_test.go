package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// fakes records every effect the engine has on the world.
type fakes struct {
	mu        sync.Mutex
	sent      []sent
	annotated map[string][]string // event id → tags persisted, in order
	ann       map[string]map[string]string
	jobs      map[string][]string // event id → targets enqueued
	buried    map[string]string   // event id → target
	processed map[string]int
	order     []string // processed event ids
	failures  map[string][]ActionFailure
	read      []string // event ids marked read
}

type sent struct {
	account string
	req     session.SendRequest
}

func newFakes() *fakes {
	return &fakes{annotated: map[string][]string{}, ann: map[string]map[string]string{}, jobs: map[string][]string{},
		buried: map[string]string{}, processed: map[string]int{}}
}

func (f *fakes) Send(ctx context.Context, account string, req *session.SendRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, sent{account, *req})
	return nil
}

func (f *fakes) Annotate(ctx context.Context, ev *event.Event, tags []string, ann map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.annotated[ev.ID] = append(f.annotated[ev.ID], tags...)
	for k, v := range ann {
		if f.ann[ev.ID] == nil {
			f.ann[ev.ID] = map[string]string{}
		}
		f.ann[ev.ID][k] = v
	}
	return nil
}

func (f *fakes) MarkRead(ctx context.Context, ev *event.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.read = append(f.read, ev.ID)
	return nil
}

func (f *fakes) Enqueue(ctx context.Context, ev *event.Event, targets ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[ev.ID] = append(f.jobs[ev.ID], targets...)
	return nil
}

func (f *fakes) Bury(ctx context.Context, ev *event.Event, target, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buried[ev.ID] = target
	return nil
}

func (f *fakes) MarkProcessed(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.processed[id]++
	f.order = append(f.order, id)
	return nil
}

func (f *fakes) processedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.processed)
}

func (f *fakes) waitProcessed(t *testing.T, n int) {
	t.Helper()
	poll.Until(t, 60*time.Second, func() error {
		if got := f.processedCount(); got < n {
			return fmt.Errorf("%d of %d events processed", got, n)
		}
		return nil
	})
}

func newEngine(t *testing.T, opts Options) *Engine {
	t.Helper()
	if opts.Registry == nil {
		opts.Registry = testRegistry()
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}

func withFakes(f *fakes, opts Options) Options {
	opts.Sender, opts.ReadMarker, opts.Annotator, opts.Enqueuer, opts.DeadLetters, opts.Progress = f, f, f, f, f, f
	return opts
}

func chatEvent(acct, chat string, seq int) *event.Event {
	return &event.Event{
		ID: fmt.Sprintf("%s:%s:%d", acct, chat, seq), Kind: event.KindMessageReceived, AccountID: acct,
		ChatID: chat, Source: event.SourcePhone,
		Message: &event.Message{MessageID: fmt.Sprintf("M%d", seq), ChatID: chat, From: chat, Text: fmt.Sprint(seq)},
	}
}

// Events of one chat keep their order under parallel load while different
// chats overlap.
func TestPerChatOrderUnderParallelLoad(t *testing.T) {
	const chats, perChat = 200, 50 // 10,000 events
	var (
		mu       sync.Mutex
		seen     = map[string][]int{} // chat → sequence numbers in stage order
		inChat   = map[string]int{}   // chat → calls running now
		running  atomic.Int64
		maxChats atomic.Int64
		overlap  atomic.Bool // two calls of one chat at once: must never be true
	)
	stageFn := func(name string) Factory {
		return func(st StageConfig) (InlineHandler, error) {
			return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
				mu.Lock()
				inChat[ev.ChatID]++
				if inChat[ev.ChatID] > 1 {
					overlap.Store(true)
				}
				mu.Unlock()
				n := running.Add(1)
				for {
					m := maxChats.Load()
					if n <= m || maxChats.CompareAndSwap(m, n) {
						break
					}
				}
				// Simulated work, 0–200 µs; not synchronisation.
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
				running.Add(-1)
				mu.Lock()
				inChat[ev.ChatID]--
				if name == "second" {
					var seq int
					fmt.Sscan(ev.Message.Text, &seq)
					seen[ev.ChatID] = append(seen[ev.ChatID], seq)
				}
				mu.Unlock()
				return nil, nil
			}), nil
		}
	}
	reg := testRegistry()
	reg.RegisterBuiltin("first", stageFn("first"))
	reg.RegisterBuiltin("second", stageFn("second"))
	f := newFakes()
	e := newEngine(t, withFakes(f, Options{Registry: reg, Workers: 16, QueueSize: 256, Stages: []StageConfig{
		{Name: "first", Builtin: "first"},
		{Name: "second", Builtin: "second"},
		{Name: "out", Sink: "webhooks"},
	}}))

	// Several submitters, each owning a subset of chats, so submission
	// order within a chat is defined while intake is concurrent.
	var wg sync.WaitGroup
	for s := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range perChat {
				for c := s; c < chats; c += 4 {
					if err := e.Submit(context.Background(), chatEvent("acct", fmt.Sprintf("chat%03d", c), seq)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	f.waitProcessed(t, chats*perChat)

	if overlap.Load() {
		t.Fatal("two events of one chat were processed at the same time")
	}
	mu.Lock()
	defer mu.Unlock()
	for c := range chats {
		chat := fmt.Sprintf("chat%03d", c)
		got := seen[chat]
		if len(got) != perChat || !slices.IsSorted(got) {
			t.Fatalf("%s processed in order %v", chat, got)
		}
	}
	if m := maxChats.Load(); m < 2 {
		t.Fatalf("at most %d chat ran at once; want parallel chats", m)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, n := range f.processed {
		if n != 1 || len(f.jobs[id]) != 1 {
			t.Fatalf("event %s processed %d times, %d jobs", id, n, len(f.jobs[id]))
		}
	}
	t.Logf("max concurrent chats: %d", maxChats.Load())
}

func TestActions(t *testing.T) {
	// probe records what a later stage sees.
	type seenBy struct {
		tags []string
		ann  map[string]string
	}
	var mu sync.Mutex
	probes := map[string]seenBy{}
	reg := testRegistry()
	reg.RegisterBuiltin("probe", func(st StageConfig) (InlineHandler, error) {
		return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
			mu.Lock()
			defer mu.Unlock()
			probes[ev.ID] = seenBy{slices.Clone(ev.Tags), ev.Annotations}
			return nil, nil
		}), nil
	})
	reg.RegisterSink("archive")
	reg.RegisterSink("crm")
	script := map[string][]Action{} // event id → what stage "act" returns
	reg.RegisterBuiltin("script", func(st StageConfig) (InlineHandler, error) {
		return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
			return script[ev.ID], nil
		}), nil
	})
	f := newFakes()
	e := newEngine(t, withFakes(f, Options{Registry: reg, Stages: []StageConfig{
		{Name: "act", Builtin: "script"},
		{Name: "probe", Builtin: "probe"},
		{Name: "to-archive", Sink: "archive"},
		{Name: "to-crm", Sink: "crm"},
		{Name: "to-webhooks", Sink: "webhooks"},
	}}))

	ev := func(id string) *event.Event {
		e := chatEvent("acct", "1@s.whatsapp.net", 0)
		e.ID = id
		return e
	}
	script["reply"] = []Action{Reply("thanks!")}
	script["send"] = []Action{Send("other", &session.SendRequest{To: "9@s.whatsapp.net", Text: "fyi", ID: "FIXED"})}
	script["drop"] = []Action{Tag("seen"), Drop()}
	script["tag"] = []Action{Tag("vip", "lead"), Tag("vip"), Annotate(map[string]string{"team": "sales"})}
	script["route"] = []Action{Route("to-archive"), Route("crm")}
	script["route-nowhere"] = []Action{Route()}
	script["ack"] = []Action{React(&session.SendRequest{Reaction: &session.ReactionSend{MessageID: "M0", Emoji: "👍"}}), MarkRead()}
	for _, id := range []string{"reply", "send", "drop", "tag", "route", "route-nowhere", "plain", "ack"} {
		if err := e.Submit(context.Background(), ev(id)); err != nil {
			t.Fatal(err)
		}
	}
	f.waitProcessed(t, 8)
	f.mu.Lock()
	defer f.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()

	t.Run("reply", func(t *testing.T) {
		orig := ev("reply")
		want := session.SendRequest{
			To: "1@s.whatsapp.net", ID: deterministicMessageID("reply", "act", 0), Source: event.SourceRule, Text: "thanks!",
			ReplyTo: &session.QuoteRef{MessageID: "M0", Sender: "1@s.whatsapp.net", Message: orig.Message},
		}
		var got *sent
		for i := range f.sent {
			if f.sent[i].req.Text == "thanks!" {
				got = &f.sent[i]
			}
		}
		if got == nil || got.account != "acct" || !reflect.DeepEqual(got.req, want) {
			t.Fatalf("sent %+v\nwant %+v from acct", got, want)
		}
	})
	t.Run("send", func(t *testing.T) {
		var got *sent
		for i := range f.sent {
			if f.sent[i].req.Text == "fyi" {
				got = &f.sent[i]
			}
		}
		want := session.SendRequest{To: "9@s.whatsapp.net", ID: "FIXED", Source: event.SourceRule, Text: "fyi"}
		if got == nil || got.account != "other" || !reflect.DeepEqual(got.req, want) {
			t.Fatalf("sent %+v\nwant %+v from other", got, want)
		}
	})
	t.Run("react and markRead", func(t *testing.T) {
		var got *sent
		for i := range f.sent {
			if f.sent[i].req.Reaction != nil {
				got = &f.sent[i]
			}
		}
		want := session.SendRequest{To: "1@s.whatsapp.net", ID: deterministicMessageID("ack", "act", 0), Source: event.SourceRule,
			Reaction: &session.ReactionSend{MessageID: "M0", Emoji: "👍"}}
		if got == nil || got.account != "acct" || !reflect.DeepEqual(got.req, want) {
			t.Fatalf("reaction %+v\nwant %+v from acct, not quoting", got, want)
		}
		if !slices.Equal(f.read, []string{"ack"}) {
			t.Fatalf("marked read: %v, want [ack]", f.read)
		}
	})
	t.Run("drop skips later stages but the event is processed", func(t *testing.T) {
		if _, ok := probes["drop"]; ok || len(f.jobs["drop"]) != 0 {
			t.Fatalf("later stages ran: probe %v, jobs %v", probes["drop"], f.jobs["drop"])
		}
		if f.processed["drop"] != 1 || !slices.Equal(f.annotated["drop"], []string{"seen"}) {
			t.Fatalf("processed %d, tags persisted %v", f.processed["drop"], f.annotated["drop"])
		}
	})
	t.Run("tag and annotate are seen later and persisted", func(t *testing.T) {
		p := probes["tag"]
		if !slices.Equal(p.tags, []string{"vip", "lead"}) || p.ann["team"] != "sales" {
			t.Fatalf("later stage saw tags %v, annotations %v", p.tags, p.ann)
		}
		if !slices.Equal(f.annotated["tag"], []string{"vip", "lead"}) || f.ann["tag"]["team"] != "sales" {
			t.Fatalf("persisted tags %v, annotations %v", f.annotated["tag"], f.ann["tag"])
		}
	})
	t.Run("route delivers only to the named sinks", func(t *testing.T) {
		if got := f.jobs["route"]; !slices.Equal(got, []string{"archive", "crm"}) {
			t.Fatalf("route jobs %v, want [archive crm]", got)
		}
		if got := f.jobs["route-nowhere"]; len(got) != 0 {
			t.Fatalf("empty route enqueued %v", got)
		}
		if got := f.jobs["plain"]; !slices.Equal(got, []string{"archive", "crm", "webhooks"}) {
			t.Fatalf("unrouted jobs %v", got)
		}
	})
}

// Events submitted across a reload are each processed exactly once, by the
// old list or the new one, never both.
func TestReloadInFlight(t *testing.T) {
	var mu sync.Mutex
	versions := map[string][]string{}
	reg := testRegistry()
	reg.RegisterBuiltin("version", func(st StageConfig) (InlineHandler, error) {
		v := st.Config["v"].(string)
		return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
			time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond) // simulated work
			mu.Lock()
			versions[ev.ID] = append(versions[ev.ID], v)
			mu.Unlock()
			return nil, nil
		}), nil
	})
	list := func(v string) []StageConfig {
		return []StageConfig{
			{Name: "a-" + v, Builtin: "version", Config: map[string]any{"v": v}},
			{Name: "b-" + v, Builtin: "version", Config: map[string]any{"v": v}},
		}
	}
	f := newFakes()
	e := newEngine(t, withFakes(f, Options{Registry: reg, Workers: 8, QueueSize: 64, Stages: list("old")}))
	const n = 3000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if err := e.Submit(context.Background(), chatEvent("acct", fmt.Sprintf("c%d", i%37), i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	f.waitProcessed(t, n/3) // reload while events are queued and running
	if err := e.Reload(list("new")); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	f.waitProcessed(t, n)

	mu.Lock()
	defer mu.Unlock()
	counts := map[string]int{}
	for i := range n {
		id := chatEvent("acct", fmt.Sprintf("c%d", i%37), i).ID
		v := versions[id]
		if len(v) != 2 || v[0] != v[1] {
			t.Fatalf("event %s ran stages %v; want both stages of one list", id, v)
		}
		counts[v[0]]++
	}
	if counts["old"] == 0 || counts["new"] == 0 {
		t.Fatalf("versions %v: the reload did not happen mid-stream", counts)
	}
	for id, c := range f.processed {
		if c != 1 {
			t.Fatalf("event %s processed %d times", id, c)
		}
	}
	if g := e.Snapshot().Generation; g != 2 {
		t.Fatalf("generation %d after one reload", g)
	}
}

func TestOnError(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		onError   OnError
		failures  int  // calls that fail before one succeeds
		hang      bool // the call outlives its timeout instead
		wantCalls int
		wantLater bool // the next stage ran
		wantBuied bool
		wantTO    uint64
	}{
		{"skip continues", OnErrorSkip, 1, false, 1, true, false, 0},
		{"retry succeeds", OnErrorRetry, 2, false, 3, true, false, 0},
		{"retry exhausted dead-letters", OnErrorRetry, 5, false, 3, false, true, 0},
		{"deadletter stops", OnErrorDeadLetter, 1, false, 1, false, true, 0},
		{"timeout follows skip", OnErrorSkip, 0, true, 1, true, false, 1},
		{"timeout follows deadletter", OnErrorDeadLetter, 0, true, 1, false, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls, later atomic.Int64
			reg := testRegistry()
			reg.RegisterBuiltin("flaky", func(st StageConfig) (InlineHandler, error) {
				return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
					n := calls.Add(1)
					if tt.hang {
						<-ctx.Done()
						return nil, ctx.Err()
					}
					if int(n) <= tt.failures {
						return nil, boom
					}
					return nil, nil
				}), nil
			})
			reg.RegisterBuiltin("later", func(st StageConfig) (InlineHandler, error) {
				return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
					later.Add(1)
					return nil, nil
				}), nil
			})
			f := newFakes()
			e := newEngine(t, withFakes(f, Options{Registry: reg, RetryBackoff: time.Millisecond, Stages: []StageConfig{
				{Name: "flaky", Builtin: "flaky", OnError: tt.onError, Timeout: 20 * time.Millisecond},
				{Name: "later", Builtin: "later"},
			}}))
			if err := e.Submit(context.Background(), chatEvent("acct", "c", 1)); err != nil {
				t.Fatal(err)
			}
			f.waitProcessed(t, 1)
			if got := calls.Load(); int(got) != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
			if got := later.Load() == 1; got != tt.wantLater {
				t.Errorf("later stage ran: %v, want %v", got, tt.wantLater)
			}
			f.mu.Lock()
			target, buried := f.buried["acct:c:1"]
			f.mu.Unlock()
			if buried != tt.wantBuied || (buried && target != "pipeline:flaky") {
				t.Errorf("buried %v (%q), want %v", buried, target, tt.wantBuied)
			}
			st := e.Snapshot().Stages[0]
			if st.Timeouts != tt.wantTO || int(st.Errors) != min(tt.wantCalls, max(tt.failures, int(tt.wantTO))) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// Submit blocks when the queue is full and returns when its context ends.
func TestSubmitAppliesBackpressure(t *testing.T) {
	release := make(chan struct{})
	reg := testRegistry()
	reg.RegisterBuiltin("block", func(st StageConfig) (InlineHandler, error) {
		return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
			<-release
			return nil, nil
		}), nil
	})
	f := newFakes()
	e := newEngine(t, withFakes(f, Options{Registry: reg, Workers: 1, QueueSize: 2, Stages: []StageConfig{
		{Name: "block", Builtin: "block", Timeout: time.Minute},
	}}))
	for i := range 2 {
		if err := e.Submit(context.Background(), chatEvent("acct", "c", i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Submit(ctx, chatEvent("acct", "c", 2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Submit to a full queue: %v, want context.Canceled", err)
	}
	close(release)
	f.waitProcessed(t, 2)
	if err := e.Submit(context.Background(), chatEvent("acct", "c", 3)); err != nil {
		t.Fatalf("Submit after the queue drained: %v", err)
	}
	f.waitProcessed(t, 3)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Submit(context.Background(), chatEvent("acct", "c", 4)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close: %v, want ErrClosed", err)
	}
}

type pages struct {
	events []*event.Event
	asked  []string
}

func (p *pages) Unprocessed(ctx context.Context, account, after string, limit int) ([]*event.Event, string, error) {
	p.asked = append(p.asked, after)
	start := 0
	if after != "" {
		fmt.Sscan(after, &start)
	}
	end := min(start+2, len(p.events))
	if start >= end {
		return nil, "", nil
	}
	return p.events[start:end], fmt.Sprint(end), nil
}

func TestRecoverSubmitsUnprocessedEventsInOrder(t *testing.T) {
	f := newFakes()
	e := newEngine(t, withFakes(f, Options{Workers: 4, Stages: []StageConfig{{Name: "out", Sink: "webhooks"}}}))
	src := &pages{}
	for i := range 5 {
		src.events = append(src.events, chatEvent("acct", "c", i))
	}
	n, err := e.Recover(context.Background(), src, "acct")
	if err != nil || n != 5 {
		t.Fatalf("recovered %d, %v", n, err)
	}
	f.waitProcessed(t, 5)
	f.mu.Lock()
	defer f.mu.Unlock()
	want := []string{"acct:c:0", "acct:c:1", "acct:c:2", "acct:c:3", "acct:c:4"}
	if !slices.Equal(f.order, want) {
		t.Fatalf("processed %v, want %v", f.order, want)
	}
}

func TestMetricsAndSnapshot(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakes()
	e := newEngine(t, withFakes(f, Options{Metrics: m, Stages: []StageConfig{
		{Name: "vip", Builtin: "tag", Config: map[string]any{"tag": "vip"}, Match: Match{Kinds: []string{"message.*"}}},
		{Name: "out", Sink: "webhooks"},
	}}))
	for i := range 3 {
		if err := e.Submit(context.Background(), chatEvent("acct", "c", i)); err != nil {
			t.Fatal(err)
		}
	}
	connected := &event.Event{ID: "acct:connected:1", Kind: event.KindAccountConnected, AccountID: "acct", Source: event.SourcePhone}
	if err := e.Submit(context.Background(), connected); err != nil {
		t.Fatal(err)
	}
	f.waitProcessed(t, 4)
	snap := e.Snapshot()
	if len(snap.Stages) != 2 || snap.Stages[0].In != 3 || snap.Stages[0].Actions["tag"] != 3 || snap.Stages[1].Enqueued != 4 || snap.Stages[1].Target != "webhooks" {
		t.Fatalf("snapshot %+v", snap)
	}
	if got := counterValue(t, reg, "wildcat_pipeline_stage_events_total", "vip"); got != 3 {
		t.Fatalf("wildcat_pipeline_stage_events_total{stage=vip} = %v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "wildcat_pipeline_stage_duration_seconds" && len(mf.GetMetric()) != 2 {
			t.Fatalf("latency series: %d, want 2", len(mf.GetMetric()))
		}
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, stage string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{stage=%q}", name, stage)
	return 0
}

// failingSender is fakes whose every send fails with err.
type failingSender struct {
	*fakes
	err error
}

func (f failingSender) Send(context.Context, string, *session.SendRequest) error { return f.err }

// A stage that fails because the daemon is stopping — the sessions a reply
// needs are closed — leaves its event unprocessed for recovery, whatever
// onError says: no done mark, no dead letter, no later stage. Any other
// failure follows onError.
func TestStopCausedFailureLeavesEventUnprocessed(t *testing.T) {
	stopping := fmt.Errorf("reply to x: account %q: %w", "acct", session.ErrClosed)
	other := fmt.Errorf("reply to x: account %q has no running session: %w", "acct", session.ErrWrongState)
	for _, tt := range []struct {
		name          string
		err           error
		onError       OnError
		wantProcessed bool
		wantBuried    bool
	}{
		{"stopping, skip", stopping, OnErrorSkip, false, false},
		{"stopping, deadletter", stopping, OnErrorDeadLetter, false, false},
		{"stopping, retry", stopping, OnErrorRetry, false, false},
		{"account down, skip", other, OnErrorSkip, true, false},
		{"account down, deadletter", other, OnErrorDeadLetter, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var later atomic.Int64
			reg := testRegistry()
			reg.RegisterBuiltin("later", func(st StageConfig) (InlineHandler, error) {
				return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
					later.Add(1)
					return nil, nil
				}), nil
			})
			f := newFakes()
			opts := withFakes(f, Options{Registry: reg, RetryBackoff: time.Millisecond, Stages: []StageConfig{
				{Name: "answer", Builtin: "reply", Config: map[string]any{"text": "pong"}, OnError: tt.onError},
				{Name: "later", Builtin: "later"},
			}})
			opts.Sender = failingSender{f, tt.err}
			e := newEngine(t, opts)
			if err := e.Submit(context.Background(), chatEvent("acct", "c", 1)); err != nil {
				t.Fatal(err)
			}
			// Close drains: the event has run when it returns.
			if err := e.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			processed, buried := f.processed["acct:c:1"] > 0, f.buried["acct:c:1"] != ""
			f.mu.Unlock()
			if processed != tt.wantProcessed || buried != tt.wantBuried {
				t.Errorf("processed %v, buried %v; want %v, %v", processed, buried, tt.wantProcessed, tt.wantBuried)
			}
			if wantLater := tt.onError == OnErrorSkip && tt.wantProcessed; (later.Load() == 1) != wantLater {
				t.Errorf("later stage ran %d times", later.Load())
			}
		})
	}
}

// Once Close has begun, Submit refuses at once even with the queue full:
// a stage of the drain may itself submit (a reply's message.sent event) and
// must not wait for a slot the drain holds.
func TestSubmitRefusesAtOnceWhileClosing(t *testing.T) {
	release := make(chan struct{})
	reg := testRegistry()
	reg.RegisterBuiltin("block", func(st StageConfig) (InlineHandler, error) {
		return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
			<-release
			return nil, nil
		}), nil
	})
	f := newFakes()
	e := newEngine(t, withFakes(f, Options{Registry: reg, Workers: 1, QueueSize: 1, Stages: []StageConfig{
		{Name: "block", Builtin: "block", Timeout: time.Minute},
	}}))
	if err := e.Submit(context.Background(), chatEvent("acct", "c", 1)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- e.Close(context.Background()) }()
	poll.Until(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := e.Submit(ctx, chatEvent("acct", "c", 2)); !errors.Is(err, ErrClosed) {
			return fmt.Errorf("Submit while closing with a full queue: %v, want ErrClosed", err)
		}
		return nil
	})
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := f.processedCount(); n != 1 {
		t.Fatalf("%d events processed, want 1", n)
	}
}

// TestFailureMetrics: each stage's error, timeout, dropped, enqueued and
// dead-letter counters reach the Prometheus registry with exactly the
// events that caused them (README, Metrics). Every stage is checked on
// every counter, so a value exported under the wrong name shows too.
func TestFailureMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	r := testRegistry()
	on := func(text string, f func(ctx context.Context) ([]Action, error)) Factory {
		return func(StageConfig) (InlineHandler, error) {
			return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
				if ev.Message.Text != text {
					return nil, nil
				}
				return f(ctx)
			}), nil
		}
	}
	r.RegisterBuiltin("fail0", on("0", func(context.Context) ([]Action, error) { return nil, boom }))
	r.RegisterBuiltin("hang1", on("1", func(ctx context.Context) ([]Action, error) { <-ctx.Done(); return nil, ctx.Err() }))
	r.RegisterBuiltin("drop2", on("2", func(context.Context) ([]Action, error) { return []Action{Drop()}, nil }))
	f := newFakes()
	e := newEngine(t, withFakes(f, Options{Registry: r, Metrics: m, Stages: []StageConfig{
		{Name: "failing", Builtin: "fail0"}, // skip: counted, the event goes on
		{Name: "slow", Builtin: "hang1", Timeout: 20 * time.Millisecond, OnError: OnErrorDeadLetter},
		{Name: "dropper", Builtin: "drop2"},
		{Name: "out", Sink: "webhooks"},
	}}))
	for i := range 4 { // 0 fails at "failing", 1 dead-letters at "slow", 2 is dropped, 3 passes
		if err := e.Submit(context.Background(), chatEvent("acct", "c", i)); err != nil {
			t.Fatal(err)
		}
	}
	f.waitProcessed(t, 4)
	type counts struct{ errors, timeouts, dropped, enqueued, deadLetters float64 }
	want := map[string]counts{
		"failing": {errors: 1},
		"slow":    {errors: 1, timeouts: 1, deadLetters: 1},
		"dropper": {dropped: 1},
		"out":     {enqueued: 2}, // events 0 and 3
	}
	for stage, w := range want {
		got := counts{
			errors:      counterValue(t, reg, "wildcat_pipeline_stage_errors_total", stage),
			timeouts:    counterValue(t, reg, "wildcat_pipeline_stage_timeouts_total", stage),
			dropped:     counterValue(t, reg, "wildcat_pipeline_stage_dropped_total", stage),
			enqueued:    counterValue(t, reg, "wildcat_pipeline_stage_enqueued_total", stage),
			deadLetters: counterValue(t, reg, "wildcat_pipeline_stage_dead_letters_total", stage),
		}
		if got != w {
			t.Errorf("stage %s: metrics %+v, want %+v", stage, got, w)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buried["acct:c:1"] != "pipeline:slow" || len(f.jobs) != 2 || f.jobs["acct:c:0"] == nil || f.jobs["acct:c:3"] == nil {
		t.Fatalf("buried %v, jobs %v", f.buried, f.jobs)
	}
}

func (f *fakes) RecordFailures(ctx context.Context, ev *event.Event, fs []ActionFailure) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures == nil {
		f.failures = map[string][]ActionFailure{}
	}
	f.failures[ev.ID] = append(f.failures[ev.ID], fs...)
	return nil
}

// flakySender fails the first n sends with err, then sends.
type flakySender struct {
	*fakes
	n     atomic.Int64
	tries atomic.Int64
	err   error
}

func (s *flakySender) Send(ctx context.Context, account string, req *session.SendRequest) error {
	if s.tries.Add(1) <= s.n.Load() {
		return s.err
	}
	return s.fakes.Send(ctx, account, req)
}

// An action that fails costs the stage none of its other actions: the tags,
// annotation and route of a rule whose reply cannot be sent still apply.
// The failure is recorded for the message (stage, action, index, error,
// attempts) and counted per action type, and onError decides about the
// event: skip goes on, deadletter stops it, retry tries the failed action
// alone again (the stage is not called again).
func TestFailedActionKeepsTheOthers(t *testing.T) {
	noSession := fmt.Errorf("account %q has no running session: %w", "acct", session.ErrWrongState)
	for _, tt := range []struct {
		name       string
		onError    OnError
		fails      int64 // sends that fail before one goes through
		wantSent   int
		wantFailed int // attempts recorded; 0: no failure
		wantBuried bool
	}{
		{"skip", OnErrorSkip, 1, 0, 1, false},
		{"deadletter", OnErrorDeadLetter, 1, 0, 1, true},
		{"retry succeeds", OnErrorRetry, 2, 1, 0, false},
		{"retry exhausted", OnErrorRetry, 10, 0, 3, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls, later atomic.Int64
			reg := testRegistry()
			reg.RegisterSink("archive")
			reg.RegisterSink("crm")
			reg.RegisterBuiltin("rule", func(st StageConfig) (InlineHandler, error) {
				return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
					calls.Add(1)
					r := Reply("pong")
					r.Origin = "ping.js"
					return []Action{Tag("ping"), r, Route("crm"), Annotate(map[string]string{"seen": "yes"})}, nil
				}), nil
			})
			reg.RegisterBuiltin("later", func(st StageConfig) (InlineHandler, error) {
				return HandlerFunc(func(ctx context.Context, ev *event.Event) ([]Action, error) {
					later.Add(1)
					return nil, nil
				}), nil
			})
			prom := prometheus.NewRegistry()
			m, err := NewMetrics(prom)
			if err != nil {
				t.Fatal(err)
			}
			f := newFakes()
			opts := withFakes(f, Options{Registry: reg, Metrics: m, RetryBackoff: time.Millisecond, Stages: []StageConfig{
				{Name: "rules", Builtin: "rule", OnError: tt.onError},
				{Name: "later", Builtin: "later"},
				{Name: "to-archive", Sink: "archive"},
				{Name: "to-crm", Sink: "crm"},
			}})
			sender := &flakySender{fakes: f, err: noSession}
			sender.n.Store(tt.fails)
			opts.Sender, opts.Failures = sender, f
			e := newEngine(t, opts)
			if err := e.Submit(context.Background(), chatEvent("acct", "c", 1)); err != nil {
				t.Fatal(err)
			}
			f.waitProcessed(t, 1)
			const id = "acct:c:1"
			f.mu.Lock()
			defer f.mu.Unlock()
			if !slices.Equal(f.annotated[id], []string{"ping"}) || f.ann[id]["seen"] != "yes" {
				t.Errorf("persisted tags %v, annotations %v; want [ping] and seen=yes", f.annotated[id], f.ann[id])
			}
			if len(f.sent) != tt.wantSent {
				t.Errorf("%d replies sent, want %d", len(f.sent), tt.wantSent)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("stage called %d times, want once (a failed action is retried alone)", n)
			}
			fs := f.failures[id]
			if tt.wantFailed == 0 {
				if len(fs) != 0 {
					t.Errorf("failures %+v, want none", fs)
				}
			} else if len(fs) != 1 || fs[0].Stage != "rules" || fs[0].Action != ActionReply || fs[0].Index != 1 ||
				fs[0].Origin != "ping.js" || !errors.Is(fs[0].Err, session.ErrWrongState) || fs[0].Attempts != tt.wantFailed || fs[0].At.IsZero() {
				t.Errorf("failures %+v, want the reply (index 1, ping.js) after %d attempts", fs, tt.wantFailed)
			}
			_, buried := f.buried[id]
			if buried != tt.wantBuried {
				t.Errorf("buried %v, want %v", buried, tt.wantBuried)
			}
			if ran := later.Load() == 1; ran == tt.wantBuried {
				t.Errorf("later stage ran: %v (dead-lettered: %v)", ran, tt.wantBuried)
			}
			if !tt.wantBuried && !slices.Equal(f.jobs[id], []string{"crm"}) {
				t.Errorf("jobs %v, want only the routed crm", f.jobs[id])
			}
			wantCount := uint64(0)
			if tt.wantFailed > 0 {
				wantCount = 1
			}
			st := e.Snapshot().Stages[0]
			if st.ActionFailures["reply"] != wantCount || st.Errors != 0 || st.Actions["reply"] != 1 || st.Actions["tag"] != 1 {
				t.Errorf("stage stats %+v: want %d reply failures, no errors", st, wantCount)
			}
			if got := actionCounter(t, prom, "wildcat_pipeline_stage_action_failures_total", "rules", "reply"); got != float64(wantCount) {
				t.Errorf("wildcat_pipeline_stage_action_failures_total{stage=rules,action=reply} = %v, want %d", got, wantCount)
			}
		})
	}
}

func actionCounter(t *testing.T, reg *prometheus.Registry, name, stage, action string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["stage"] == stage && labels["action"] == action {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{stage=%q,action=%q}", name, stage, action)
	return 0
}
