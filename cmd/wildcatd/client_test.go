package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/sdk/wildcat"
)

var (
	webhookPluginOnce sync.Once
	webhookPlugin     string
	webhookPluginErr  error
)

// buildWebhookPlugin builds plugins/webhook once for the tests that
// deliver webhooks.
func buildWebhookPlugin(t *testing.T) string {
	t.Helper()
	webhookPluginOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wildcat-webhook-plugin-")
		if err != nil {
			webhookPluginErr = err
			return
		}
		webhookPlugin = filepath.Join(dir, "webhook")
		if out, err := exec.Command("go", "build", "-o", webhookPlugin, "../../plugins/webhook").CombinedOutput(); err != nil {
			webhookPluginErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if webhookPluginErr != nil {
		t.Fatal(webhookPluginErr)
	}
	return webhookPlugin
}

// failingSink is an outbox sink whose deliveries fail while failing is set.
type failingSink struct{ failing atomic.Bool }

func (s *failingSink) Deliver(ctx context.Context, job *outbox.Job) outbox.Result {
	if s.failing.Load() {
		r := outbox.Fail(errors.New("crm answered 500"))
		r.Status = http.StatusInternalServerError
		return r
	}
	return outbox.OK()
}

// cliDaemon is a daemon core in this process for the client commands: the
// sim account demo connected, the account idle never paired (its phone
// scans only when the test says so), the webhook plugin, and an outbox
// sink "crm" fed with every received message.
type cliDaemon struct {
	d    *daemon.Daemon
	base string
	sink *failingSink
	c    *wildcat.Client
}

func startCLIDaemon(t *testing.T, mods ...func(*config.Config)) *cliDaemon {
	t.Helper()
	cfg := config.Defaults()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.HTTP.AdminKey = apikeystest.AdminToken
	cfg.Webhooks.AllowPrivateTargets = true
	cfg.Plugins = map[string]config.Plugin{"webhook": {Path: buildWebhookPlugin(t)}}
	cfg.Accounts = []config.Account{{ID: "demo", Driver: "sim", Name: "Demo"}, {ID: "idle", Driver: "sim"}}
	cfg.Pipeline = append(cfg.Pipeline, pipeline.StageConfig{Name: "crm", Sink: "crm", Match: pipeline.Match{Kinds: []string{"message.received"}}})
	for _, mod := range mods {
		mod(&cfg)
	}
	sink := &failingSink{}
	d, err := daemon.New(cfg, daemon.Options{NoSignals: true, Sinks: map[string]outbox.Sink{"crm": sink},
		Sim: sim.Options{PairDelay: -1, QRInterval: 100 * time.Millisecond, DeliveredDelay: time.Millisecond, ReadDelay: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	cd := &cliDaemon{d: d, base: "http://" + d.Addr(), sink: sink}
	cd.c, err = wildcat.New(cd.base, wildcat.WithKey(apikeystest.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	cd.waitState(t, "demo", wildcat.StatePairing)
	if err := d.Sim().Scan("demo"); err != nil {
		t.Fatal(err)
	}
	cd.waitState(t, "demo", wildcat.StateConnected)
	return cd
}

func (cd *cliDaemon) waitState(t *testing.T, id, state string) {
	t.Helper()
	poll.Until(t, time.Minute, func() error {
		a, err := cd.c.Account(t.Context(), id)
		if err != nil || a.State != state {
			return fmt.Errorf("account %s: %+v %v, want %s", id, a, err, state)
		}
		return nil
	})
}

// cli runs a client command against the daemon, with JSON output.
func (cd *cliDaemon) cli(t *testing.T, args ...string) result {
	t.Helper()
	return wildcatd(t, nil, append(args, "--api", cd.base, "-o", "json")...)
}

// ok runs a command that must succeed and decodes its JSON output into v.
func (cd *cliDaemon) ok(t *testing.T, v any, args ...string) {
	t.Helper()
	r := cd.cli(t, args...)
	if r.code != 0 {
		t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			t.Fatalf("%v: output is not JSON: %v\n%s", args, err, r.stdout)
		}
	}
}

func TestCLIAccounts(t *testing.T) {
	cd := startCLIDaemon(t)
	var a wildcat.Account
	cd.ok(t, &a, "accounts", "create", "shop", "--driver", "sim", "--name", "Shop")
	if a.ID != "shop" || a.State != wildcat.StateCreated || a.Name != "Shop" {
		t.Fatalf("create: %+v", a)
	}
	var list []wildcat.Account
	cd.ok(t, &list, "accounts", "list")
	if len(list) != 3 || !hasAccount(list, "shop") || !hasAccount(list, "demo") {
		t.Fatalf("list: %+v", list)
	}
	cd.ok(t, &a, "accounts", "connect", "shop")
	cd.waitState(t, "shop", wildcat.StatePairing)
	if err := cd.d.Sim().Scan("shop"); err != nil {
		t.Fatal(err)
	}
	cd.waitState(t, "shop", wildcat.StateConnected)
	cd.ok(t, &a, "accounts", "get", "shop")
	if a.State != wildcat.StateConnected || a.JID != sim.JID("shop").String() {
		t.Fatalf("get: %+v", a)
	}
	cd.ok(t, &a, "accounts", "logout", "shop")
	if a.State != wildcat.StateLoggedOut {
		t.Fatalf("logout: %+v", a)
	}
	cd.ok(t, nil, "accounts", "delete", "shop", "--purge")
	if _, err := cd.c.Account(t.Context(), "shop"); !errors.Is(err, wildcat.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// The table form, as a person sees it.
	r := wildcatd(t, nil, "accounts", "list", "--api", cd.base, "-o", "table")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ID ") || !strings.Contains(r.stdout, "demo") || !strings.Contains(r.stdout, "connected") {
		t.Fatalf("table: %+v", r)
	}
}

func hasAccount(list []wildcat.Account, id string) bool {
	for _, a := range list {
		if a.ID == id {
			return true
		}
	}
	return false
}

// TestCLIPairWithCode: --phone prints a pairing code instead of a QR code
// and waits until the phone has typed it.
func TestCLIPairWithCode(t *testing.T) {
	cd := startCLIDaemon(t)
	cmd := exec.Command(binary, "accounts", "pair", "idle", "--phone", "+15550001111", "--api", cd.base, "--interval", "20ms", "--timeout", "2m")
	cmd.Env = cleanEnv()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	poll.Until(t, time.Minute, func() error {
		if !strings.Contains(stdout.String(), "Pairing code: ") {
			return fmt.Errorf("no pairing code yet:\n%s%s", stdout, stderr)
		}
		return nil
	})
	if strings.ContainsAny(stdout.String(), "▀▄█") {
		t.Fatalf("a QR code was drawn with --phone:\n%s", stdout)
	}
	if err := cd.d.Sim().Scan("idle"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("pair: %v; stderr %s", err, stderr)
	}
	if !strings.Contains(stdout.String(), "Connected as ") {
		t.Fatalf("output:\n%s", stdout)
	}
}

func TestCLISendAndMessages(t *testing.T) {
	cd := startCLIDaemon(t)
	ctx := t.Context()
	for i := range 5 {
		if _, err := cd.c.SimulateInbound(ctx, "demo", wildcat.SimInbound{From: "+15551230000", ID: fmt.Sprintf("IN%03d", i), Text: fmt.Sprintf("hello %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var acc wildcat.SendAccepted
	cd.ok(t, &acc, "send", "demo", "+15551230000", "about", "IN003", "--reply-to", "IN003")
	if acc.MessageID == "" || acc.Status != "pending" || acc.ScheduledAt.IsZero() {
		t.Fatalf("send: %+v", acc)
	}
	img := filepath.Join(t.TempDir(), "parcel.png")
	if err := os.WriteFile(img, []byte("\x89PNG\r\n\x1a\nfake"), 0o600); err != nil {
		t.Fatal(err)
	}
	var media wildcat.SendAccepted
	cd.ok(t, &media, "send", "demo", "+15551230000", "your", "parcel", "--media", img)
	poll.Until(t, time.Minute, func() error {
		var m wildcat.Message
		r := cd.cli(t, "messages", "get", "demo", acc.MessageID)
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &m) != nil || m.Status != "read" || m.Quoted == nil || m.Quoted.MessageID != "IN003" || m.Text != "about IN003" {
			return fmt.Errorf("reply: %+v", r)
		}
		return nil
	})
	var m wildcat.Message
	cd.ok(t, &m, "messages", "get", "demo", media.MessageID)
	if m.Type != "image" || !m.HasMedia {
		t.Fatalf("media message: %+v", m)
	}

	// Paging: two per page, the cursor of one page gets the next.
	type page struct {
		Messages   []wildcat.Message `json:"messages"`
		NextCursor *string           `json:"nextCursor"`
	}
	var got []string
	args := []string{"messages", "list", "demo", "--chat", "+15551230000", "--limit", "3"}
	for pages := 0; ; pages++ {
		var p page
		cd.ok(t, &p, args...)
		for _, m := range p.Messages {
			got = append(got, m.MessageID)
		}
		if p.NextCursor == nil {
			break
		}
		if pages > 10 {
			t.Fatal("paging never ends")
		}
		args = []string{"messages", "list", "demo", "--chat", "+15551230000", "--limit", "3", "--cursor", *p.NextCursor}
	}
	seen := map[string]bool{}
	for _, id := range got {
		seen[id] = true
	}
	if len(got) != 7 || len(seen) != 7 || !seen["IN000"] || !seen["IN004"] || !seen[acc.MessageID] || !seen[media.MessageID] {
		t.Fatalf("pages: %v", got)
	}
	var all page
	cd.ok(t, &all, "messages", "list", "demo", "--limit", "2", "--all", "--q", "HELLO")
	if len(all.Messages) != 5 || all.NextCursor != nil || all.Messages[0].MessageID != "IN004" {
		t.Fatalf("--all: %+v", all)
	}
	// In a table, the cursor of the next page goes to stderr.
	r := wildcatd(t, nil, "messages", "list", "demo", "--limit", "2", "--api", cd.base, "-o", "table")
	if r.code != 0 || !strings.Contains(r.stdout, "TEXT") || !strings.Contains(r.stderr, "more: --cursor ") {
		t.Fatalf("table: %+v", r)
	}
}

// TestCLIMessagesFollow tails an account: the latest messages first, then
// new ones as they arrive.
func TestCLIMessagesFollow(t *testing.T) {
	cd := startCLIDaemon(t)
	ctx := t.Context()
	if _, err := cd.c.SimulateInbound(ctx, "demo", wildcat.SimInbound{From: "+15554440000", Text: "before the tail"}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "messages", "list", "demo", "--follow", "--api", cd.base, "-o", "json")
	cmd.Env = cleanEnv()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	poll.Until(t, time.Minute, func() error {
		if !strings.Contains(stdout.String(), "before the tail") {
			return fmt.Errorf("no history yet: %s %s", stdout, stderr)
		}
		return nil
	})
	if _, err := cd.c.SimulateInbound(ctx, "demo", wildcat.SimInbound{From: "+15554440000", Text: "while tailing"}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, func() error {
		if !strings.Contains(stdout.String(), "while tailing") {
			return fmt.Errorf("the new message is not tailed: %s %s", stdout, stderr)
		}
		return nil
	})
	// One JSON object per line.
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var m wildcat.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.AccountID != "demo" {
			t.Fatalf("line %q: %v", line, err)
		}
	}
	// Ctrl-C ends it cleanly.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after Ctrl-C: %v; stderr %s", err, stderr)
	}
}

func TestCLIDeliveries(t *testing.T) {
	cd := startCLIDaemon(t)
	cd.sink.failing.Store(true)
	in, err := cd.c.SimulateInbound(t.Context(), "demo", wildcat.SimInbound{From: "+15559990000", Text: "deliver me"})
	if err != nil {
		t.Fatal(err)
	}
	type page struct {
		Deliveries []wildcat.Delivery `json:"deliveries"`
	}
	var dead page
	poll.Until(t, time.Minute, func() error {
		dead = page{}
		r := cd.cli(t, "deliveries", "list", "--state", "deadletter", "--sink", "crm")
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &dead) != nil || len(dead.Deliveries) != 1 {
			return fmt.Errorf("%+v", r)
		}
		return nil
	})
	job := dead.Deliveries[0]
	if job.EventID != in.EventID || job.Log[0].Status != 500 {
		t.Fatalf("dead letter: %+v", job)
	}
	// The message's trace names the job its sink stage made.
	var tr wildcat.MessageTrace
	cd.ok(t, &tr, "messages", "trace", "demo", in.MessageID)
	if len(tr.Deliveries) != 1 || tr.Deliveries[0].ID != job.ID {
		t.Fatalf("trace: %+v", tr)
	}
	if r := wildcatd(t, nil, "messages", "trace", "demo", in.MessageID, "--api", cd.base, "-o", "table"); r.code != 0 || !strings.Contains(r.stdout, "to crm") || !strings.Contains(r.stdout, job.ID) {
		t.Fatalf("trace table: %+v", r)
	}
	var d wildcat.Delivery
	cd.ok(t, &d, "deliveries", "get", job.ID)
	if d.ID != job.ID || d.State != wildcat.DeliveryDeadLetter {
		t.Fatalf("get: %+v", d)
	}
	cd.sink.failing.Store(false)
	var replayed struct{ Count int }
	cd.ok(t, &replayed, "deliveries", "replay", "--sink", "crm")
	if replayed.Count != 1 {
		t.Fatalf("replay: %+v", replayed)
	}
	poll.Until(t, time.Minute, func() error {
		d, err := cd.c.Delivery(t.Context(), job.ID)
		if err != nil || d.State != wildcat.DeliveryDone {
			return fmt.Errorf("%+v %v", d, err)
		}
		return nil
	})
	// retry queues a done job once more: another attempt is logged.
	done, err := cd.c.Delivery(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	cd.ok(t, &d, "deliveries", "retry", job.ID)
	if d.ID != job.ID {
		t.Fatalf("retry: %+v", d)
	}
	poll.Until(t, time.Minute, func() error {
		d, err := cd.c.Delivery(t.Context(), job.ID)
		if err != nil || d.State != wildcat.DeliveryDone || len(d.Log) <= len(done.Log) {
			return fmt.Errorf("after retry: %+v %v", d, err)
		}
		return nil
	})
}

func TestCLIWebhooks(t *testing.T) {
	cd := startCLIDaemon(t)
	var hits atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, `{"received":true}`)
	}))
	defer recv.Close()
	var w wildcat.Webhook
	cd.ok(t, &w, "webhooks", "create", "--id", "crm", "--url", recv.URL+"/hook", "--event", "message.received,message.status", "--header", "X-Api-Key=k1")
	if w.ID != "crm" || !strings.HasPrefix(w.Secret, "whsec_") || len(w.Events) != 2 || w.Headers["X-Api-Key"] != "k1" {
		t.Fatalf("create: %+v", w)
	}
	var list []wildcat.Webhook
	cd.ok(t, &list, "webhooks", "list")
	if len(list) != 1 || list[0].ID != "crm" || list[0].Secret != "" {
		t.Fatalf("list: %+v", list)
	}
	var rot wildcat.Webhook
	cd.ok(t, &rot, "webhooks", "rotate", "crm")
	if rot.Secret == "" || rot.Secret == w.Secret {
		t.Fatalf("rotate: %+v", rot)
	}
	var at wildcat.WebhookAttempt
	cd.ok(t, &at, "webhooks", "test", "crm")
	if at.Result != "ok" || at.Status != 200 || hits.Load() != 1 {
		t.Fatalf("test: %+v, %d hits", at, hits.Load())
	}
	// A failing endpoint: the test exits 1 and says so.
	cd.ok(t, nil, "webhooks", "create", "--id", "down", "--url", "http://"+storetest.FreeAddr(t)+"/hook")
	if r := cd.cli(t, "webhooks", "test", "down"); r.code != 1 || !strings.Contains(r.stderr, "not accepted") {
		t.Fatalf("test a dead endpoint: %+v", r)
	}
	cd.ok(t, nil, "webhooks", "delete", "crm")
	cd.ok(t, &w, "webhooks", "get", "down")
}

func TestCLIKeys(t *testing.T) {
	cd := startCLIDaemon(t)
	var k wildcat.Key
	cd.ok(t, &k, "keys", "create", "--id", "reader", "--name", "Reader", "--scope", "accounts:read", "--account", "demo", "--expires", "720h")
	if !strings.HasPrefix(k.Token, "wck_") || k.ExpiresAt == nil || len(k.Accounts) != 1 {
		t.Fatalf("create: %+v", k)
	}
	// The new key works for what it may do, and only that (exit 4).
	if r := wildcatd(t, nil, "accounts", "list", "--api", cd.base, "--key", k.Token, "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, "demo") {
		t.Fatalf("list with the reader key: %+v", r)
	}
	if r := wildcatd(t, nil, "keys", "list", "--api", cd.base, "--key", k.Token); r.code != 4 || !strings.Contains(r.stderr, "--key") {
		t.Fatalf("keys list with the reader key: %+v, want exit 4", r)
	}
	var list []wildcat.Key
	cd.ok(t, &list, "keys", "list")
	if len(list) < 2 {
		t.Fatalf("list: %+v", list)
	}
	var rot wildcat.Key
	cd.ok(t, &rot, "keys", "rotate", "reader")
	if rot.Token == "" || rot.Token == k.Token {
		t.Fatalf("rotate: %+v", rot)
	}
	cd.ok(t, nil, "keys", "revoke", "reader")
	if r := wildcatd(t, nil, "accounts", "list", "--api", cd.base, "--key", rot.Token); r.code != 4 {
		t.Fatalf("a revoked key: %+v, want exit 4", r)
	}
}

// TestCLIStatus: plugins status shows the webhook plugin; rules status
// shows the loaded rules, and exits 1 naming file and line once a rule
// fails to load.
func TestCLIStatus(t *testing.T) {
	rulesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(rulesDir, "10-tag.js"), []byte("on(\"message.received\", (msg, ctx) => ctx.tag(\"seen\"));\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cd := startCLIDaemon(t, func(cfg *config.Config) {
		cfg.Pipeline = append([]pipeline.StageConfig{{Name: "rules", Rules: []string{filepath.Join(rulesDir, "*.js")}}}, cfg.Pipeline...)
	})
	var plugins []wildcat.Plugin
	cd.ok(t, &plugins, "plugins", "status")
	if len(plugins) != 1 || plugins[0].Name != "webhook" || plugins[0].State == "" {
		t.Fatalf("plugins: %+v", plugins)
	}
	var rules []wildcat.Rule
	cd.ok(t, &rules, "rules", "status")
	if len(rules) != 1 || rules[0].Name != "10-tag" || rules[0].Version == "" || rules[0].LoadError != "" {
		t.Fatalf("rules: %+v", rules)
	}
	if r := wildcatd(t, nil, "plugins", "status", "--api", cd.base, "-o", "table"); r.code != 0 || !strings.Contains(r.stdout, "webhook") {
		t.Fatalf("plugins table: %+v", r)
	}
	// A broken rule: reloaded from the file, reported with its line.
	if err := os.WriteFile(filepath.Join(rulesDir, "20-broken.js"), []byte("on(\"message.received\", (msg) => {\n  return msg.;\n});\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, func() error {
		r := wildcatd(t, nil, "rules", "status", "--api", cd.base, "-o", "table")
		if r.code != 1 || !strings.Contains(r.stderr, "20-broken") || !strings.Contains(r.stdout, "20-broken.js:2") {
			return fmt.Errorf("%+v", r)
		}
		return nil
	})
}

// TestCLIBadInput: every kind of wrong use ends with one clear line on
// stderr and the documented exit code.
func TestCLIBadInput(t *testing.T) {
	cd := startCLIDaemon(t)
	if _, err := cd.c.CreateWebhook(t.Context(), wildcat.WebhookInput{ID: wildcat.Ptr("dup"), URL: wildcat.Ptr("http://127.0.0.1:9/x")}); err != nil {
		t.Fatal(err)
	}
	noDaemon := "http://" + storetest.FreeAddr(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", []string{"webhooks"}, 2, "expected a command"},
		{"unknown command", []string{"accounts", "frob"}, 2, `unknown command "frob"`},
		{"missing argument", []string{"accounts", "get"}, 2, "expected ID"},
		{"extra argument", []string{"accounts", "get", "a", "b"}, 2, `extra argument "b"`},
		{"unknown flag", []string{"accounts", "list", "--colour"}, 2, "unknown flag: --colour"},
		{"bad output", []string{"accounts", "list", "-o", "yaml"}, 2, "--output"},
		{"bad api", []string{"accounts", "list", "--api", "ftp://x"}, 2, "not an http(s) URL"},
		{"nothing to send", []string{"send", "demo", "+15551230000"}, 2, "nothing to send"},
		{"missing media file", []string{"send", "demo", "+1555", "--media", "/nonexistent/x.png"}, 2, "--media"},
		{"bad recipient", []string{"send", "demo", "not-a-number", "hi"}, 2, "to"},
		{"bad time", []string{"messages", "list", "demo", "--since", "yesterday"}, 2, "RFC 3339"},
		{"bad limit", []string{"messages", "list", "demo", "--limit", "0"}, 2, "--limit"},
		{"follow with cursor", []string{"messages", "list", "demo", "--follow", "--cursor", "x"}, 2, "--follow"},
		{"webhook without url", []string{"webhooks", "create"}, 2, "--url is required"},
		{"bad header", []string{"webhooks", "create", "--url", "http://127.0.0.1:9/", "--header", "nope"}, 2, "NAME=VALUE"},
		{"key without scope", []string{"keys", "create", "--name", "x"}, 2, "--scope"},
		{"bad delivery state", []string{"deliveries", "list", "--state", "bogus"}, 2, "state"},
		{"unknown account", []string{"accounts", "get", "nobody"}, 3, `account "nobody": account not found`},
		{"send from an unknown account", []string{"send", "nobody", "+15551230000", "hi"}, 3, "nobody"},
		{"messages of an unknown account", []string{"messages", "list", "nobody"}, 3, "nobody"},
		{"follow an unknown account", []string{"messages", "list", "nobody", "--follow"}, 3, "nobody"},
		{"unknown message", []string{"messages", "get", "demo", "NOPE"}, 3, "NOPE"},
		{"trace of an unknown message", []string{"messages", "trace", "demo", "NOPE"}, 3, "NOPE"},
		{"unknown delivery", []string{"deliveries", "get", "nope"}, 3, "nope"},
		{"unknown webhook", []string{"webhooks", "rotate", "nope"}, 3, "nope"},
		{"unknown key", []string{"keys", "revoke", "nope"}, 3, "nope"},
		{"pair an unknown account", []string{"accounts", "pair", "nobody"}, 3, "not found"},
		{"account exists", []string{"accounts", "create", "demo", "--driver", "sim"}, 5, "demo"},
		{"webhook exists", []string{"webhooks", "create", "--id", "dup", "--url", "http://127.0.0.1:9/y"}, 5, "dup"},
		{"wrong key", []string{"accounts", "list", "--key", "wck_nobody_00000000000000000000000000000000"}, 4, "--key"},
		{"no daemon", []string{"accounts", "list", "--api", noDaemon}, 1, "cannot reach the daemon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !strings.Contains(strings.Join(args, " "), "--api") {
				args = append(args, "--api", cd.base)
			}
			r := wildcatd(t, nil, args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", r.code, r.stdout, r.stderr, tt.code, tt.want)
			}
		})
	}
}

// TestCLIHelp: every client command documents itself, with its flags.
func TestCLIHelp(t *testing.T) {
	for _, cmd := range clientCommands {
		args := []string{cmd.group}
		if cmd.name != "" {
			args = append(args, cmd.name)
		}
		r := wildcatd(t, nil, append(args, "--help")...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: wildcatd "+strings.Join(args, " ")) || !strings.Contains(r.stdout, "--api") ||
			!strings.Contains(r.stdout, "Exit status") || !strings.Contains(r.stdout, cmd.summary) {
			t.Errorf("%v --help: %+v", args, r)
		}
	}
	for _, g := range clientGroups {
		r := wildcatd(t, nil, "help", g.name)
		if r.code != 0 || !strings.Contains(r.stdout, "wildcatd "+g.name) {
			t.Errorf("help %s: %+v", g.name, r)
		}
		if r := wildcatd(t, nil, "--help"); !strings.Contains(r.stdout, "wildcatd "+g.name) {
			t.Errorf("--help does not mention %s", g.name)
		}
	}
}

// TestCLIAPIFromConfig: without --api, the commands find the daemon at
// http.addr of the configuration, and its key in its data_dir.
func TestCLIAPIFromConfig(t *testing.T) {
	cd := startCLIDaemon(t)
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "admin.key"), []byte(apikeystest.AdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf("data_dir: %s\nhttp:\n  addr: %s\n", dataDir, strings.TrimPrefix(cd.base, "http://")))
	r := wildcatd(t, []string{"WILDCAT_API_KEY="}, "accounts", "list", "--config", cfg, "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"demo"`) {
		t.Fatalf("with --config: %+v", r)
	}
	r = wildcatd(t, []string{"WILDCAT_API=" + cd.base}, "accounts", "get", "demo", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"demo"`) {
		t.Fatalf("with WILDCAT_API: %+v", r)
	}
	if r := wildcatd(t, nil, "accounts", "list", "--config", "/nonexistent/config.yaml"); r.code != 2 || !strings.Contains(r.stderr, "/nonexistent/config.yaml") {
		t.Fatalf("a missing --config: %+v", r)
	}
}

func TestAPIURL(t *testing.T) {
	for _, tt := range []struct {
		addr string
		tls  bool
		want string
	}{
		{"127.0.0.1:8080", false, "http://127.0.0.1:8080"},
		{":8080", false, "http://127.0.0.1:8080"},
		{"0.0.0.0:9000", true, "https://127.0.0.1:9000"},
		{"[::]:8080", false, "http://[::1]:8080"},
		{"wildcat.internal:443", true, "https://wildcat.internal:443"},
	} {
		if got := apiURL(tt.addr, tt.tls); got != tt.want {
			t.Errorf("apiURL(%q, %v) = %q, want %q", tt.addr, tt.tls, got, tt.want)
		}
	}
}
