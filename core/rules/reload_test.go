package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
)

func versioned(v int) string {
	return fmt.Sprintf(`const V = %d;
on("message.received", (msg, ctx) => ctx.annotate("first", V));
on("message.received", (msg, ctx) => ctx.annotate("second", V));
`, v)
}

// versionOf checks that one call ran exactly one version, each handler
// once, and returns it.
func versionOf(effs []Effect) (string, error) {
	if len(effs) != 2 || effs[0].Key != "first" || effs[1].Key != "second" || effs[0].Value != effs[1].Value {
		b, _ := json.Marshal(effs)
		return "", fmt.Errorf("call did not run one version exactly once: %s", b)
	}
	return effs[0].Value, nil
}

// TestReloadUnderLoad: goroutines call Handle without pause while the file
// is rewritten and the watcher reloads it. Every call runs exactly one
// version, once; none fails; every version becomes visible.
func TestReloadUnderLoad(t *testing.T) {
	// A generous deadline: with more busy goroutines than cores, a
	// handler can be descheduled past 50 ms, and this test is about reload.
	e, dir := newEngine(t, map[string]string{"v.js": versioned(0)}, Options{Timeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go e.watch(ctx, 50*time.Millisecond)

	var (
		wg     sync.WaitGroup
		calls  atomic.Int64
		latest atomic.Int64
		stop   = make(chan struct{})
	)
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				effs, err := e.Handle(context.Background(), msgEvent("x"), nil)
				if err != nil {
					t.Errorf("handle during reload: %v", err)
					return
				}
				v, err := versionOf(effs)
				if err != nil {
					t.Error(err)
					return
				}
				calls.Add(1)
				var n int64
				fmt.Sscan(v, &n)
				for cur := latest.Load(); n > cur && !latest.CompareAndSwap(cur, n); cur = latest.Load() {
				}
			}
		})
	}
	const versions = 8
	for v := 1; v <= versions; v++ {
		start := time.Now()
		writeRules(t, dir, map[string]string{"v.js": versioned(v)})
		poll.Until(t, 10*time.Second, func() error {
			if latest.Load() < int64(v) {
				return fmt.Errorf("version %d not running yet", v)
			}
			return nil
		})
		t.Logf("version %d running %s after the write", v, time.Since(start).Round(time.Millisecond))
	}
	close(stop)
	wg.Wait()
	t.Logf("%d calls across %d versions", calls.Load(), versions+1)
	if st := e.Status()[0]; st.Errors != 0 || st.Timeouts != 0 || st.LoadError != "" {
		t.Fatalf("status %+v", st)
	}
}

// blockingKV blocks the first Get until released, to hold a call in flight.
type blockingKV struct {
	KV
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingKV) Get(ctx context.Context, rule, key string) (json.RawMessage, bool, error) {
	first := false
	b.once.Do(func() { first = true })
	if first {
		close(b.entered)
		<-b.release
	}
	return nil, false, nil
}

func TestInFlightCallFinishesOnItsVersion(t *testing.T) {
	src := func(v int) string {
		return fmt.Sprintf(`on("message.received", (msg, ctx) => { ctx.annotate("first", %d); ctx.kv.get("k") });
on("message.received", (msg, ctx) => ctx.annotate("second", %d));`, v, v)
	}
	kv := &blockingKV{KV: NewMemoryKV(nil), entered: make(chan struct{}), release: make(chan struct{})}
	e, dir := newEngine(t, map[string]string{"v.js": src(1)}, Options{KV: kv, Timeout: 30 * time.Second})
	done := make(chan []Effect)
	go func() {
		effs, err := e.Handle(context.Background(), msgEvent("x"), nil)
		if err != nil {
			t.Error(err)
		}
		done <- effs
	}()
	<-kv.entered
	writeRules(t, dir, map[string]string{"v.js": src(2)})
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if v, err := versionOf(mustHandle(t, e, msgEvent("y"))); err != nil || v != "2" {
		t.Fatalf("new call: %v %v", v, err)
	}
	close(kv.release)
	if v, err := versionOf(<-done); err != nil || v != "1" {
		t.Fatalf("in-flight call: version %v %v, want 1", v, err)
	}
}

func TestSyntaxErrorKeepsThePreviousVersion(t *testing.T) {
	logs := &logBuffer{}
	e, dir := newEngine(t, map[string]string{"v.js": versioned(1)}, Options{Logger: logs.logger()})
	good := e.Status()[0].Version

	writeRules(t, dir, map[string]string{"v.js": "const V = 2;\non(\"message.received\", (msg, ctx) => {\n  ctx.tag(\n});\n"})
	err := e.Reload()
	if err == nil || !strings.Contains(err.Error(), "SyntaxError") || !strings.Contains(err.Error(), "v.js:4:") {
		t.Fatalf("reload of a broken file: %v", err)
	}
	st := e.Status()[0]
	if st.Version != good || !strings.Contains(st.LoadError, "SyntaxError") {
		t.Fatalf("status %+v", st)
	}
	if v, err := versionOf(mustHandle(t, e, msgEvent("x"))); err != nil || v != "1" {
		t.Fatalf("after the broken reload: %v %v", v, err)
	}
	if recs := logs.records("rule not loaded"); len(recs) != 1 || recs[0]["line"].(float64) != 4 || recs[0]["running_version"] != good {
		t.Fatalf("log %v", recs)
	}
	// Reloading the same broken content does not log it again.
	_ = e.Reload()
	if recs := logs.records("rule not loaded"); len(recs) != 1 {
		t.Fatalf("logged %d times", len(recs))
	}

	// A throw at top level is a load error too.
	writeRules(t, dir, map[string]string{"v.js": versioned(3) + "\nundefinedFunction();\n"})
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), "undefinedFunction") || !strings.Contains(err.Error(), "v.js:5:") {
		t.Fatalf("top-level throw: %v", err)
	}

	writeRules(t, dir, map[string]string{"v.js": versioned(4)})
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if st := e.Status()[0]; st.LoadError != "" || st.Version == good {
		t.Fatalf("status after the fix %+v", st)
	}
	if v, _ := versionOf(mustHandle(t, e, msgEvent("x"))); v != "4" {
		t.Fatalf("after the fix: version %s", v)
	}
}

func TestAddAndRemoveRules(t *testing.T) {
	e, dir := newEngine(t, map[string]string{"a.js": `on("message.received", (m, ctx) => ctx.tag("a"))`}, Options{})
	writeRules(t, dir, map[string]string{"b.js": `on("message.received", (m, ctx) => ctx.tag("b"))`, "notes.txt": "not a rule"})
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := effectsJSON(t, mustHandle(t, e, msgEvent("x"))); got != `[{"kind":"tag","tags":["a"]},{"kind":"tag","tags":["b"]}]` {
		t.Fatalf("after adding b: %s", got)
	}
	if err := os.Remove(filepath.Join(dir, "a.js")); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := effectsJSON(t, mustHandle(t, e, msgEvent("x"))); got != `[{"kind":"tag","tags":["b"]}]` {
		t.Fatalf("after removing a: %s", got)
	}
	if st := e.Status(); len(st) != 1 || st[0].Name != "b" || st[0].Kinds[0] != "message.received" {
		t.Fatalf("status %+v", st)
	}
}

func TestDuplicateRuleNames(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	writeRules(t, d1, map[string]string{"same.js": `on("message.received", (m, ctx) => ctx.tag("one"))`})
	writeRules(t, d2, map[string]string{"same.js": `on("message.received", (m, ctx) => ctx.tag("two"))`})
	e := New(Options{Globs: []string{d1 + "/*.js", d2 + "/*.js"}})
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), `rule name "same" is taken`) {
		t.Fatalf("duplicate names: %v", err)
	}
	if got := effectsJSON(t, mustHandle(t, e, msgEvent("x"))); strings.Count(got, `"kind"`) != 1 {
		t.Fatalf("both ran: %s", got)
	}
}

// Watch with its production interval: an edited file and a new one take
// effect without a Reload call (the issue asks within 2 s; the latency is
// logged, the poll's ceiling only guards against a hang).
//
// The watcher's first look always reloads, so a change written before it
// proves nothing about change detection. The test first adds a probe file
// and waits until it runs: only the watcher reloads here, and it reloads
// only once its last look matches the files, so from then on it has a
// baseline that includes the probe. The edit and the new file after that
// can only be picked up by noticing that they changed.
func TestWatchAppliesChanges(t *testing.T) {
	e, dir := newEngine(t, map[string]string{"v.js": versioned(1)}, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go e.Watch(ctx)
	writeRules(t, dir, map[string]string{"probe.js": `on("message.received", (m, ctx) => ctx.tag("probe"))`})
	poll.Until(t, 10*time.Second, func() error {
		if effs := mustHandle(t, e, msgEvent("x")); len(effs) != 3 {
			return fmt.Errorf("probe not loaded yet: effects %s", effectsJSON(t, effs))
		}
		return nil
	})

	start := time.Now()
	// versioned(2) has the size of versioned(1): only the modification
	// time tells the watcher that v.js changed.
	writeRules(t, dir, map[string]string{"v.js": versioned(2), "w.js": `on("message.received", (m, ctx) => ctx.tag("new file"))`})
	poll.Until(t, 10*time.Second, func() error {
		// Rules run in file name order: probe, v, w.
		want := `[{"kind":"tag","tags":["probe"]},{"kind":"annotate","key":"first","value":"2"},` +
			`{"kind":"annotate","key":"second","value":"2"},{"kind":"tag","tags":["new file"]}]`
		if got := effectsJSON(t, mustHandle(t, e, msgEvent("x"))); got != want {
			return fmt.Errorf("effects %s", got)
		}
		return nil
	})
	t.Logf("edit and new file applied %s after the write", time.Since(start).Round(time.Millisecond))
}
