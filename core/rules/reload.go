package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

// WatchInterval is how often Watch looks at the rule files. A change is
// applied once the files have looked the same for one more interval (so a
// file caught half-written is not loaded), i.e. within two intervals.
const WatchInterval = 500 * time.Millisecond

// Reload re-reads the files the globs match now: new files are loaded,
// changed ones get a new version, removed ones stop. A file that does not
// load (syntax error, throw at top level, bad config) keeps its previous
// version running and reports the error in Status; Reload returns the load
// errors joined. Calls in flight finish on the version they started with.
func (e *Engine) Reload() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	files, err := e.expand()
	if err != nil {
		return err
	}
	var errs []error
	seen := make(map[string]bool, len(files))
	byName := map[string]string{}
	for _, f := range files {
		seen[f] = true
		r := e.rules[f]
		if r == nil {
			r = &rule{name: ruleName(f), file: f}
			e.rules[f] = r
		}
		if other, dup := byName[r.name]; dup {
			// The name keys kv and config: two files sharing it would
			// share state by accident.
			r.mu.Lock()
			r.current, r.loadErr = nil, fmt.Errorf("rule name %q is taken by %s: rename one of the files", r.name, other)
			r.mu.Unlock()
			errs = append(errs, r.loadErr)
			continue
		}
		byName[r.name] = f
		if err := e.load(r); err != nil {
			errs = append(errs, err)
		}
	}
	for f, r := range e.rules {
		if !seen[f] {
			delete(e.rules, f)
			e.log.Info("rule removed", slog.String("rule", r.name), slog.String("file", f))
		}
	}
	for name := range e.opts.Config {
		if _, ok := byName[name]; !ok {
			e.log.Debug("config block names no loaded rule", slog.String("rule", name))
		}
	}
	e.publish()
	return errors.Join(errs...)
}

func ruleName(file string) string { return strings.TrimSuffix(filepath.Base(file), ".js") }

// expand returns the files the globs match, sorted and de-duplicated.
func (e *Engine) expand() ([]string, error) {
	set := map[string]bool{}
	for _, g := range e.opts.Globs {
		matches, err := filepath.Glob(g)
		if err != nil {
			return nil, fmt.Errorf("rules: bad glob %q: %w", g, err)
		}
		for _, f := range matches {
			if strings.HasSuffix(f, ".js") {
				if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
					set[filepath.Clean(f)] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// load compiles r's file when its content changed and runs its top level
// once; on failure the previous version stays.
func (e *Engine) load(r *rule) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	src, err := os.ReadFile(r.file)
	if err != nil {
		r.loadErr = fmt.Errorf("rule %s: %w", r.name, err)
		return r.loadErr
	}
	sum := sha256.Sum256(src)
	id := hex.EncodeToString(sum[:6])
	if r.current != nil && r.current.id == id {
		r.loadErr, r.failedID = nil, ""
		return nil
	}
	if id == r.failedID {
		return r.loadErr
	}
	v, err := e.compile(r, id, string(src))
	if err != nil {
		r.loadErr, r.failedID = err, id
		attrs := []any{slog.String("rule", r.name), slog.String("file", r.file), slog.Any("error", err)}
		var re *RuleError
		if errors.As(err, &re) && re.Line > 0 {
			attrs = append(attrs, slog.Int("line", re.Line))
		}
		if r.current != nil {
			attrs = append(attrs, slog.String("running_version", r.current.id))
		}
		e.log.Error("rule not loaded", attrs...)
		return err
	}
	prev := r.current
	r.current, r.loadErr, r.failedID = v, nil, ""
	attrs := []any{slog.String("rule", r.name), slog.String("file", r.file), slog.String("version", id), slog.Any("kinds", v.patterns)}
	if prev != nil {
		attrs = append(attrs, slog.String("previous_version", prev.id))
	}
	e.log.Info("rule loaded", attrs...)
	return nil
}

func (e *Engine) compile(r *rule, id, src string) (*version, error) {
	cfg, err := parseRuleConfig(e.opts.Config[r.name], e.opts.Timeout)
	if err != nil {
		return nil, &RuleError{Rule: r.name, File: r.file, Message: "config: " + err.Error(), Err: err}
	}
	v := &version{eng: e, rule: r, id: id, cfg: cfg, loadedAt: e.now(), pool: make(chan *vm, e.opts.IdleRuntimes),
		interrupt: fmt.Errorf("%w (%s)", ErrTimeout, cfg.timeout)}
	registerVersion(v)
	// Parsing separately keeps the syntax error's position, which
	// goja.Compile flattens into its message.
	ast, err := parser.ParseFile(nil, r.file, src, 0)
	if err != nil {
		re := &RuleError{Rule: r.name, File: r.file, Message: "SyntaxError: " + err.Error(), Err: err}
		var list parser.ErrorList
		if errors.As(err, &list) && len(list) > 0 {
			re.Line, re.Column = list[0].Position.Line, list[0].Position.Column
			re.Message = "SyntaxError: " + list[0].Message
			if len(list) > 1 {
				re.Message += fmt.Sprintf(" (and %d more errors)", len(list)-1)
			}
		}
		return nil, re
	}
	if v.prg, err = goja.CompileAST(ast, false); err != nil {
		return nil, v.ruleError(err, "compiling")
	}
	// The first runtime validates the top level and tells which kinds the
	// rule handles, so Handle skips rules that have nothing for an event
	// without taking a runtime.
	m, err := v.newVM()
	if err != nil {
		return nil, err
	}
	for _, h := range m.handlers {
		if !slices.Contains(v.patterns, h.pattern) {
			v.patterns = append(v.patterns, h.pattern)
		}
	}
	if len(v.patterns) == 0 {
		e.log.Warn("rule registers no handler (call on(\"message.received\", fn) at top level)",
			slog.String("rule", r.name), slog.String("file", r.file))
	}
	v.put(m)
	return v, nil
}

// publish makes the current versions what Handle runs.
func (e *Engine) publish() {
	rules := slices.Collect(maps.Values(e.rules))
	sortRules(rules)
	set := &ruleSet{}
	for _, r := range rules {
		r.mu.Lock()
		if r.current != nil {
			set.versions = append(set.versions, r.current)
		}
		r.mu.Unlock()
	}
	e.set.Store(set)
}

// fileSig is what Watch compares between looks: cheap to get, and any
// write changes it. The content hash in load decides whether a change is
// real.
type fileSig struct {
	size int64
	mod  time.Time
}

func (e *Engine) scan() map[string]fileSig {
	files, err := e.expand()
	if err != nil {
		return nil
	}
	sigs := make(map[string]fileSig, len(files))
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			sigs[f] = fileSig{fi.Size(), fi.ModTime()}
		}
	}
	return sigs
}

// Watch applies file changes until ctx ends: every WatchInterval it looks
// at the files the globs match (stat, not an fsnotify watch, which misses
// files created in new directories, editors' rename-over saves and network
// file systems), and reloads once a change has settled.
func (e *Engine) Watch(ctx context.Context) {
	e.watch(ctx, WatchInterval)
}

func (e *Engine) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var (
		last      map[string]fileSig
		changedAt time.Time
		dirty     bool
	)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.trimIdle(now)
		}
		sigs := e.scan()
		if !maps.Equal(sigs, last) {
			last, changedAt, dirty = sigs, time.Now(), true
			continue
		}
		// Settled for a whole interval by the clock, not by tick count: a
		// ticker delivers a late tick right before the next one.
		if dirty && time.Since(changedAt) >= interval {
			dirty = false
			_ = e.Reload() // errors are logged and kept in Status
		}
	}
}
