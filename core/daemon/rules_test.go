package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// The rules stage in a running daemon: sim messages in, rule effects out.

// wireRule is one entry of GET /v1/rules.
type wireRule struct {
	Stage     string   `json:"stage"`
	Name      string   `json:"name"`
	File      string   `json:"file"`
	Version   string   `json:"version"`
	LoadError string   `json:"loadError"`
	Kinds     []string `json:"kinds"`
	Calls     int64    `json:"calls"`
	Errors    int64    `json:"errors"`
	Timeouts  int64    `json:"timeouts"`
	P99       int64    `json:"p99Ns"`
}

func (c *client) rules() []wireRule {
	c.t.Helper()
	var l struct {
		Rules []wireRule `json:"rules"`
	}
	if err := json.Unmarshal(c.must(c.get("/v1/rules"), 200).body, &l); err != nil {
		c.t.Fatal(err)
	}
	return l.Rules
}

// rule returns the named rule of GET /v1/rules, or an error saying it is
// not listed.
func (c *client) rule(stage, name string) (wireRule, error) {
	for _, r := range c.rules() {
		if r.Stage == stage && r.Name == name {
			return r, nil
		}
	}
	return wireRule{}, fmt.Errorf("rule %s/%s not listed", stage, name)
}

// ruledMessage is what rules change on a stored message.
type ruledMessage struct {
	Tags        []string          `json:"tags"`
	Annotations map[string]string `json:"annotations"`
}

func (c *client) ruled(acct, id string) ruledMessage {
	c.t.Helper()
	var m ruledMessage
	if err := json.Unmarshal(c.must(c.get("/v1/accounts/"+acct+"/messages/"+id), 200).body, &m); err != nil {
		c.t.Fatal(err)
	}
	return m
}

// waitTags waits until the stored message has exactly these tags.
func (c *client) waitTags(acct, id string, want ...string) ruledMessage {
	c.t.Helper()
	var m ruledMessage
	poll.Until(c.t, 30*time.Second, func() error {
		m = c.ruled(acct, id)
		if !slices.Equal(m.Tags, want) {
			return fmt.Errorf("message %s has tags %v, want %v", id, m.Tags, want)
		}
		return nil
	})
	return m
}

// writeRule replaces a rule file in one step (write aside, rename), as
// editors do, so the watcher never sees it half-written.
func writeRule(t *testing.T, dir, name, src string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func shippedScript(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedHours is a business-hours spec that does not include now: one
// minute on the day after tomorrow (UTC).
func closedHours() string {
	return time.Now().UTC().Add(48 * time.Hour).Weekday().String()[:3] + " 00:00-00:01"
}

// simText is a text message to a sim account of the network.
func simText(to, text string) *session.SendRequest {
	return &session.SendRequest{To: sim.JID(to).String(), Text: text, Source: event.SourceAPI}
}

const awayText = "Thanks for your message! We're closed right now and will answer during business hours (Mon–Fri 9:00–18:00)."

// TestRulesStageRunsRules drives the shipped business-hours and keyword
// router rules and a few test rules through a daemon: an unquoted reply
// stored with source rule, tags and annotations on the stored message,
// routing to named sinks (and to a sink no stage feeds), drop, react and
// markRead through the session, and the stage's config block reaching
// ctx.config and the http.fetch allow-list.
func TestRulesStageRunsRules(t *testing.T) {
	dir := t.TempDir()
	writeRule(t, dir, "05-spam.js", `on("message.received", (msg, ctx) => {
  if ((msg.message.text ?? "").includes("spam")) { ctx.tag("spam"); ctx.drop(); }
});`)
	writeRule(t, dir, "07-ack.js", `on("message.received", (msg, ctx) => {
  if (msg.message.text !== "ack me") return;
  ctx.react("👍");
  ctx.markRead();
  ctx.annotate("acked", ctx.config.label);
});`)
	writeRule(t, dir, "50-fetch.js", `on("message.received", (msg, ctx) => {
  if (msg.message.text !== "fetch") return;
  try { ctx.http.fetch("http://127.0.0.1:1/secret"); ctx.annotate("fetch", "done"); }
  catch (e) { ctx.annotate("fetch", String(e.message ?? e)); }
});`)

	billing, orders := &countingSink{}, &countingSink{}
	cfg := accountsConfig(t)
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "rules", Rules: []string{shippedScript(t, "20-business-hours.js"), shippedScript(t, "30-keyword-router.js"), filepath.Join(dir, "*.js")},
			Match: pipeline.Match{Kinds: []string{"message.received"}, Accounts: []string{"rl", "bob"}}, Timeout: 30 * time.Second,
			Config: map[string]any{
				// kv calls go to the embedded store: a deadline for a
				// loaded test machine, not the 50 ms default.
				"20-business-hours": map[string]any{"hours": closedHours(), "timezone": "UTC", "timeout": "10s"},
				"07-ack":            map[string]any{"label": "yes"},
				"50-fetch":          map[string]any{"http": map[string]any{"allow": []any{"api.example.com"}}},
			}},
		{Name: "after", Builtin: "tag", Config: map[string]any{"tag": "after"}, Match: recv},
		{Name: "billing", Sink: "billing-webhook", Match: recv},
		{Name: "orders", Sink: "orders-webhook", Match: recv},
	}
	d, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) {
		o.Sinks = map[string]outbox.Sink{"billing-webhook": billing, "orders-webhook": orders}
		o.OutboxPoll = 20 * time.Millisecond
		// Read receipts only when a rule marks a message read.
		o.Sim.ReadDelay = -1
	})
	c.connectSim("rl")

	// Business hours: closed, so an away message, not quoting, stored as
	// sent by a rule; the keyword router tags and routes to billing only.
	const ann1 = "15550001111"
	r1 := c.inject("rl", `{"from":"+`+ann1+`","id":"RL01","text":"Where is my invoice?"}`)
	r2 := c.inject("rl", `{"from":"+`+ann1+`","id":"RL02","text":"and my order?"}`)
	c.waitTags("rl", r1, "after-hours", "billing", "after")
	c.waitTags("rl", r2, "orders", "after")
	poll.Until(t, 30*time.Second, func() error {
		if n := orders.count("rl:" + r2); n != 1 {
			return fmt.Errorf("orders sink got RL02 %d times", n)
		}
		return nil
	})
	// RL02 ran after RL01 (one chat, in order) and its orders stage after
	// its billing stage: the routing decisions are final.
	if b, o, b2 := billing.count("rl:"+r1), orders.count("rl:"+r1), billing.count("rl:"+r2); b != 1 || o != 0 || b2 != 0 {
		t.Fatalf("routing: billing got RL01 %d times (want 1), orders RL01 %d (want 0), billing RL02 %d (want 0)", b, o, b2)
	}
	replies := c.page("/v1/accounts/rl/messages?fromMe=true&chatId=" + ann1).Messages
	if len(replies) != 1 {
		t.Fatalf("%d replies in the chat, want one away message (once per chat and day): %+v", len(replies), replies)
	}
	if r := replies[0]; r.Text != awayText || r.Source != "rule" || r.Quoted != nil || r.Kind != "message.sent" {
		t.Fatalf("away reply %+v: want the away text, source rule, not quoting", r)
	}

	// A route to a sink no stage feeds: delivered nowhere, nothing breaks.
	// A later message of the chat is the barrier.
	r3 := c.inject("rl", `{"from":"+`+ann1+`","id":"RL03","text":"the app is broken"}`)
	r4 := c.inject("rl", `{"from":"+`+ann1+`","id":"RL04","text":"billing question"}`)
	c.waitTags("rl", r3, "support", "after")
	poll.Until(t, 30*time.Second, func() error {
		if n := billing.count("rl:" + r4); n != 1 {
			return fmt.Errorf("billing sink got RL04 %d times", n)
		}
		return nil
	})
	if ds := c.deliveries("eventId=rl:" + r3); len(ds) != 0 {
		t.Fatalf("RL03 routed to support-webhook was delivered to %+v", ds)
	}

	// No keyword: every sink, as without rules.
	r5 := c.inject("rl", `{"from":"+15550002222","id":"RL05","text":"hello"}`)
	poll.Until(t, 30*time.Second, func() error {
		if b, o := billing.count("rl:"+r5), orders.count("rl:"+r5); b != 1 || o != 1 {
			return fmt.Errorf("unrouted RL05 delivered to billing %d, orders %d times", b, o)
		}
		return nil
	})

	// Drop: later rules and stages skip the event; it stays stored.
	callsBefore, err := c.rule("rules", "20-business-hours")
	if err != nil {
		t.Fatal(err)
	}
	r6 := c.inject("rl", `{"from":"+15550003333","id":"RL06","text":"spam spam spam"}`)
	r7 := c.inject("rl", `{"from":"+15550003333","id":"RL07","text":"invoice please"}`)
	poll.Until(t, 30*time.Second, func() error {
		if n := billing.count("rl:" + r7); n != 1 {
			return fmt.Errorf("billing sink got RL07 %d times", n)
		}
		return nil
	})
	c.waitTags("rl", r6, "spam")
	if ds := c.deliveries("eventId=rl:" + r6); len(ds) != 0 {
		t.Fatalf("dropped RL06 was delivered: %+v", ds)
	}
	if after, _ := c.rule("rules", "20-business-hours"); after.Calls != callsBefore.Calls+1 {
		t.Fatalf("business-hours ran %d times for the dropped and the next message, want 1 (the drop stops later rules)", after.Calls-callsBefore.Calls)
	}

	// The stage's config block is the rule's ctx.config, http.allow included.
	r8 := c.inject("rl", `{"from":"+15550004444","id":"RL08","text":"fetch"}`)
	poll.Until(t, 30*time.Second, func() error {
		m := c.ruled("rl", r8)
		if want := `host "127.0.0.1" is not allowed (http.allow: api.example.com)`; !strings.Contains(m.Annotations["fetch"], want) {
			return fmt.Errorf("fetch annotation %q, want it to contain %q", m.Annotations["fetch"], want)
		}
		return nil
	})

	// React and markRead, between two sim accounts: ann's message to bob
	// gets bob's reaction, and is read only because bob's rule said so.
	c.connectSim("ann")
	c.connectSim("bob")
	ctx := context.Background()
	res, err := d.Sessions().Send(ctx, "ann", simText("bob", "ack me"))
	if err != nil {
		t.Fatal(err)
	}
	m := c.waitStatus("ann", res.MessageID, "read")
	if m.Source != "api" {
		t.Fatalf("ann's message %+v", m)
	}
	poll.Until(t, 30*time.Second, func() error {
		for _, m := range c.page("/v1/accounts/ann/messages?chatId=" + sim.JID("bob").String()).Messages {
			if m.Reaction != nil && m.Reaction.TargetID == res.MessageID && !m.FromMe {
				if m.Reaction.Emoji != "👍" {
					return fmt.Errorf("reaction %q", m.Reaction.Emoji)
				}
				return nil
			}
		}
		return fmt.Errorf("no reaction from bob to %s yet", res.MessageID)
	})
	// Annotations are stored after the stage's messages went out.
	poll.Until(t, 30*time.Second, func() error {
		if got := c.ruled("bob", res.MessageID).Annotations["acked"]; got != "yes" {
			return fmt.Errorf("bob's message annotation acked=%q, want yes (from ctx.config.label)", got)
		}
		return nil
	})
	// Bob's reaction went out as a rule's message.
	var reacted bool
	for _, m := range c.page("/v1/accounts/bob/messages?fromMe=true&chatId=" + sim.JID("ann").String()).Messages {
		if m.Reaction != nil && m.Reaction.TargetID == res.MessageID {
			reacted = m.Source == "rule"
		}
	}
	if !reacted {
		t.Fatal("bob's stored reaction is missing or not from a rule")
	}

	// GET /v1/rules lists every rule of the stage, loaded, with counters.
	rs := c.rules()
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
		if r.Stage != "rules" || len(r.Version) != 12 || r.LoadError != "" || !slices.Equal(r.Kinds, []string{"message.received"}) || r.Calls == 0 || r.Errors != 0 || r.Timeouts != 0 {
			t.Errorf("rule %+v", r)
		}
	}
	if want := []string{"05-spam", "07-ack", "20-business-hours", "30-keyword-router", "50-fetch"}; !slices.Equal(names, want) {
		t.Fatalf("GET /v1/rules lists %v, want %v", names, want)
	}
}

// TestRuleDeadlineAndErrorsFollowOnError: an endless loop is cut at its
// deadline (50 ms by default) within 20 ms, the chat's next event runs
// normally, and the stage's onError decides: skip goes on with the next
// stage, deadletter records the event (with the rule's file and line) and
// stops it.
//
// The cut is timed by the engine itself (from the handler's start until
// the interrupted call returned, logged as "ran"), not around the
// pipeline. On a shared, overloaded machine one sample can be late by
// whatever the OS scheduler adds, so the loop runs up to five times and
// one cut within the bound proves the mechanism; every loop must be cut,
// none before its deadline.
func TestRuleDeadlineAndErrorsFollowOnError(t *testing.T) {
	loopDir, boomDir := t.TempDir(), t.TempDir()
	writeRule(t, loopDir, "loop.js", `on("message.received", (msg, ctx) => {
  if (msg.message.text === "loop") { let n = 0; while (true) { n++; } }
  ctx.tag("ok");
});`)
	writeRule(t, boomDir, "boom.js", `on("message.received", (msg, ctx) => {
  if (msg.message.text === "boom") throw new Error("no such customer");
});`)
	cfg := accountsConfig(t)
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "loop", Rules: []string{filepath.Join(loopDir, "*.js")}, Match: recv, OnError: pipeline.OnErrorSkip},
		{Name: "boom", Rules: []string{filepath.Join(boomDir, "*.js")}, Match: recv, OnError: pipeline.OnErrorDeadLetter},
		{Name: "after", Builtin: "tag", Config: map[string]any{"tag": "after"}, Match: recv},
	}
	logs := &logRecorder{}
	_, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) { o.Logger = slog.New(logs) })
	c.connectSim("dl")
	from := `"from":"+15550001111"`

	const deadline, slack = 50 * time.Millisecond, 20 * time.Millisecond // rules.DefaultTimeout
	var (
		attempts int
		cuts     []time.Duration
	)
	for attempts = 1; attempts <= 5; attempts++ {
		loop := c.inject("dl", fmt.Sprintf(`{%s,"id":"DLL%d","text":"loop"}`, from, attempts))
		next := c.inject("dl", fmt.Sprintf(`{%s,"id":"DLN%d","text":"next"}`, from, attempts))
		// The chat's next event runs normally, after the cut one.
		c.waitTags("dl", next, "ok", "after")
		if m := c.ruled("dl", loop); !slices.Equal(m.Tags, []string{"after"}) {
			t.Fatalf("the cut event's tags %v: want only the later stage's (onError skip)", m.Tags)
		}
		cuts = logs.durations("rule handler timed out", "ran")
		if len(cuts) != attempts {
			t.Fatalf("%d timeouts logged after %d loops", len(cuts), attempts)
		}
		if cut := cuts[len(cuts)-1]; cut < deadline {
			t.Fatalf("the loop was cut after %s, before its %s deadline", cut, deadline)
		} else if cut <= deadline+slack {
			break
		}
	}
	t.Logf("%s deadline: loops cut after %v", deadline, cuts)
	if attempts > 5 {
		t.Fatalf("no loop of five was cut within %s of its %s deadline: %v", slack, deadline, cuts)
	}

	l3 := c.inject("dl", `{`+from+`,"id":"DL03","text":"boom"}`)
	l4 := c.inject("dl", `{`+from+`,"id":"DL04","text":"fine"}`)
	c.waitTags("dl", l4, "ok", "after")
	// Same chat, in order: DL03 is done.
	if m := c.ruled("dl", l3); !slices.Equal(m.Tags, []string{"ok"}) {
		t.Fatalf("the dead-lettered event has tags %v: no stage after boom may run", m.Tags)
	}
	ds := c.deliveries("state=deadletter&sink=pipeline:boom")
	if len(ds) != 1 || ds[0].EventID != "dl:"+l3 || len(ds[0].Log) != 1 ||
		!strings.Contains(ds[0].Log[0].Error, "no such customer") || !strings.Contains(ds[0].Log[0].Error, "boom.js:2") {
		t.Fatalf("dead letters %+v: want DL03 with the error and boom.js:2", ds)
	}

	calls := int64(2*attempts + 2)
	loop, err := c.rule("loop", "loop")
	if err != nil {
		t.Fatal(err)
	}
	if loop.Calls != calls || loop.Timeouts != int64(attempts) || loop.Errors != 0 || time.Duration(loop.P99) < deadline {
		t.Fatalf("loop rule %+v: want %d calls, %d timeouts", loop, calls, attempts)
	}
	if boom, _ := c.rule("boom", "boom"); boom.Calls != calls || boom.Errors != 1 || boom.Timeouts != 0 {
		t.Fatalf("boom rule %+v: want %d calls, 1 error", boom, calls)
	}
	if st := c.pipelineStage("loop"); st.Errors != uint64(attempts) || st.In != uint64(calls) {
		t.Fatalf("loop stage %+v", st)
	}
}

// logRecorder keeps the daemon's log messages with their stage attribute.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
	durs map[string][]time.Duration // by message + " " + attribute key
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	stage := ""
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Attrs(func(a slog.Attr) bool {
		switch {
		case a.Key == "stage":
			stage = a.Value.String()
		case a.Value.Kind() == slog.KindDuration:
			if l.durs == nil {
				l.durs = map[string][]time.Duration{}
			}
			k := r.Message + " " + a.Key
			l.durs[k] = append(l.durs[k], a.Value.Duration())
		}
		return true
	})
	l.msgs = append(l.msgs, r.Message+" stage="+stage)
	return nil
}
func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logChild{root: l, with: as}
}
func (l *logRecorder) WithGroup(string) slog.Handler { return l }

// durations are the values of a duration attribute of a log message.
func (l *logRecorder) durations(msg, key string) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.durs[msg+" "+key])
}

func (l *logRecorder) has(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.msgs, msg)
}

type logChild struct {
	root *logRecorder
	with []slog.Attr
}

func (c *logChild) Enabled(context.Context, slog.Level) bool { return true }
func (c *logChild) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(c.with...)
	return c.root.Handle(ctx, r)
}
func (c *logChild) WithAttrs(as []slog.Attr) slog.Handler {
	return &logChild{root: c.root, with: append(slices.Clone(c.with), as...)}
}
func (c *logChild) WithGroup(string) slog.Handler { return c }

// TestRulesHotReload edits, breaks, adds and removes rule files of a
// running daemon: under a steady stream of messages no event is lost or
// handled twice across a new version, a syntax error keeps the running
// version and shows in GET /v1/rules, and a pipeline reload that replaces
// the stage moves the watching to the new stage.
func TestRulesHotReload(t *testing.T) {
	dir := t.TempDir()
	version := func(v string) string {
		return `// version ` + v + `
on("message.received", (msg, ctx) => {
  ctx.annotate("handled", ctx.kv.incr("seen:" + msg.message.messageId));
  ctx.tag("` + v + `");
});`
	}
	writeRule(t, dir, "ver.js", version("v1"))
	cfg := accountsConfig(t)
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	stage := pipeline.StageConfig{Name: "rules", Rules: []string{filepath.Join(dir, "*.js")}, Match: recv, Timeout: 30 * time.Second,
		Config: map[string]any{"ver": map[string]any{"timeout": "10s"}}}
	cfg.Pipeline = []pipeline.StageConfig{stage}
	logs := &logRecorder{}
	_, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) { o.Logger = slog.New(logs) })
	c.connectSim("hr")

	// Three chats send steadily while the file changes.
	var (
		mu       sync.Mutex
		injected []string
		failures []string
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(injected) }
	for s := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				id := fmt.Sprintf("HR%d%04d", s, i)
				body := fmt.Sprintf(`{"from":"+1555000%04d","id":%q,"text":"n %d"}`, s, id, i)
				resp, err := http.Post(c.base+"/v1/accounts/hr/sim/inbound", "application/json", strings.NewReader(body))
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case resp.StatusCode != 201:
					failures = append(failures, fmt.Sprintf("inject %s: %d", id, resp.StatusCode))
				default:
					injected = append(injected, id)
				}
				mu.Unlock()
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()

	v1, err := c.rule("rules", "ver")
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 60*time.Second, func() error {
		if r, _ := c.rule("rules", "ver"); r.Calls < 6 {
			return fmt.Errorf("%d calls on v1 so far", r.Calls)
		}
		return nil
	})
	writeRule(t, dir, "ver.js", version("v2-longer"))
	poll.Until(t, 30*time.Second, func() error {
		if r, _ := c.rule("rules", "ver"); r.Version == v1.Version {
			return fmt.Errorf("still on %s", r.Version)
		}
		return nil
	})
	atNew := count()
	poll.Until(t, 60*time.Second, func() error {
		if n := count(); n < atNew+6 {
			return fmt.Errorf("%d messages since the new version, want 6", n-atNew)
		}
		return nil
	})
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("injecting failed: %v", failures)
	}

	// Every message handled exactly once, by one version or the other.
	byVersion := map[string]int{}
	for _, id := range injected {
		var m ruledMessage
		poll.Until(t, 30*time.Second, func() error {
			m = c.ruled("hr", id)
			if len(m.Tags) == 0 {
				return fmt.Errorf("%s not handled yet", id)
			}
			return nil
		})
		if len(m.Tags) != 1 || m.Annotations["handled"] != "1" {
			t.Fatalf("%s: tags %v, handled %q: want one version's tag, handled once", id, m.Tags, m.Annotations["handled"])
		}
		byVersion[m.Tags[0]]++
	}
	t.Logf("%d messages: %v", len(injected), byVersion)
	if byVersion["v1"] == 0 || byVersion["v2-longer"] == 0 || byVersion["v1"]+byVersion["v2-longer"] != len(injected) {
		t.Fatalf("versions %v of %d messages", byVersion, len(injected))
	}
	if r, _ := c.rule("rules", "ver"); r.Calls != int64(len(injected)) {
		t.Fatalf("rule calls %d, want %d", r.Calls, len(injected))
	}
	if st := c.pipelineStage("rules"); st.In != uint64(len(injected)) || st.Errors != 0 {
		t.Fatalf("stage %+v, want %d events in, no errors", st, len(injected))
	}

	// A syntax error keeps v2 running and is shown.
	v2, _ := c.rule("rules", "ver")
	writeRule(t, dir, "ver.js", `on("message.received", (msg, ctx) => { ctx.tag("v3" );`)
	poll.Until(t, 30*time.Second, func() error {
		r, _ := c.rule("rules", "ver")
		if !strings.Contains(r.LoadError, "SyntaxError") || !strings.Contains(r.LoadError, "ver.js:1") {
			return fmt.Errorf("loadError %q", r.LoadError)
		}
		if r.Version != v2.Version {
			return fmt.Errorf("running version %s, want %s kept", r.Version, v2.Version)
		}
		return nil
	})
	// … and in the metrics.
	metrics := string(c.must(c.get("/metrics"), 200).body)
	for _, want := range []string{`wildcat_rule_load_error{rule="ver",stage="rules"} 1`, fmt.Sprintf(`wildcat_rule_calls_total{rule="ver",stage="rules"} %d`, len(injected))} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("GET /metrics lacks %s", want)
		}
	}
	id := c.inject("hr", `{"from":"+15550009999","id":"HRX1","text":"after the syntax error"}`)
	c.waitTags("hr", id, "v2-longer")

	// A new file is loaded, a removed one stops.
	writeRule(t, dir, "extra.js", `on("message.received", (msg, ctx) => ctx.tag("extra"));`)
	poll.Until(t, 30*time.Second, func() error { _, err := c.rule("rules", "extra"); return err })
	id = c.inject("hr", `{"from":"+15550009999","id":"HRX2","text":"with extra"}`)
	c.waitTags("hr", id, "extra", "v2-longer")
	if err := os.Remove(filepath.Join(dir, "extra.js")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		if _, err := c.rule("rules", "extra"); err == nil {
			return fmt.Errorf("extra still listed")
		}
		return nil
	})
	id = c.inject("hr", `{"from":"+15550009999","id":"HRX3","text":"without extra"}`)
	c.waitTags("hr", id, "v2-longer")

	// A pipeline reload that replaces the stage: the old engine's watcher
	// stops, the new stage's engine is watched.
	body, _ := json.Marshal(map[string]any{"stages": []any{map[string]any{
		"name": "rules2", "rules": stage.Rules, "match": map[string]any{"kinds": []string{"message.received"}},
		"config": map[string]any{"ver": map[string]any{"timeout": "10s"}},
	}}})
	c.must(c.post("/v1/pipeline/reload", string(body)), 200)
	poll.Until(t, 30*time.Second, func() error {
		if !logs.has("rules stage replaced; its watcher stopped stage=rules") {
			return fmt.Errorf("the replaced stage's watcher did not stop")
		}
		return nil
	})
	if rs := c.rules(); len(rs) != 1 || rs[0].Stage != "rules2" || !strings.Contains(rs[0].LoadError, "SyntaxError") {
		t.Fatalf("after the reload GET /v1/rules lists %+v", rs)
	}
	writeRule(t, dir, "ver.js", version("v4"))
	poll.Until(t, 30*time.Second, func() error {
		r, err := c.rule("rules2", "ver")
		if err != nil || r.LoadError != "" || r.Version == v2.Version {
			return fmt.Errorf("rules2 not on the fixed file: %+v %v", r, err)
		}
		return nil
	})
	id = c.inject("hr", `{"from":"+15550009999","id":"HRX4","text":"on the new stage"}`)
	c.waitTags("hr", id, "v4")
}

// TestRuleKVSurvivesRestart: a rule's kv lives in the database; a new
// daemon on the same database (or data_dir: the embedded engine) continues
// where the old one stopped — its sim account connects from its stored
// auth state too.
func TestRuleKVSurvivesRestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testRuleKVSurvivesRestart(t, e) })
}

func testRuleKVSurvivesRestart(t *testing.T, e storetest.Engine) {
	dir := t.TempDir()
	writeRule(t, dir, "count.js", `on("message.received", (msg, ctx) => {
  ctx.annotate("n", ctx.kv.incr("count:" + msg.chatId));
  ctx.annotate("first", ctx.kv.get("first") ?? "unset");
  if (!ctx.kv.get("first")) ctx.kv.set("first", msg.message.text, {ttl: "1h"});
});`)
	cfg := engineConfig(t, e)
	cfg.Pipeline = []pipeline.StageConfig{{Name: "rules", Rules: []string{filepath.Join(dir, "*.js")},
		Match: pipeline.Match{Kinds: []string{"message.received"}}, Timeout: 30 * time.Second,
		Config: map[string]any{"count": map[string]any{"timeout": "10s"}}}}
	d1, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, nil)
	c.connectSim("kv")
	id := c.inject("kv", `{"from":"+15550001111","id":"KV01","text":"hello"}`)
	poll.Until(t, 30*time.Second, func() error {
		if m := c.ruled("kv", id); m.Annotations["n"] != "1" || m.Annotations["first"] != "unset" {
			return fmt.Errorf("annotations %v", m.Annotations)
		}
		return nil
	})
	if err := d1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	_, c2 := accountsDaemonWith(t, cfg, -1, nil, nil)
	// The stored state says connected before the new session is: retry
	// the injection until the session takes it.
	poll.Until(t, 30*time.Second, func() error {
		r := c2.post("/v1/accounts/kv/sim/inbound", `{"from":"+15550001111","id":"KV02","text":"again"}`)
		if r.status != 201 {
			return fmt.Errorf("inject: %d %s", r.status, r.body)
		}
		id = r.json(t)["messageId"].(string)
		return nil
	})
	poll.Until(t, 30*time.Second, func() error {
		if m := c2.ruled("kv", id); m.Annotations["n"] != "2" || m.Annotations["first"] != "hello" {
			return fmt.Errorf("after the restart: annotations %v, want n=2 first=hello", m.Annotations)
		}
		return nil
	})
}

// TestShippedConfigRunsTheExampleRules starts the rules stages of the
// shipped config.yaml from the repository root (its globs are relative to the
// working directory): every shipped rule loads, and a message goes through
// them without an error.
func TestShippedConfigRunsTheExampleRules(t *testing.T) {
	shipped, err := config.Load(config.Source{Path: filepath.Join("..", "..", "config.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := accountsConfig(t)
	// Only its rules stages: the other kinds (plugins) have tests of
	// their own and need more than this test builds.
	for _, st := range shipped.Pipeline {
		if st.Kind() == pipeline.KindRules {
			cfg.Pipeline = append(cfg.Pipeline, st)
		}
	}
	t.Chdir(filepath.Join("..", ".."))
	_, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, nil)
	var names []string
	for _, r := range c.rules() {
		names = append(names, r.Name)
		if r.LoadError != "" || r.Version == "" {
			t.Errorf("shipped rule %+v does not load", r)
		}
	}
	if want := []string{"10-flood-limit", "20-business-hours", "30-keyword-router", "40-group-mention"}; !slices.Equal(names, want) {
		t.Fatalf("shipped config runs %v, want %v", names, want)
	}
	c.connectSim("sh")
	id := c.inject("sh", `{"from":"+15550001111","id":"SH01","text":"my invoice is wrong"}`)
	poll.Until(t, 30*time.Second, func() error {
		m := c.ruled("sh", id)
		if !slices.Contains(m.Tags, "billing") {
			return fmt.Errorf("tags %v, want billing from the keyword router", m.Tags)
		}
		return nil
	})
	for _, r := range c.rules() {
		if r.Errors != 0 || r.Timeouts != 0 {
			t.Errorf("shipped rule %s failed: %+v", r.Name, r)
		}
	}
}

// TestRulesStageConfig: a rules stage's config block holds one block per
// rule; anything else stops the daemon (or a reload) naming the stage. A
// reload that leaves the stage as it was keeps its rules and counters.
func TestRulesStageConfig(t *testing.T) {
	dir := t.TempDir()
	writeRule(t, dir, "greet.js", `on("message.received", (msg, ctx) => ctx.tag(ctx.config.tag));`)
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	bad := accountsConfig(t)
	bad.Pipeline = []pipeline.StageConfig{{Name: "rules", Rules: []string{filepath.Join(dir, "*.js")}, Match: recv,
		Config: map[string]any{"tag": "hello"}}}
	if _, err := daemon.New(bad, daemon.Options{NoSignals: true}); err == nil ||
		!strings.Contains(err.Error(), `pipeline[0] "rules"`) || !strings.Contains(err.Error(), "config.tag: expected the rule's config block") {
		t.Fatalf("a config block not keyed by rule name: %v", err)
	}

	cfg := accountsConfig(t)
	stage := map[string]any{"name": "rules", "rules": []string{filepath.Join(dir, "*.js")}, "match": map[string]any{"kinds": []string{"message.received"}},
		"config": map[string]any{"greet": map[string]any{"tag": "hello"}}}
	cfg.Pipeline = []pipeline.StageConfig{{Name: "rules", Rules: []string{filepath.Join(dir, "*.js")}, Match: recv,
		Config: map[string]any{"greet": map[string]any{"tag": "hello"}}}}
	_, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, nil)
	c.connectSim("cf")
	c.waitTags("cf", c.inject("cf", `{"from":"+15550001111","id":"CF01","text":"hi"}`), "hello")

	r := c.post("/v1/pipeline/reload", `{"stages":[{"name":"rules","rules":["`+filepath.Join(dir, "*.js")+`"],"config":{"greet.js":{"tag":"x"}}}]}`)
	checkProblem(t, r, 400, "stages[0]")
	if !strings.Contains(string(r.body), "key the block by the rule's name") {
		t.Fatalf("reload problem: %s", r.body)
	}
	body, _ := json.Marshal(map[string]any{"stages": []any{stage, map[string]any{"name": "vip", "builtin": "tag", "config": map[string]any{"tag": "vip"}}}})
	c.must(c.post("/v1/pipeline/reload", string(body)), 200)
	if g, err := c.rule("rules", "greet"); err != nil || g.Calls != 1 {
		t.Fatalf("after a reload that kept the stage: %+v %v, want its 1 call kept", g, err)
	}
	c.waitTags("cf", c.inject("cf", `{"from":"+15550001111","id":"CF02","text":"hi again"}`), "hello", "vip")
}

// failedMessage is a stored message with what the pipeline could not do.
type failedMessage struct {
	Tags     []string `json:"tags"`
	Failures []struct {
		Stage    string `json:"stage"`
		Action   string `json:"action"`
		Index    int    `json:"index"`
		Origin   string `json:"origin"`
		Error    string `json:"error"`
		Attempts int    `json:"attempts"`
		At       string `json:"at"`
	} `json:"failures"`
}

// TestRuleActionFailureKeepsTheOtherEffects: a rule tags, replies and
// routes, and its account cannot send. The reply's failure costs the rule
// neither its tag nor its route; it is shown on the message (GET
// …/messages/{id}, failures) and counted in GET /v1/pipeline and
// /metrics; and the stage's onError decides about the event: skip goes on
// with the later stages, deadletter records it and stops it there.
func TestRuleActionFailureKeepsTheOtherEffects(t *testing.T) {
	dir := t.TempDir()
	writeRule(t, dir, "ping.js", `on("message.received", (msg, ctx) => {
  if (msg.message.text !== "ping") return;
  ctx.tag("ping");
  ctx.reply("pong");
  ctx.route("crm");
});`)
	crm, other := &countingSink{}, &countingSink{}
	cfg := accountsConfig(t)
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	rulesFor := func(name string, onError pipeline.OnError, acct string) pipeline.StageConfig {
		return pipeline.StageConfig{Name: name, Rules: []string{filepath.Join(dir, "*.js")}, OnError: onError, Timeout: 30 * time.Second,
			Match: pipeline.Match{Kinds: []string{"message.received"}, Accounts: []string{acct}}}
	}
	cfg.Pipeline = []pipeline.StageConfig{
		rulesFor("rules", pipeline.OnErrorSkip, "fx"),
		rulesFor("strict", pipeline.OnErrorDeadLetter, "st"),
		{Name: "after", Builtin: "tag", Config: map[string]any{"tag": "after"}, Match: recv},
		{Name: "crm", Sink: "crm-webhook", Match: recv},
		{Name: "other", Sink: "other-webhook", Match: recv},
	}
	d, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) {
		o.Sinks = map[string]outbox.Sink{"crm-webhook": crm, "other-webhook": other}
		o.OutboxPoll = 20 * time.Millisecond
	})
	for _, acct := range []string{"fx", "st"} {
		c.connectSim(acct)
		d.Sim().SetFaults(acct, sim.Faults{FailSends: errors.New("network unreachable")})
	}
	const from = `"from":"+15550001111"`

	checkFailure := func(acct, id, stage string) {
		t.Helper()
		var m failedMessage
		if err := json.Unmarshal(c.must(c.get("/v1/accounts/"+acct+"/messages/"+id), 200).body, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Failures) != 1 {
			t.Fatalf("%s's failures %+v, want the reply's", id, m.Failures)
		}
		f := m.Failures[0]
		if f.Stage != stage || f.Action != "reply" || f.Index != 1 || f.Origin != "ping" || f.Attempts != 1 ||
			!strings.Contains(f.Error, "network unreachable") || f.At == "" {
			t.Fatalf("%s's failure %+v: want stage %s, the reply (action 1) of rule ping, network unreachable", id, f, stage)
		}
		if replies := c.page("/v1/accounts/" + acct + "/messages?fromMe=true").Messages; len(replies) != 0 {
			t.Fatalf("%s: replies stored though the account cannot send: %+v", acct, replies)
		}
	}

	// onError skip: tag, route and later stages as if the reply had gone.
	fx := c.inject("fx", `{`+from+`,"id":"FX01","text":"ping"}`)
	c.waitTags("fx", fx, "ping", "after")
	checkFailure("fx", fx, "rules")
	poll.Until(t, 30*time.Second, func() error {
		if n := crm.count("fx:" + fx); n != 1 {
			return fmt.Errorf("crm got FX01 %d times", n)
		}
		return nil
	})

	// onError deadletter: the tag is stored, the event stops at the stage.
	st := c.inject("st", `{`+from+`,"id":"ST01","text":"ping"}`)
	poll.Until(t, 30*time.Second, func() error {
		if ds := c.deliveries("state=deadletter&sink=pipeline:strict"); len(ds) != 1 || ds[0].EventID != "st:"+st ||
			len(ds[0].Log) != 1 || !strings.Contains(ds[0].Log[0].Error, "network unreachable") {
			return fmt.Errorf("dead letters of pipeline:strict %+v", ds)
		}
		return nil
	})
	// The dead letter is stored as the stage gives up; the tags (its own
	// stage's, no later stage's) come with the event's done mark after it.
	c.waitTags("st", st, "ping")
	checkFailure("st", st, "strict")

	// A later message of FX01's chat is the barrier for its deliveries.
	fx2 := c.inject("fx", `{`+from+`,"id":"FX02","text":"hello"}`)
	poll.Until(t, 30*time.Second, func() error {
		if n := other.count("fx:" + fx2); n != 1 {
			return fmt.Errorf("other got FX02 %d times", n)
		}
		return nil
	})
	if n, s := other.count("fx:"+fx), crm.count("st:"+st)+other.count("st:"+st); n != 0 || s != 0 {
		t.Fatalf("other got the routed FX01 %d times, sinks got the dead-lettered ST01 %d times; want 0", n, s)
	}

	for stage, want := range map[string]uint64{"rules": 1, "strict": 1} {
		if s := c.pipelineStage(stage); s.ActionFailures["reply"] != want || s.Errors != 0 || s.Actions["reply"] != want {
			t.Errorf("stage %s %+v: want %d reply failures, no errors", stage, s, want)
		}
	}
	metrics := string(c.must(c.get("/metrics"), 200).body)
	for _, want := range []string{
		`wildcat_pipeline_stage_action_failures_total{action="reply",stage="rules"} 1`,
		`wildcat_pipeline_stage_action_failures_total{action="reply",stage="strict"} 1`,
		`wildcat_pipeline_stage_action_failures_total{action="tag",stage="rules"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("GET /metrics lacks %s", want)
		}
	}
}
