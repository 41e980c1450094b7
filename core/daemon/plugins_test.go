package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/poll"
)

// pluginBinDir holds the plugin binaries TestMain builds.
var pluginBinDir string

// withTestPlugins builds the test plugins into a temporary directory, runs
// the tests and removes it: testdata/plugin (inline and sink), the SDK's
// echo example (inline only) and a program that is not a plugin.
func withTestPlugins(run func() int) int {
	dir, err := os.MkdirTemp("", "wildcat-daemon-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-o", dir+string(filepath.Separator),
		"./testdata/plugin", "../../sdk/examples/echo", "../pluginhost/testdata/notaplugin",
		"../../plugins/mediaarchive") // mediaarchive_test.go
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test plugins: %v\n%s", err, out)
		return 1
	}
	pluginBinDir = dir
	return run()
}

func pluginBin(name string) string { return filepath.Join(pluginBinDir, name) }

// pluginDaemon runs a daemon with the test plugin declared as "dp", fast
// plugin health checks and restarts, and a short outbox schedule.
func pluginDaemon(t *testing.T, stages []pipeline.StageConfig) (*daemon.Daemon, *client) {
	t.Helper()
	return pluginDaemonWith(t, pluginhost.Config{Path: pluginBin("plugin"), Config: map[string]any{"greeting": "hello"}}, stages)
}

// pluginDaemonWith is pluginDaemon with the plugin declared as dp.
func pluginDaemonWith(t *testing.T, dp pluginhost.Config, stages []pipeline.StageConfig) (*daemon.Daemon, *client) {
	t.Helper()
	cfg := accountsConfig(t)
	cfg.Plugins = map[string]pluginhost.Config{"dp": dp}
	cfg.Pipeline = stages
	return accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) {
		o.PluginHost = pluginhost.Options{
			HealthInterval: 50 * time.Millisecond,
			RestartBackoff: pluginhost.Backoff{Min: 10 * time.Millisecond, Max: time.Second},
		}
		o.OutboxSchedule = &outbox.Schedule{Delays: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond},
			Every: 300 * time.Millisecond, MaxAge: 30 * time.Second, Jitter: 0, MaxRetryAfter: time.Second}
		o.OutboxPoll = 20 * time.Millisecond
	})
}

// pluginMessage is the part of a stored message the plugin tests read.
type pluginMessage struct {
	MessageID   string            `json:"messageId"`
	Text        string            `json:"text"`
	FromMe      bool              `json:"fromMe"`
	Source      string            `json:"source"`
	Tags        []string          `json:"tags"`
	Annotations map[string]string `json:"annotations"`
	Quoted      *struct {
		MessageID string `json:"messageId"`
	} `json:"quoted"`
}

func (c *client) pluginMsg(acct, id string) pluginMessage {
	c.t.Helper()
	var m pluginMessage
	if err := json.Unmarshal(c.must(c.get("/v1/accounts/"+acct+"/messages/"+id), 200).body, &m); err != nil {
		c.t.Fatal(err)
	}
	return m
}

// waitPluginTags waits until the stored message carries every tag.
func (c *client) waitPluginTags(acct, id string, tags ...string) pluginMessage {
	c.t.Helper()
	var m pluginMessage
	poll.Until(c.t, 10*time.Second, func() error {
		m = c.pluginMsg(acct, id)
		for _, tag := range tags {
			if !slices.Contains(m.Tags, tag) {
				return fmt.Errorf("message %s has tags %v, want %v", id, m.Tags, tags)
			}
		}
		return nil
	})
	return m
}

// waitPluginReply waits for the account's own message with text and returns it.
func (c *client) waitPluginReply(acct, text string) pluginMessage {
	c.t.Helper()
	var found pluginMessage
	poll.Until(c.t, 10*time.Second, func() error {
		var p struct {
			Messages []pluginMessage `json:"messages"`
		}
		if err := json.Unmarshal(c.must(c.get("/v1/accounts/"+acct+"/messages?fromMe=true&limit=100"), 200).body, &p); err != nil {
			return err
		}
		for _, m := range p.Messages {
			if m.Text == text {
				found = m
				return nil
			}
		}
		return fmt.Errorf("no message %q of ours among %d", text, len(p.Messages))
	})
	return found
}

func (c *client) plugins() []pluginhost.Status {
	c.t.Helper()
	var p struct {
		Plugins []pluginhost.Status `json:"plugins"`
	}
	if err := json.Unmarshal(c.must(c.get("/v1/plugins"), 200).body, &p); err != nil {
		c.t.Fatal(err)
	}
	return p.Plugins
}

// TestPluginInlineStage runs the test plugin as an inline stage of a
// daemon: its actions (reply with and without quote, tag, annotate) land on
// the stored messages, its Host calls reach the daemon's services, a failed
// call and a crashed process follow onError (skip: the next stage still
// runs), the crashed process is replaced, and GET /v1/plugins shows it all.
func TestPluginInlineStage(t *testing.T) {
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	d, c := pluginDaemon(t, []pipeline.StageConfig{
		{Name: "dp", Plugin: "dp", Match: recv},
		{Name: "after", Builtin: "tag", Config: map[string]any{"tag": "after"}, Match: recv},
	})
	c.connectSim("plug")
	inject := func(id, text string) string {
		return c.inject("plug", fmt.Sprintf(`{"from":"+15550001111","id":%q,"text":%q}`, id, text))
	}

	// Tag and annotation stored, the reply quotes the event's message and
	// was configured by plugins.dp.config.
	ping := inject("PL01", "ping")
	m := c.waitPluginTags("plug", ping, "plugged", "after")
	if m.Annotations["plugin"] != "seen" {
		t.Fatalf("annotations %v", m.Annotations)
	}
	pong := c.waitPluginReply("plug", "hello pong")
	if pong.Source != "plugin" || pong.Quoted == nil || pong.Quoted.MessageID != ping {
		t.Fatalf("reply %+v: want source plugin, quoting %s", pong, ping)
	}
	inject("PL02", "plain")
	if plain := c.waitPluginReply("plug", "plain reply"); plain.Quoted != nil || plain.Source != "plugin" {
		t.Fatalf("plain reply %+v: want no quote", plain)
	}

	// Host services: the message store, the session, the KV store.
	host := inject("PL03", "host")
	m = c.waitPluginTags("plug", host, "after")
	if m.Annotations["looked-up"] != "host" || m.Annotations["missing"] != "true" || m.Annotations["kv"] != host || m.Annotations["sent"] == "" {
		t.Fatalf("host annotations %v", m.Annotations)
	}
	sent := c.waitPluginReply("plug", "sent by the plugin")
	if sent.MessageID != m.Annotations["sent"] || sent.Source != "plugin" {
		t.Fatalf("message sent through the host %+v, want id %s and source plugin", sent, m.Annotations["sent"])
	}

	// A failing call: skip, the next stage runs.
	boom := inject("PL04", "boom")
	if m := c.waitPluginTags("plug", boom, "after"); slices.Contains(m.Tags, "plugged") {
		t.Fatalf("tags %v", m.Tags)
	}
	if st := c.plugins()[0]; st.Calls.Handle.Errors != 1 || !strings.Contains(st.LastError, "handler says no") {
		t.Fatalf("after a failed call: %+v", st)
	}

	// A crash mid-call: skip as well; the process is replaced and serves
	// the next event.
	pid := c.plugins()[0].PID
	crash := inject("PL05", "crash")
	c.waitPluginTags("plug", crash, "after")
	poll.Until(t, 30*time.Second, func() error {
		if st := c.plugins()[0]; st.State != pluginhost.StateRunning || st.Restarts != 1 || st.PID == pid {
			return fmt.Errorf("plugin %s, %d restarts, pid %d (was %d)", st.State, st.Restarts, st.PID, pid)
		}
		return nil
	})
	again := inject("PL06", "ping")
	c.waitPluginTags("plug", again, "plugged", "after")

	st := c.plugins()
	if len(st) != 1 {
		t.Fatalf("GET /v1/plugins: %+v", st)
	}
	p := st[0]
	if p.Name != "dp" || p.Plugin != "daemon-test" || p.Version != "0.9.1" || fmt.Sprint(p.Capabilities) != "[inline sink]" ||
		p.Path != pluginBin("plugin") || p.StartedAt == nil || p.LastErrorAt == nil {
		t.Fatalf("GET /v1/plugins: %+v", p)
	}
	// Every received message was a call; two failed (error, crash).
	if p.Calls.Handle.Calls != 6 || p.Calls.Handle.Errors != 2 || p.Calls.Deliver.Calls != 0 {
		t.Fatalf("call counters %+v", p.Calls)
	}
	if st := c.pipelineStage("dp"); st.Errors != 2 {
		t.Fatalf("stage dp %+v: want the 2 failed calls counted", st)
	}

	// Shutdown stops the process.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st := d.Plugins().Status()[0]; st.State != pluginhost.StateStopped || st.PID != 0 {
		t.Fatalf("after shutdown: %+v", st)
	}
}

// TestPluginSinkThroughOutbox feeds the test plugin as a sink stage: ok,
// retry-then-ok and a permanent failure show in GET /v1/deliveries with
// their attempt logs, and a process that crashes mid-delivery is restarted
// while the job waits in the outbox and is then delivered.
func TestPluginSinkThroughOutbox(t *testing.T) {
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	_, c := pluginDaemon(t, []pipeline.StageConfig{{Name: "dps", Plugin: "dp", Mode: pipeline.ModeSink, Match: recv}})
	c.connectSim("sink")
	ids := map[string]string{}
	inject := func(what string) {
		id := c.inject("sink", fmt.Sprintf(`{"from":"+15550002222","id":"SK%d","text":"deliver %s"}`, len(ids), what))
		ids[what] = "sink:" + id
	}
	for _, what := range []string{"ok", "retry", "fail"} {
		inject(what)
	}
	job := func(what, state string) wireDelivery {
		t.Helper()
		var got wireDelivery
		poll.Until(t, 30*time.Second, func() error {
			ds := c.deliveries("sink=dp&eventId=" + ids[what])
			if len(ds) != 1 || ds[0].State != state {
				return fmt.Errorf("%s: deliveries %+v, want one %s", what, ds, state)
			}
			got = ds[0]
			return nil
		})
		return got
	}
	results := func(j wireDelivery) []string {
		var out []string
		for _, a := range j.Log {
			out = append(out, a.Result)
		}
		return out
	}

	if j := job("ok", "done"); j.Attempts != 1 || fmt.Sprint(results(j)) != "[ok]" || j.Target != "dp" {
		t.Fatalf("ok job %+v", j)
	}
	if j := job("retry", "done"); j.Attempts != 2 || fmt.Sprint(results(j)) != "[retry ok]" || !strings.Contains(j.Log[0].Error, "busy (attempt 1)") {
		t.Fatalf("retried job %+v", j)
	}
	if j := job("fail", "deadletter"); j.Attempts != 1 || fmt.Sprint(results(j)) != "[fail]" || !strings.Contains(j.Log[0].Error, "410 gone") {
		t.Fatalf("failed job %+v", j)
	}
	// The crash, once nothing else is in flight: the attempt that took the
	// process down is a retry, so are attempts while it restarts; the new
	// process delivers. Nothing lost.
	inject("crash")
	j := job("crash", "done")
	r := results(j)
	if j.Attempts < 2 || r[0] != "retry" || r[len(r)-1] != "ok" || slices.Contains(r, "fail") {
		t.Fatalf("crashed job %+v", j)
	}
	st := c.plugins()[0]
	if st.Restarts != 1 || st.State != pluginhost.StateRunning {
		t.Fatalf("plugin after the crash: %+v", st)
	}
	if st.Calls.Deliver.Calls < 6 || st.Calls.Handle.Calls != 0 {
		t.Fatalf("call counters %+v", st.Calls)
	}
	if n := len(c.deliveries("sink=dp")); n != 4 {
		t.Fatalf("%d jobs for the plugin, want 4", n)
	}
}

// TestPluginSinkInChatOrder: a sink plugin declared ordered gets the
// events of one chat one at a time, in order — a message behind one being
// retried waits for it — while another chat's go on; declared without
// ordered, every message is delivered too.
func TestPluginSinkInChatOrder(t *testing.T) {
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	for _, ordered := range []bool{true, false} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			_, c := pluginDaemonWith(t, pluginhost.Config{Path: pluginBin("plugin"), Ordered: ordered},
				[]pipeline.StageConfig{{Name: "dps", Plugin: "dp", Mode: pipeline.ModeSink, Match: recv}})
			c.connectSim("ord")
			first := "ord:" + c.inject("ord", `{"from":"+15550003333","id":"OR1","text":"deliver retry"}`)
			second := "ord:" + c.inject("ord", `{"from":"+15550003333","id":"OR2","text":"deliver ok"}`)
			other := "ord:" + c.inject("ord", `{"from":"+15550004444","id":"OR3","text":"deliver ok"}`)
			done := func(id string) wireDelivery {
				t.Helper()
				var got wireDelivery
				poll.Until(t, 30*time.Second, func() error {
					ds := c.deliveries("sink=dp&eventId=" + id)
					if len(ds) != 1 || ds[0].State != "done" {
						return fmt.Errorf("%s: deliveries %+v, want one done", id, ds)
					}
					got = ds[0]
					return nil
				})
				return got
			}
			f, s, o := done(first), done(second), done(other)
			if len(f.Log) != 2 || len(s.Log) != 1 || len(o.Log) != 1 {
				t.Fatalf("attempt logs: first %+v, second %+v, other %+v", f.Log, s.Log, o.Log)
			}
			if !ordered {
				return // delivered; when, relative to the retry, is up to the schedule
			}
			retried, secondAt := f.Log[1].At, s.Log[0].At
			if secondAt.Before(retried) {
				t.Fatalf("the chat's second message was delivered at %s, before its first was retried (%s)",
					secondAt.Format(time.StampMilli), retried.Format(time.StampMilli))
			}
			if !o.Log[0].At.Before(retried) {
				t.Fatalf("the other chat's message (%s) waited for the retry (%s)", o.Log[0].At.Format(time.StampMilli), retried.Format(time.StampMilli))
			}
		})
	}
}

// TestPluginStartFailures: start-up stops, naming the plugin or the
// stage, when a plugin cannot run or cannot serve its stage's mode.
func TestPluginStartFailures(t *testing.T) {
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	start := func(plugins map[string]pluginhost.Config, stages []pipeline.StageConfig) error {
		t.Helper()
		cfg := accountsConfig(t)
		cfg.Plugins, cfg.Pipeline = plugins, stages
		d, err := daemon.New(cfg, daemon.Options{NoSignals: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
		return d.Start()
	}

	t.Run("not a plugin", func(t *testing.T) {
		err := start(map[string]pluginhost.Config{"bad": {Path: pluginBin("notaplugin")}}, nil)
		if !errors.Is(err, daemon.ErrPluginStart) || !strings.Contains(err.Error(), `plugin "bad"`) || !strings.Contains(err.Error(), "is not a Wildcat plugin") {
			t.Fatalf("Start: %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		err := start(map[string]pluginhost.Config{"gone": {Path: filepath.Join(t.TempDir(), "nope")}}, nil)
		if !errors.Is(err, daemon.ErrPluginStart) || !strings.Contains(err.Error(), "plugins.gone.path") {
			t.Fatalf("Start: %v", err)
		}
	})
	t.Run("inline-only plugin as a sink", func(t *testing.T) {
		// The SDK's echo example has no Deliver.
		err := start(map[string]pluginhost.Config{"echo": {Path: pluginBin("echo")}},
			[]pipeline.StageConfig{{Name: "archive", Plugin: "echo", Mode: pipeline.ModeSink, Match: recv}})
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Key != `pipeline[0] "archive"` || !strings.Contains(ce.Problem, `plugin "echo" is not a sink`) {
			t.Fatalf("Start: %v", err)
		}
	})
	t.Run("name taken by a sink", func(t *testing.T) {
		cfg := accountsConfig(t)
		cfg.Plugins = map[string]pluginhost.Config{"hooks": {Path: pluginBin("plugin")}}
		_, err := daemon.New(cfg, daemon.Options{NoSignals: true, Sinks: map[string]outbox.Sink{
			"hooks": outbox.SinkFunc(func(context.Context, *outbox.Job) outbox.Result { return outbox.OK() })}})
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Key != "plugins.hooks" || !strings.Contains(ce.Problem, "taken by the sink") {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("undeclared plugin", func(t *testing.T) {
		cfg := accountsConfig(t)
		cfg.Pipeline = []pipeline.StageConfig{{Name: "hooks", Plugin: "webhook", Mode: pipeline.ModeSink}}
		_, err := daemon.New(cfg, daemon.Options{NoSignals: true})
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Key != `pipeline[0] "hooks"` || !strings.Contains(ce.Problem, `unknown plugin "webhook"`) {
			t.Fatalf("New: %v", err)
		}
	})
}
