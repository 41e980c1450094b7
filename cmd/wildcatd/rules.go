package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/rules"
)

const rulesUsage = `Usage:
  wildcatd rules test FILE --event EVENT.json [--config CONFIG.json] [--now TIME]
  wildcatd rules test --all [--dir scripts]

The first form runs the rule in FILE on the event in EVENT.json and prints
the actions it would take, as JSON. EVENT.json is the body a webhook
receives ({"type":…,"timestamp":…,"data":{…}}) or the bare event (its data). Nothing is sent: kv lives in memory and
http.fetch is disabled. Exit 0 when the rule ran, 1 when it failed (the
error and its stack go to stderr).

The second form runs every case in DIR/**/*.test.json — an object or a list
of objects {"rule": "file.js", "event": {…}, "expect": [actions…], "config":
{…}, "now": "RFC 3339 time", "kv": {key: value}, "self": [JIDs]} — and
exits 1 when a rule does something else than a case expects, printing the
difference.

Exit 2 on a bad command line or an unreadable/invalid JSON file.

Flags:
`

func rulesFlags(out io.Writer) (fs *pflag.FlagSet, eventPath, configPath, now *string, all *bool, dir *string) {
	fs = pflag.NewFlagSet("wildcatd rules test", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	eventPath = fs.String("event", "", "JSON file with the event: a webhook's body or the bare event")
	configPath = fs.String("config", "", "JSON file with the rule's config block (its ctx.config)")
	now = fs.String("now", "", "the time the rule sees, RFC 3339 (default: now)")
	all = fs.Bool("all", false, "run every *.test.json case under --dir")
	dir = fs.String("dir", "scripts", "where --all looks for *.test.json")
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "%s%s", rulesUsage, fs.FlagUsages()) }
	return fs, eventPath, configPath, now, all, dir
}

func (c *cli) rules(args []string) int {
	if len(args) == 0 || args[0] != "test" {
		return c.usageError("rules: expected the subcommand test")
	}
	fs, eventPath, configPath, now, all, dir := rulesFlags(c.stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
		return exitUsage
	}
	if *all {
		if fs.NArg() > 0 || *eventPath != "" || *configPath != "" || *now != "" {
			fmt.Fprintf(c.stderr, "wildcatd: rules test --all takes only --dir\n")
			return exitUsage
		}
		return c.rulesTestAll(*dir)
	}
	if fs.NArg() != 1 || *eventPath == "" {
		fmt.Fprintf(c.stderr, "wildcatd: rules test: expected one rule FILE and --event EVENT.json\n\n")
		fs.Usage()
		return exitUsage
	}
	return c.rulesTestOne(fs.Arg(0), *eventPath, *configPath, *now)
}

func readJSON(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// readEvent reads the --event file in either shape: the body a webhook
// receives, {"type":…,"timestamp":…,"data":{…the event…}} (its "data" key
// tells it apart: an event has none), or the bare event, as in the
// *.test.json cases. The envelope's type and timestamp fill in what data
// leaves out; a type that contradicts data's kind is an error.
func readEvent(path string) (*event.Event, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var envelope struct {
		Type      event.Kind      `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if _, ok := keys["data"]; ok {
		if _, ok := keys["kind"]; ok {
			return nil, fmt.Errorf(`%s: has both "kind" and "data": give the webhook body {"type","timestamp","data"} or the bare event`, path)
		}
		if err := json.Unmarshal(data, &envelope); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if d := bytes.TrimSpace(envelope.Data); len(d) == 0 || d[0] != '{' {
			return nil, fmt.Errorf("%s: data: want the event object, got %s", path, d)
		}
		data = envelope.Data
	}
	var ev event.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if envelope.Type != "" {
		switch ev.Kind {
		case "":
			ev.Kind = envelope.Type
		case envelope.Type:
		default:
			return nil, fmt.Errorf("%s: type %q but data.kind %q", path, envelope.Type, ev.Kind)
		}
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = envelope.Timestamp
	}
	return &ev, nil
}

func (c *cli) rulesTestOne(file, eventPath, configPath, now string) int {
	var opts rules.DryRunOptions
	ev, err := readEvent(eventPath)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: --event: %v\n", err)
		return exitUsage
	}
	if err := rules.PrepareEvent(ev); err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: --event %s: %v\n", eventPath, err)
		return exitUsage
	}
	if configPath != "" {
		if err := readJSON(configPath, &opts.Config); err != nil {
			fmt.Fprintf(c.stderr, "wildcatd: --config: %v\n", err)
			return exitUsage
		}
	}
	if now != "" {
		t, err := time.Parse(time.RFC3339, now)
		if err != nil {
			fmt.Fprintf(c.stderr, "wildcatd: --now %q is not an RFC 3339 time like 2026-01-05T09:30:00+01:00\n", now)
			return exitUsage
		}
		opts.Now = t
	}
	effects, err := rules.DryRun(context.Background(), file, ev, opts)
	if effects == nil {
		effects = []rules.Effect{}
	}
	out, merr := json.MarshalIndent(effects, "", "  ")
	if merr != nil {
		fmt.Fprintf(c.stderr, "wildcatd: %v\n", merr)
		return exitFailure
	}
	fmt.Fprintf(c.stdout, "%s\n", out)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
		var re *rules.RuleError
		if errors.As(err, &re) && re.Stack != "" {
			fmt.Fprint(c.stderr, re.Stack)
		}
		return exitFailure
	}
	return exitOK
}

func (c *cli) rulesTestAll(dir string) int {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		fmt.Fprintf(c.stderr, "wildcatd: rules test --all: %s is not a directory\n", dir)
		return exitUsage
	}
	files, err := rules.FindTestFiles(dir)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: rules test --all: %v\n", err)
		return exitUsage
	}
	var cases []rules.TestCase
	for _, f := range files {
		cs, err := rules.LoadTestFile(f)
		if err != nil {
			fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
			return exitUsage
		}
		cases = append(cases, cs...)
	}
	if len(cases) == 0 {
		fmt.Fprintf(c.stderr, "wildcatd: rules test --all: no *.test.json cases under %s\n", dir)
		return exitFailure
	}
	failed := 0
	for i := range cases {
		tc := &cases[i]
		report, err := tc.Run(context.Background())
		if err != nil {
			fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
			return exitUsage
		}
		if report == "" {
			fmt.Fprintf(c.stdout, "ok    %s\n", tc.Title())
			continue
		}
		failed++
		fmt.Fprintf(c.stdout, "FAIL  %s\n", tc.Title())
		for _, line := range strings.Split(strings.TrimRight(report, "\n"), "\n") {
			fmt.Fprintf(c.stdout, "      %s\n", line)
		}
	}
	// The plain closing line CI systems read: "rules: N passed, N failed".
	fmt.Fprintf(c.stdout, "rules: %d passed, %d failed\n", len(cases)-failed, failed)
	if failed > 0 {
		return exitFailure
	}
	return exitOK
}
