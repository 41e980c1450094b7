package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/sdk/webhooks"
)

func scriptsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "scripts"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRulesTestAllShippedExamples is `make test`'s check of the shipped
// rules, through the real binary.
func TestRulesTestAllShippedExamples(t *testing.T) {
	r := wildcatd(t, nil, "rules", "test", "--all", "--dir", scriptsDir(t))
	if r.code != 0 || !regexp.MustCompile(`(?m)^rules: [1-9][0-9]* passed, 0 failed$`).MatchString(r.stdout) || strings.Contains(r.stdout, "FAIL") {
		t.Fatalf("rules test --all: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, rule := range []string{"10-flood-limit", "20-business-hours", "30-keyword-router", "40-group-mention"} {
		if !strings.Contains(r.stdout, rule+".test.json") {
			t.Errorf("no cases of %s ran:\n%s", rule, r.stdout)
		}
	}
}

func TestRulesTestOne(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ev := write("event.json", `{"kind": "message.received", "accountId": "acme", "chatId": "15550002222@s.whatsapp.net",
		"message": {"messageId": "3EB0A1", "from": "15550002222@s.whatsapp.net", "type": "text", "text": "hi"}}`)
	rule := filepath.Join(scriptsDir(t), "20-business-hours.js")

	r := wildcatd(t, nil, "rules", "test", rule, "--event", ev, "--now", "2026-01-07T21:00:00+01:00")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var effects []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &effects); err != nil || len(effects) != 2 || effects[0]["kind"] != "reply" {
		t.Fatalf("printed %q (%v)", r.stdout, err)
	}
	cfg := write("config.json", `{"hours": "daily 00:00-24:00"}`)
	if r := wildcatd(t, nil, "rules", "test", rule, "--event", ev, "--config", cfg); r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("with config: %+v", r)
	}

	// A throwing rule: exit 1, the error with file:line on stderr.
	bad := write("bad.js", "on(\"message.received\", (msg, ctx) => {\n  ctx.kv.incr(msg.nothing.here);\n});\n")
	if r := wildcatd(t, nil, "rules", "test", bad, "--event", ev); r.code != 1 || !strings.Contains(r.stderr, "bad.js:2:") {
		t.Fatalf("throwing rule: %+v", r)
	}

	for _, args := range [][]string{
		{"rules"},
		{"rules", "run"},
		{"rules", "test"},
		{"rules", "test", rule},
		{"rules", "test", rule, "--event", write("broken.json", "{")},
		{"rules", "test", rule, "--event", ev, "--now", "tomorrow"},
		{"rules", "test", "--all", rule},
		{"rules", "test", "--all", "--dir", filepath.Join(dir, "missing")},
	} {
		if r := wildcatd(t, nil, args...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, r.code, r.stderr)
		}
	}
	if r := wildcatd(t, nil, "help", "rules"); r.code != 0 || !strings.Contains(r.stdout, "--all") {
		t.Errorf("help rules: %+v", r)
	}
}

func TestRulesTestAllReportsMismatch(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(scriptsDir(t), "30-keyword-router.js"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "router.js"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "cases")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "router.test.json"), []byte(`{"name": "wrong sink", "rule": "../router.js",
	  "event": {"kind": "message.received", "chatId": "1@s.whatsapp.net", "message": {"messageId": "A", "from": "1@s.whatsapp.net", "type": "text", "text": "invoice"}},
	  "expect": [{"kind": "tag", "tags": ["billing"]}, {"kind": "route", "sinks": ["accounting"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := wildcatd(t, nil, "rules", "test", "--all", "--dir", dir)
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, `-       "accounting"`) || !strings.Contains(r.stdout, `+       "billing-webhook"`) {
		t.Fatalf("mismatch: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A misspelt key is a bad file, not a vacuous pass.
	if err := os.WriteFile(filepath.Join(sub, "router.test.json"), []byte(`{"rule": "../router.js", "event": {"kind": "message.received", "chatId": "1@s.whatsapp.net", "message": {"messageId": "A", "from": "x", "type": "text"}}, "expected": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := wildcatd(t, nil, "rules", "test", "--all", "--dir", dir); r.code != 2 || !strings.Contains(r.stderr, `unknown field "expected"`) {
		t.Fatalf("misspelt key: %+v", r)
	}
}

// TestRulesTestAcceptsTheWebhookBody feeds `rules test --event` the body a
// webhook receives ({"type","timestamp","data"}, rendered by the webhook
// code itself) as well as the bare event: both give the same actions.
func TestRulesTestAcceptsTheWebhookBody(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, body []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ev := &event.Event{
		ID: event.MessageEventID("acme", "3EB0A1"), Kind: event.KindMessageReceived, AccountID: "acme",
		ChatID: "15550002222@s.whatsapp.net", Source: event.SourcePhone,
		Timestamp: time.Date(2026, 1, 7, 20, 0, 0, 0, time.UTC),
		Message: &event.Message{AccountID: "acme", ChatID: "15550002222@s.whatsapp.net", MessageID: "3EB0A1",
			From: "15550002222@s.whatsapp.net", Type: event.TypeText, Text: "hi", Timestamp: 1767816000},
	}
	body, err := webhooks.Render(ev)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	rule := filepath.Join(scriptsDir(t), "20-business-hours.js")
	run := func(path string) string {
		t.Helper()
		r := wildcatd(t, nil, "rules", "test", rule, "--event", path, "--now", "2026-01-07T21:00:00+01:00")
		if r.code != 0 {
			t.Fatalf("--event %s: exit %d: %s", filepath.Base(path), r.code, r.stderr)
		}
		var effects []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &effects); err != nil || len(effects) != 2 || effects[0]["kind"] != "reply" {
			t.Fatalf("--event %s: printed %q (%v)", filepath.Base(path), r.stdout, err)
		}
		return r.stdout
	}
	fromWebhook := run(write("webhook.json", body))
	if fromBare := run(write("bare.json", bare)); fromWebhook != fromBare {
		t.Errorf("the webhook body and the bare event differ:\n%s\n%s", fromWebhook, fromBare)
	}

	// The envelope's type names the kind when data leaves it out; a
	// contradiction, or a data that is no event, is a bad file (exit 2).
	if r := wildcatd(t, nil, "rules", "test", rule, "--now", "2026-01-07T21:00:00+01:00", "--event", write("typed.json", []byte(
		`{"type":"message.received","data":{"accountId":"acme","chatId":"15550002222@s.whatsapp.net",
		  "message":{"messageId":"3EB0A2","from":"15550002222@s.whatsapp.net","type":"text","text":"hi"}}}`))); r.code != 0 {
		t.Errorf("envelope without data.kind: exit %d: %s", r.code, r.stderr)
	}
	for name, body := range map[string]string{
		"contradiction.json": `{"type":"message.status","data":` + string(bare) + `}`,
		"nulldata.json":      `{"type":"message.received","data":null}`,
		"listdata.json":      `{"type":"message.received","data":[]}`,
	} {
		if r := wildcatd(t, nil, "rules", "test", rule, "--event", write(name, []byte(body))); r.code != 2 || !strings.Contains(r.stderr, name) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a message naming the file", name, r.code, r.stderr)
		}
	}
}

// TestReadmeRulesTestExample runs the `rules test` command lines of the
// README's Commands section from the repository root, as pasted: the event
// file they name exists and the rule answers it.
func TestReadmeRulesTestExample(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, commands, ok := strings.Cut(string(readme), "\n## Commands\n")
	if !ok {
		t.Fatal("README has no Commands section")
	}
	commands, _, _ = strings.Cut(commands, "\n## ")
	// "$ wildcatd rules test … --event …", then what it prints up to the
	// end of the code block.
	examples := regexp.MustCompile("(?m)^\\$ wildcatd (rules test .*--event .*)\n((?s:.*?))^```$").FindAllStringSubmatch(commands, -1)
	if len(examples) == 0 {
		t.Fatal("the README's Commands section shows no `$ wildcatd rules test … --event …` example")
	}
	for _, ex := range examples {
		cmd := exec.Command(binary, strings.Fields(ex[1])...)
		cmd.Dir = root
		cmd.Env = cleanEnv()
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("wildcatd %s: %v\n%s", ex[1], err, out)
			continue
		}
		var effects []map[string]any
		if err := json.Unmarshal(out, &effects); err != nil || len(effects) == 0 {
			t.Errorf("wildcatd %s: printed %q (%v); the example should show the rule acting", ex[1], out, err)
		}
		if string(out) != ex[2] {
			t.Errorf("wildcatd %s printed\n%s\nthe README shows\n%s", ex[1], out, ex[2])
		}
	}
}
