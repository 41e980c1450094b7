package daemon_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/poll"
)

// TestRuleBuiltinsAndMemoryCutFollowOnError: the probe's rules, sent by a
// contact, through the daemon. A backtracking regexp and a gigabyte
// "x".repeat are cut (at the deadline; by a RangeError) and dead-lettered
// by their stage's onError with the rule's file and line, and the chat's
// next event runs.
func TestRuleBuiltinsCutFollowOnError(t *testing.T) {
	probeDir := t.TempDir()
	writeRule(t, probeDir, "probe.js", `on("message.received", (msg, ctx) => {
  const text = msg.message.text;
  if (text.startsWith("aaaa")) ctx.tag(String(/^(a+)+(?!x)$/.test(text)));
  if (text === "repeat") ctx.tag("x".repeat(2 ** 30));
  ctx.tag("ok");
});`)
	cfg := accountsConfig(t)
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "probe", Rules: []string{filepath.Join(probeDir, "*.js")}, Match: recv, OnError: pipeline.OnErrorDeadLetter},
		{Name: "after", Builtin: "tag", Config: map[string]any{"tag": "after"}, Match: recv},
	}
	_, c := accountsDaemonWith(t, cfg, 0, nil, nil)
	c.connectSim("rl")
	from := `"from":"+15550001111"`

	redos := c.inject("rl", `{`+from+`,"id":"RL1","text":"`+strings.Repeat("a", 30)+`!"}`)
	big := c.inject("rl", `{`+from+`,"id":"RL2","text":"repeat"}`)
	next := c.inject("rl", `{`+from+`,"id":"RL3","text":"next"}`)
	c.waitTags("rl", next, "ok", "after")
	for _, id := range []string{redos, big} {
		if m := c.ruled("rl", id); len(m.Tags) != 0 {
			t.Fatalf("%s: tags %v; a dead-lettered event runs no later stage", id, m.Tags)
		}
	}
	ds := c.deliveries("state=deadletter&sink=pipeline:probe")
	want := map[string][]string{"rl:" + redos: {"deadline", "probe.js:3"}, "rl:" + big: {"RangeError", "probe.js:4"}}
	if len(ds) != 2 {
		t.Fatalf("dead letters %+v", ds)
	}
	for _, d := range ds {
		for _, s := range want[d.EventID] {
			if len(d.Log) != 1 || !strings.Contains(d.Log[0].Error, s) {
				t.Fatalf("dead letter of %s: %+v, want %q", d.EventID, d.Log, s)
			}
		}
	}
	if probe, err := c.rule("probe", "probe"); err != nil || probe.Timeouts != 1 || probe.Errors != 1 {
		t.Fatalf("probe rule %+v %v", probe, err)
	}
}

// TestRulesMemoryLimitHoldsTheDaemonHeap: rules.memory_limit reaches the
// rule engines: a rule keeping 5 MiB per event reaches it, and the daemon's
// heap is back under the limit, and the chat goes on.
func TestRulesMemoryLimitHoldsTheDaemonHeap(t *testing.T) {
	hoardDir := t.TempDir()
	writeRule(t, hoardDir, "hoard.js", `const kept = [], chunk = "y".repeat(1 << 20);
on("message.received", (msg, ctx) => {
  kept.push(chunk + chunk + chunk + chunk + chunk + kept.length);
  ctx.tag("kept");
});`)
	cfg := accountsConfig(t)
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "hoard", Rules: []string{filepath.Join(hoardDir, "*.js")}, Match: recv, OnError: pipeline.OnErrorSkip},
		{Name: "after", Builtin: "tag", Config: map[string]any{"tag": "after"}, Match: recv},
	}
	cfg.Rules.MemoryLimit = liveHeap() + 96<<20
	logs := &logRecorder{}
	_, c := accountsDaemonWith(t, cfg, 0, nil, func(o *daemon.Options) { o.Logger = slog.New(logs) })
	c.connectSim("hm")
	// Batches until the limit is reached: the heap the budget was set from
	// may hold what earlier tests are still letting go of.
	reached := false
	for batch := 0; batch < 10 && !reached; batch++ {
		var last string
		for i := range 10 {
			last = c.inject("hm", fmt.Sprintf(`{"from":"+15550002222","id":"HM%d%d","text":"x"}`, batch, i))
		}
		// The last stage tags every event; hoard's tag is missing where
		// its call was cut (onError skip).
		poll.Until(t, 30*time.Second, func() error {
			if m := c.ruled("hm", last); !slices.Contains(m.Tags, "after") {
				return fmt.Errorf("message %s has tags %v", last, m.Tags)
			}
			return nil
		})
		reached = logs.has("rules' memory limit reached: runtimes discarded stage=hoard")
	}
	if !reached {
		t.Fatal("the memory limit was never reached")
	}
	if heap := liveHeap(); heap > cfg.Rules.MemoryLimit {
		t.Fatalf("heap %d MiB over rules.memory_limit %d MiB", heap>>20, cfg.Rules.MemoryLimit>>20)
	}
}

func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
