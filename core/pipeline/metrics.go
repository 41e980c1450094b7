package pipeline

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stageStats are one stage's counters. They are kept by stage name across
// reloads, so a reload does not reset what GET /v1/pipeline shows.
type stageStats struct {
	in, errors, timeouts, dropped, enqueued, deadLetters atomic.Uint64
	actions                                              [len(actionTypes)]atomic.Uint64 // indexed like actionTypes
	actionFailures                                       [len(actionTypes)]atomic.Uint64
	latencyCount                                         atomic.Uint64
	latencyNanos                                         atomic.Uint64
}

func (s *stageStats) action(t ActionType) {
	if i := actionIndex(t); i >= 0 {
		s.actions[i].Add(1)
	}
}

func (s *stageStats) actionFailed(t ActionType) {
	if i := actionIndex(t); i >= 0 {
		s.actionFailures[i].Add(1)
	}
}

func actionIndex(t ActionType) int {
	for i, at := range actionTypes {
		if at == t {
			return i
		}
	}
	return -1
}

type statsBook struct {
	mu      sync.Mutex
	stages  map[string]*stageStats
	metrics *Metrics
}

func newStatsBook(m *Metrics) *statsBook {
	b := &statsBook{stages: map[string]*stageStats{}, metrics: m}
	if m != nil {
		m.book = b
	}
	return b
}

func (b *statsBook) stage(name string) *stageStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stages[name]
	if s == nil {
		s = &stageStats{}
		b.stages[name] = s
	}
	return s
}

func (b *statsBook) observe(st *stage, d time.Duration) {
	st.stats.latencyCount.Add(1)
	st.stats.latencyNanos.Add(uint64(d))
	if b.metrics != nil {
		b.metrics.latency.WithLabelValues(st.cfg.Name).Observe(d.Seconds())
	}
}

// StageStats is one stage as GET /v1/pipeline shows it.
type StageStats struct {
	Name   string `json:"name"`
	Kind   Kind   `json:"kind"`
	Mode   Mode   `json:"mode"`
	Target string `json:"target,omitempty"`
	// In counts events that matched the stage.
	In      uint64            `json:"in"`
	Actions map[string]uint64 `json:"actions"`
	// ActionFailures counts, per action type, actions that could not be
	// carried out (each also recorded on its message as a failure).
	ActionFailures map[string]uint64 `json:"actionFailures"`
	Errors         uint64            `json:"errors"`
	Timeouts       uint64            `json:"timeouts"`
	Dropped        uint64            `json:"dropped"`
	Enqueued       uint64            `json:"enqueued"`
	DeadLetters    uint64            `json:"deadLetters"`
	Calls          uint64            `json:"calls"`
	// MeanLatency is the mean duration of a stage run, retries included.
	MeanLatency time.Duration `json:"meanLatencyNs"`
}

// Snapshot is the engine's state for GET /v1/pipeline.
type Snapshot struct {
	Generation uint64       `json:"generation"`
	Stages     []StageStats `json:"stages"`
	// Queued counts events submitted and not yet processed.
	Queued int `json:"queued"`
	// ActiveChats counts chats being processed right now.
	ActiveChats int `json:"activeChats"`
}

// Snapshot returns the current stage list with its counters.
func (e *Engine) Snapshot() Snapshot {
	p := e.plan.Load()
	s := Snapshot{Generation: p.gen, Queued: len(e.slots), ActiveChats: int(e.active.Load())}
	for _, st := range p.stages {
		s.Stages = append(s.Stages, st.stats.snapshot(st))
	}
	return s
}

func (s *stageStats) snapshot(st *stage) StageStats {
	out := StageStats{
		Name: st.cfg.Name, Kind: st.kind, Mode: st.mode, Target: st.target,
		In: s.in.Load(), Errors: s.errors.Load(), Timeouts: s.timeouts.Load(),
		Dropped: s.dropped.Load(), Enqueued: s.enqueued.Load(), DeadLetters: s.deadLetters.Load(),
		Calls: s.latencyCount.Load(), Actions: map[string]uint64{}, ActionFailures: map[string]uint64{},
	}
	for i, t := range actionTypes {
		if n := s.actions[i].Load(); n > 0 {
			out.Actions[string(t)] = n
		}
		if n := s.actionFailures[i].Load(); n > 0 {
			out.ActionFailures[string(t)] = n
		}
	}
	if out.Calls > 0 {
		out.MeanLatency = time.Duration(s.latencyNanos.Load() / out.Calls)
	}
	return out
}

// Metrics exports the per-stage counters and a latency histogram to
// Prometheus. Create it with NewMetrics and pass it in Options; one Metrics
// serves one Engine.
type Metrics struct {
	latency *prometheus.HistogramVec
	book    *statsBook

	in, actions, actionFailures, errors, timeouts, dropped, enqueued, deadLetters *prometheus.Desc
}

// NewMetrics registers the pipeline's collectors on reg (not the global
// registry).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	stage := []string{"stage"}
	m := &Metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wildcat_pipeline_stage_duration_seconds",
			Help:    "Duration of pipeline stage runs (call, actions and retries).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, stage),
		in:      prometheus.NewDesc("wildcat_pipeline_stage_events_total", "Events that matched a stage.", stage, nil),
		actions: prometheus.NewDesc("wildcat_pipeline_stage_actions_total", "Actions returned by a stage, by type.", []string{"stage", "action"}, nil),
		actionFailures: prometheus.NewDesc("wildcat_pipeline_stage_action_failures_total",
			"Actions of a stage that could not be carried out, by type (the stage's other actions were).", []string{"stage", "action"}, nil),
		errors:      prometheus.NewDesc("wildcat_pipeline_stage_errors_total", "Failed stage calls, timeouts included.", stage, nil),
		timeouts:    prometheus.NewDesc("wildcat_pipeline_stage_timeouts_total", "Stage calls that outlived their timeout.", stage, nil),
		dropped:     prometheus.NewDesc("wildcat_pipeline_stage_dropped_total", "Events a stage dropped.", stage, nil),
		enqueued:    prometheus.NewDesc("wildcat_pipeline_stage_enqueued_total", "Events a sink stage put into the outbox.", stage, nil),
		deadLetters: prometheus.NewDesc("wildcat_pipeline_stage_dead_letters_total", "Events a stage gave up on.", stage, nil),
	}
	for _, c := range []prometheus.Collector{m.latency, m} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.in, m.actions, m.actionFailures, m.errors, m.timeouts, m.dropped, m.enqueued, m.deadLetters} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if m.book == nil {
		return
	}
	m.book.mu.Lock()
	defer m.book.mu.Unlock()
	for name, s := range m.book.stages {
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{name}, labels...)...)
		}
		counter(m.in, s.in.Load())
		counter(m.errors, s.errors.Load())
		counter(m.timeouts, s.timeouts.Load())
		counter(m.dropped, s.dropped.Load())
		counter(m.enqueued, s.enqueued.Load())
		counter(m.deadLetters, s.deadLetters.Load())
		for i, t := range actionTypes {
			counter(m.actions, s.actions[i].Load(), string(t))
			counter(m.actionFailures, s.actionFailures[i].Load(), string(t))
		}
	}
}
