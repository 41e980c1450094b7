package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/logging"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/rules"
)

// This file wires the JavaScript rule engine (core/rules) into the daemon:
// the rules stage kind, hot reload of the rule files, the kv sweep, and
// what GET /v1/rules lists.
//
//	pipeline:
//	  - name: rules
//	    rules: ["scripts/*.js"]          # globs, relative to the working directory
//	    config:                          # one block per rule, keyed by rule name
//	      20-business-hours: {timezone: Europe/Berlin, timeout: 500ms}
//
// Each rules stage gets its own rules.Engine, built when the stage is
// compiled (start-up, POST /v1/pipeline/reload) and reused while the stage's
// name, globs and config stay the same, so a pipeline reload that leaves the
// stage alone keeps its rules, their counters and their runtimes. The
// engines share one MongoDB kv store (each rule file its own namespace).

const (
	// ruleSuperviseInterval is how often the daemon matches its rule
	// watchers to the running pipeline: a new rules stage is watched, and
	// the watcher of one a pipeline reload removed is stopped, within it.
	ruleSuperviseInterval = 250 * time.Millisecond
	// ruleEngineGrace keeps a built engine that is not (yet) in the running
	// pipeline: a reload builds its stages before it swaps them in.
	ruleEngineGrace = 30 * time.Second
	// ruleKVSweepInterval is how often expired kv entries are deleted (the
	// embedded store has no TTL indexes; reads ignore expired ones anyway).
	ruleKVSweepInterval = 10 * time.Minute
	// selfTTL is how long an account's own JIDs (ctx.self()) are cached.
	selfTTL = time.Minute
)

// ruleHost owns the rule engines of the daemon's rules stages.
type ruleHost struct {
	d   *Daemon
	log *slog.Logger
	kv  rules.Store

	mu      sync.Mutex
	engines map[string]*ruleEngine // by stageKey

	selfMu sync.Mutex
	self   map[string]selfEntry // by account id
}

// ruleEngine is the engine of one rules stage configuration.
type ruleEngine struct {
	key   string
	stage string
	eng   *rules.Engine
	// built is when a pipeline compile last asked for this engine.
	built time.Time
	// stop ends its watcher; nil while it has none.
	stop context.CancelFunc
}

type selfEntry struct {
	jids []string
	at   time.Time
}

// registerRules offers the rules stage kind. It is called in build, before
// the configured pipeline is checked; the media store it resolves ids with
// is read when a rule asks, so it may be built later.
func (d *Daemon) registerRules() {
	d.rules = &ruleHost{
		d:       d,
		log:     logging.Component(d.opts.Logger, "rules"),
		kv:      d.ruleKV(),
		engines: map[string]*ruleEngine{},
		self:    map[string]selfEntry{},
	}
	d.registry.RegisterRules(d.rules.factory)
	if d.metrics != nil {
		if err := d.metrics.Register(ruleCollector{d.rules}); err != nil {
			d.rules.log.Warn("rule metrics not registered", slog.Any("error", err))
		}
	}
}

// ruleCollector exports GET /v1/rules as Prometheus metrics, read at
// scrape time from the rule engines' own counters.
type ruleCollector struct{ h *ruleHost }

var (
	ruleLabels     = []string{"stage", "rule"}
	ruleCallsDesc  = prometheus.NewDesc("wildcat_rule_calls_total", "Handler calls of a rule.", ruleLabels, nil)
	ruleErrorsDesc = prometheus.NewDesc("wildcat_rule_errors_total", "Handler calls of a rule that threw.", ruleLabels, nil)
	ruleTimeDesc   = prometheus.NewDesc("wildcat_rule_timeouts_total", "Handler calls of a rule cut at their deadline.", ruleLabels, nil)
	ruleP99Desc    = prometheus.NewDesc("wildcat_rule_call_p99_seconds", "99th percentile handler call time of a rule's last 1024 calls.", ruleLabels, nil)
	ruleLoadDesc   = prometheus.NewDesc("wildcat_rule_load_error", "1 when a rule file on disk does not load (its previous version, if any, runs).", ruleLabels, nil)
)

func (ruleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{ruleCallsDesc, ruleErrorsDesc, ruleTimeDesc, ruleP99Desc, ruleLoadDesc} {
		ch <- d
	}
}

func (c ruleCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.h.RuleStatus() {
		loadErr := 0.0
		if r.LoadError != "" {
			loadErr = 1
		}
		ch <- prometheus.MustNewConstMetric(ruleCallsDesc, prometheus.CounterValue, float64(r.Calls), r.Stage, r.Name)
		ch <- prometheus.MustNewConstMetric(ruleErrorsDesc, prometheus.CounterValue, float64(r.Errors), r.Stage, r.Name)
		ch <- prometheus.MustNewConstMetric(ruleTimeDesc, prometheus.CounterValue, float64(r.Timeouts), r.Stage, r.Name)
		ch <- prometheus.MustNewConstMetric(ruleP99Desc, prometheus.GaugeValue, r.P99.Seconds(), r.Stage, r.Name)
		ch <- prometheus.MustNewConstMetric(ruleLoadDesc, prometheus.GaugeValue, loadErr, r.Stage, r.Name)
	}
}

// stageKey identifies a rules stage configuration: an engine is reused
// only for the same name, globs and rule config.
func stageKey(st pipeline.StageConfig) string {
	globs, _ := json.Marshal(st.Rules)
	cfg, err := json.Marshal(st.Config)
	if err != nil {
		cfg = []byte(fmt.Sprintf("%v", st.Config))
	}
	return st.Name + "\x00" + string(globs) + "\x00" + string(cfg)
}

// ruleConfigs reads a rules stage's config block: one block per rule,
// keyed by the rule's name (its file name without .js).
func ruleConfigs(st pipeline.StageConfig) (map[string]map[string]any, error) {
	out := make(map[string]map[string]any, len(st.Config))
	for name, v := range st.Config {
		if strings.HasSuffix(name, ".js") || strings.ContainsAny(name, `/\`) {
			return nil, fmt.Errorf("config.%s: key the block by the rule's name, its file name without .js (e.g. %q)", name, strings.TrimSuffix(filepath.Base(name), ".js"))
		}
		switch b := v.(type) {
		case nil:
			out[name] = map[string]any{}
		case map[string]any:
			out[name] = b
		default:
			return nil, fmt.Errorf("config.%s: expected the rule's config block (a map), got %T; a rules stage's config is keyed by rule name", name, v)
		}
	}
	return out, nil
}

// factory is the rules stage kind's pipeline.Factory.
func (h *ruleHost) factory(st pipeline.StageConfig) (pipeline.InlineHandler, error) {
	key := stageKey(st)
	h.mu.Lock()
	defer h.mu.Unlock()
	if re := h.engines[key]; re != nil {
		re.built = time.Now()
		return &rulesStage{h: h, re: re}, nil
	}
	cfg, err := ruleConfigs(st)
	if err != nil {
		return nil, err
	}
	log := h.log.With(slog.String("stage", st.Name))
	eng := rules.New(rules.Options{
		Globs:       st.Rules,
		Config:      cfg,
		KV:          h.kv,
		Media:       mediaResolver{h.d},
		Self:        h.cachedSelf,
		Group:       h.groupInfo,
		MemoryLimit: h.d.cfg.Rules.MemoryLimit,
		Logger:      log,
		// The SSRF guard's resolver (tests answer without a network).
		FetchResolver: h.d.opts.Resolver,
	})
	// A file that does not load is logged and shown by GET /v1/rules; the
	// stage runs the others, and a fixed file is picked up by the watcher.
	_ = eng.Reload()
	if len(eng.Status()) == 0 {
		log.Warn("rules stage matches no .js file yet; files added later are loaded", slog.Any("globs", st.Rules))
	}
	re := &ruleEngine{key: key, stage: st.Name, eng: eng, built: time.Now()}
	h.engines[key] = re
	return &rulesStage{h: h, re: re}, nil
}

// liveKeys are the rules stages of the running pipeline, in order.
func (h *ruleHost) liveKeys() []string {
	if h.d.engine == nil {
		return nil // still building
	}
	var keys []string
	for _, st := range h.d.engine.Stages() {
		if st.Kind() == pipeline.KindRules {
			keys = append(keys, stageKey(st))
		}
	}
	return keys
}

// supervise keeps one watcher (rules.Engine.Watch: edits, new and removed
// files take effect within 2 s) per engine of the running pipeline, and
// stops the watchers of engines a pipeline reload replaced. Events still
// running on a replaced engine finish there. It returns when ctx ends,
// after its watchers stopped.
func (h *ruleHost) supervise(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	reconcile := func(ctx context.Context) { h.reconcile(ctx, &wg) }
	reconcile(ctx)
	every(ruleSuperviseInterval, reconcile)(ctx)
}

func (h *ruleHost) reconcile(ctx context.Context, wg *sync.WaitGroup) {
	live := map[string]bool{}
	for _, k := range h.liveKeys() {
		live[k] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, re := range h.engines {
		switch {
		case live[key] && re.stop == nil && ctx.Err() == nil:
			wctx, cancel := context.WithCancel(ctx)
			re.stop = cancel
			wg.Add(1)
			go func() {
				defer wg.Done()
				re.eng.Watch(wctx)
			}()
		case !live[key] && time.Since(re.built) > ruleEngineGrace:
			if re.stop != nil {
				re.stop()
				h.log.Info("rules stage replaced; its watcher stopped", slog.String("stage", re.stage))
			}
			delete(h.engines, key)
		case !live[key] && re.stop != nil:
			// Replaced by a reload: the files no longer matter to it.
			re.stop()
			re.stop = nil
			h.log.Info("rules stage replaced; its watcher stopped", slog.String("stage", re.stage))
		}
	}
}

// RuleStatus lists the rules of the running pipeline's rules stages, stage
// by stage in pipeline order (GET /v1/rules).
func (h *ruleHost) RuleStatus() []rules.RuleStatus {
	keys := h.liveKeys()
	out := []rules.RuleStatus{}
	for _, k := range keys {
		h.mu.Lock()
		re := h.engines[k]
		h.mu.Unlock()
		if re == nil {
			continue
		}
		for _, st := range re.eng.Status() {
			st.Stage = re.stage
			out = append(out, st)
		}
	}
	return out
}

// ruleKV is the rules' key-value store on the daemon's engine.
func (d *Daemon) ruleKV() rules.Store {
	if d.sql != nil {
		return rules.SealedKV(rules.NewSQLiteKV(d.sql, nil), d.keys)
	}
	return rules.SealedKV(rules.NewMongoKV(d.store.DB(), nil), d.keys)
}

// sweepRuleKV deletes expired rule kv entries.
func (d *Daemon) sweepRuleKV(ctx context.Context) {
	if n, err := d.rules.kv.Sweep(ctx); err != nil && ctx.Err() == nil {
		d.rules.log.Warn("rule kv sweep failed", slog.Any("error", err))
	} else if n > 0 {
		d.rules.log.Debug("expired rule kv entries deleted", slog.Int64("count", n))
	}
}

// groupInfo is rules.Options.Group (ctx.group()): the group as the
// account's session knows it.
func (h *ruleHost) groupInfo(ctx context.Context, accountID, groupJID string) (*event.GroupInfo, error) {
	gs, err := h.d.sessions.Groups(ctx, accountID)
	if err != nil {
		return nil, err
	}
	return gs.GroupInfo(ctx, groupJID)
}

// cachedSelf is rules.Options.Self: it must not wait on the database inside
// a handler's deadline, so it answers from the cache rulesStage.Handle
// fills before calling the rules.
func (h *ruleHost) cachedSelf(accountID string) []string {
	h.selfMu.Lock()
	defer h.selfMu.Unlock()
	return h.self[accountID].jids
}

// warmSelf reads the account's own JID when the cache has none or an old
// one. The sim and WhatsApp drivers record the phone-number JID; the LID
// form is not known here.
func (h *ruleHost) warmSelf(ctx context.Context, accountID string) {
	if accountID == "" {
		return
	}
	h.selfMu.Lock()
	e, ok := h.self[accountID]
	h.selfMu.Unlock()
	if ok && time.Since(e.at) < selfTTL {
		return
	}
	var jids []string
	a, err := h.d.sessions.GetAccount(ctx, accountID)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		h.log.Debug("account not readable for ctx.self()", slog.String("account", accountID), slog.Any("error", err))
	} else if j := nonADJID(a.JID); j != "" {
		jids = []string{j}
	}
	if len(jids) == 0 {
		// Not known yet: an account's events while it pairs come through
		// here too, and caching "none" would hide its JID from the rules
		// for selfTTL after it connects. Ask again next time.
		return
	}
	h.selfMu.Lock()
	h.self[accountID] = selfEntry{jids: jids, at: time.Now()}
	h.selfMu.Unlock()
}

// nonADJID drops a JID's device part: "1555:12@s.whatsapp.net" →
// "1555@s.whatsapp.net", the form mentions and participants use.
func nonADJID(jid string) string {
	user, server, ok := strings.Cut(jid, "@")
	if !ok {
		return jid
	}
	user, _, _ = strings.Cut(user, ":")
	return user + "@" + server
}

// mediaResolver lets ctx.reply({media: {mediaId}}) send media from the
// daemon's media store.
type mediaResolver struct{ d *Daemon }

func (m mediaResolver) ResolveMedia(ctx context.Context, mediaID string) ([]byte, string, error) {
	if m.d.media == nil {
		return nil, "", fmt.Errorf("media store not ready")
	}
	data, info, err := m.d.media.ReadAll(ctx, mediaID)
	if err != nil {
		return nil, "", err
	}
	return data, info.Mimetype, nil
}

// rulesStage is the inline handler of a rules stage.
type rulesStage struct {
	h  *ruleHost
	re *ruleEngine
}

// Handle runs the rules on ev and turns what they asked for into pipeline
// actions, in the order the rules asked. A rule that throws or outlives its
// deadline fails the call (none of the call's effects happen) and the
// stage's onError decides what follows; the rule engine has already cut,
// counted and logged it. Once the call succeeded, the pipeline carries out
// each action on its own: a reply that cannot be sent costs the rule none
// of its tags or routes, and is recorded on the message as a failure
// naming the rule (Action.Origin).
func (s *rulesStage) Handle(ctx context.Context, ev *event.Event) ([]pipeline.Action, error) {
	s.h.warmSelf(ctx, ev.AccountID)
	var observe func(rules.RuleRun)
	if rec := pipeline.StageTraceFrom(ctx); rec != nil {
		observe = func(r rules.RuleRun) { rec.Rule(ruleTrace(r)) }
	}
	effs, err := s.re.eng.HandleObserved(ctx, ev, nil, observe)
	if err != nil {
		return nil, err
	}
	acts := make([]pipeline.Action, 0, len(effs))
	for _, e := range effs {
		var a pipeline.Action
		switch e.Kind {
		case rules.EffectReply:
			if e.Media != nil {
				return nil, fmt.Errorf("rule %s: reply media by reference was not resolved", e.Rule)
			}
			// The rule set ReplyTo itself if it asked for a quote.
			a = pipeline.Action{Type: pipeline.ActionReply, Send: e.Message, NoQuote: true}
		case rules.EffectSend:
			if e.Media != nil {
				return nil, fmt.Errorf("rule %s: send media by reference was not resolved", e.Rule)
			}
			a = pipeline.Send("", e.Message)
		case rules.EffectReact:
			// A reaction is a message to the event's chat (Message.To).
			a = pipeline.React(e.Message)
		case rules.EffectMarkRead:
			a = pipeline.MarkRead()
		case rules.EffectDrop:
			a = pipeline.Drop()
		case rules.EffectTag:
			a = pipeline.Tag(e.Tags...)
		case rules.EffectAnnotate:
			a = pipeline.Annotate(map[string]string{e.Key: e.Value})
		case rules.EffectRoute:
			a = pipeline.Route(e.Sinks...)
		default:
			return nil, fmt.Errorf("rule %s: unknown effect %q", e.Rule, e.Kind)
		}
		a.Origin = e.Rule
		acts = append(acts, a)
	}
	return acts, nil
}

// ruleTrace is a rule's record in the pipeline's trace.
func ruleTrace(r rules.RuleRun) pipeline.RuleTrace {
	rt := pipeline.RuleTrace{Rule: r.Rule, File: r.File, DurationMs: float64(r.Duration.Microseconds()) / 1000, Effects: r.Effects}
	if r.Err != nil {
		rt.Error, rt.Line, rt.Timeout = r.Err.Message, r.Err.Line, r.Err.Timeout
		if rt.Error == "" {
			rt.Error = r.Err.Error()
		}
	}
	return rt
}
