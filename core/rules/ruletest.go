package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// This file is rule development without a phone: run one rule on one event
// with no side effects (`wildcatd rules test`), and the *.test.json cases
// admins keep next to their rules.

// DryRunOptions are the world a dry run sees.
type DryRunOptions struct {
	// Config is the rule's config block.
	Config map[string]any
	// Now fixes the clock; zero means the real time.
	Now time.Time
	// KV presets the rule's kv namespace (key → JSON value).
	KV map[string]json.RawMessage
	// Self is the account's own JIDs (ctx.self().jids).
	Self []string
	// Group is what ctx.group() answers for the event's group chat.
	Group *event.GroupInfo
}

// DryRun runs the rule in file on ev: kv in memory, http.fetch disabled,
// nothing sent. It returns the effects the rule asked for, and its error
// (a load error, a throw, a timeout) if any.
func DryRun(ctx context.Context, file string, ev *event.Event, o DryRunOptions) ([]Effect, error) {
	now := time.Now
	if !o.Now.IsZero() {
		now = func() time.Time { return o.Now }
	}
	name := ruleName(file)
	kv := NewMemoryKV(now)
	for k, v := range o.KV {
		if err := kv.Set(ctx, name, k, v, 0); err != nil {
			return nil, fmt.Errorf("kv preset %q: %w", k, err)
		}
	}
	e := New(Options{
		Globs:  []string{globEscape(file)},
		Config: map[string]map[string]any{name: o.Config},
		KV:     kv,
		DryRun: true,
		Now:    now,
		Self:   func(string) []string { return o.Self },
		Group: func(_ context.Context, _, jid string) (*event.GroupInfo, error) {
			if o.Group == nil || o.Group.JID != jid {
				return nil, fmt.Errorf("group %s: not in this test (set its \"group\")", jid)
			}
			return o.Group, nil
		},
	})
	if err := e.Reload(); err != nil {
		return nil, err
	}
	if len(e.Status()) == 0 {
		return nil, fmt.Errorf("%s: no such rule file (a .js file)", file)
	}
	return e.Handle(ctx, ev, nil)
}

func globEscape(path string) string {
	var b strings.Builder
	for _, r := range path {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// PrepareEvent fills what a hand-written test event may leave out (id,
// account, source, timestamp, chatId from the message) and validates it.
func PrepareEvent(ev *event.Event) error {
	if ev.ID == "" {
		ev.ID = "test:event"
	}
	if ev.Kind == "" && ev.Message != nil {
		ev.Kind = event.KindMessageReceived
	}
	if ev.AccountID == "" {
		ev.AccountID = "test"
		if ev.Message != nil && ev.Message.AccountID != "" {
			ev.AccountID = ev.Message.AccountID
		}
	}
	if ev.Source == "" {
		ev.Source = event.SourcePhone
	}
	if ev.Timestamp.IsZero() && ev.Message != nil && ev.Message.Timestamp > 0 {
		ev.Timestamp = time.Unix(ev.Message.Timestamp, 0).UTC()
	}
	if ev.Message != nil {
		if ev.ChatID == "" {
			ev.ChatID = ev.Message.ChatID
		}
		if ev.Message.ChatID == "" {
			ev.Message.ChatID = ev.ChatID
		}
		if ev.Message.AccountID == "" {
			ev.Message.AccountID = ev.AccountID
		}
	}
	return ev.Validate()
}

// TestCase is one case of a *.test.json file. A file holds one case or a
// list of them.
type TestCase struct {
	Name string `json:"name,omitempty"`
	// Rule is the rule file, relative to the test file's directory.
	Rule   string         `json:"rule"`
	Event  *event.Event   `json:"event"`
	Config map[string]any `json:"config,omitempty"`
	// Now is the time the rule sees, RFC 3339.
	Now string                     `json:"now,omitempty"`
	KV  map[string]json.RawMessage `json:"kv,omitempty"`
	// Self is the account's own JIDs, for rules that look for mentions.
	Self []string `json:"self,omitempty"`
	// Group is the group ctx.group() answers (its jid is the event's chat).
	Group *event.GroupInfo `json:"group,omitempty"`
	// Expect is the effects, as `rules test` prints them, in order.
	Expect []json.RawMessage `json:"expect"`
	// ExpectError, when set, is a substring of the error the rule must
	// fail with.
	ExpectError string `json:"expectError,omitempty"`

	File  string `json:"-"`
	Index int    `json:"-"` // 1-based
}

// Title names the case in reports: file, number, name.
func (tc *TestCase) Title() string {
	s := fmt.Sprintf("%s #%d", tc.File, tc.Index)
	if tc.Name != "" {
		s += " " + tc.Name
	}
	return s
}

// FindTestFiles returns every *.test.json under dir, sorted, named under
// dir. A dir that is a symbolic link to a directory (a scripts/ linked in
// from elsewhere) is searched too: WalkDir alone does not enter it.
func FindTestFiles(dir string) ([]string, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".test.json") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.Join(dir, rel))
		}
		return nil
	})
	return files, err
}

// LoadTestFile reads the cases of one file. Unknown keys are errors, so a
// misspelt "expect" cannot make a case pass vacuously.
func LoadTestFile(path string) ([]TestCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cases []TestCase
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '[' {
		err = dec.Decode(&cases)
	} else {
		cases = make([]TestCase, 1)
		err = dec.Decode(&cases[0])
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range cases {
		tc := &cases[i]
		tc.File, tc.Index = path, i+1
		switch {
		case tc.Rule == "":
			return nil, fmt.Errorf("%s: missing \"rule\"", tc.Title())
		case tc.Event == nil:
			return nil, fmt.Errorf("%s: missing \"event\"", tc.Title())
		case tc.Expect == nil && tc.ExpectError == "":
			return nil, fmt.Errorf("%s: missing \"expect\" (use [] when the rule should do nothing)", tc.Title())
		}
		if err := PrepareEvent(tc.Event); err != nil {
			return nil, fmt.Errorf("%s: event: %w", tc.Title(), err)
		}
		if tc.Now != "" {
			if _, err := time.Parse(time.RFC3339, tc.Now); err != nil {
				return nil, fmt.Errorf("%s: now: %w", tc.Title(), err)
			}
		}
	}
	return cases, nil
}

// Run runs the case and returns a readable report of the mismatch, or ""
// when the rule did what the case expects.
func (tc *TestCase) Run(ctx context.Context) (string, error) {
	var now time.Time
	if tc.Now != "" {
		now, _ = time.Parse(time.RFC3339, tc.Now)
	}
	ev := *tc.Event // the engine must not see changes of an earlier run
	got, err := DryRun(ctx, filepath.Join(filepath.Dir(tc.File), tc.Rule), &ev, DryRunOptions{Config: tc.Config, Now: now, KV: tc.KV, Self: tc.Self, Group: tc.Group})
	var report strings.Builder
	switch {
	case tc.ExpectError != "" && err == nil:
		fmt.Fprintf(&report, "expected an error containing %q, the rule succeeded\n", tc.ExpectError)
	case tc.ExpectError != "" && !strings.Contains(err.Error(), tc.ExpectError):
		fmt.Fprintf(&report, "expected an error containing %q, got: %v\n", tc.ExpectError, err)
	case tc.ExpectError == "" && err != nil:
		var re *RuleError
		if errors.As(err, &re) && re.Stack != "" {
			fmt.Fprintf(&report, "rule failed: %v\n%s", err, re.Stack)
		} else {
			fmt.Fprintf(&report, "rule failed: %v\n", err)
		}
	}
	if tc.Expect != nil {
		diff, derr := DiffEffects(tc.Expect, got)
		if derr != nil {
			return "", fmt.Errorf("%s: expect: %w", tc.Title(), derr)
		}
		report.WriteString(diff)
	}
	return report.String(), nil
}

// DiffEffects compares expected effects (JSON, as printed) with what the
// rule did and returns a line diff ("-" expected, "+" actual), or "".
func DiffEffects(want []json.RawMessage, got []Effect) (string, error) {
	wantV := make([]any, len(want))
	for i, w := range want {
		if err := json.Unmarshal(w, &wantV[i]); err != nil {
			return "", fmt.Errorf("effect %d: %w", i+1, err)
		}
	}
	gotJSON, err := json.Marshal(got)
	if err != nil {
		return "", err
	}
	var gotV []any
	if err := json.Unmarshal(gotJSON, &gotV); err != nil {
		return "", err
	}
	if gotV == nil {
		gotV = []any{}
	}
	if reflect.DeepEqual(wantV, gotV) {
		return "", nil
	}
	a, _ := json.MarshalIndent(wantV, "", "  ")
	b, _ := json.MarshalIndent(gotV, "", "  ")
	return "effects differ (- expected, + actual):\n" + lineDiff(string(a), string(b)), nil
}

// lineDiff is a small LCS line diff: effect lists are short.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out.WriteString("  " + x[i] + "\n")
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			out.WriteString("- " + x[i] + "\n")
			i++
		default:
			out.WriteString("+ " + y[j] + "\n")
			j++
		}
	}
	return out.String()
}
