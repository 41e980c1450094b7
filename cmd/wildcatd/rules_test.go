package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
