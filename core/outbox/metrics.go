package outbox

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the dispatcher's Prometheus collectors. A nil *Metrics
// records nothing.
type Metrics struct {
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	lost       *prometheus.CounterVec
}

// NewMetrics creates the dispatcher's collectors and registers them on reg
// (not the global registry).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wildcat_outbox_attempts_total",
			Help: "Delivery attempts by target and result (ok, retry, fail).",
		}, []string{"target", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wildcat_outbox_attempt_duration_seconds",
			Help:    "Duration of delivery attempts by target.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"target"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wildcat_outbox_leases_lost_total",
			Help: "Attempts whose lease was taken over before they completed.",
		}, []string{"target"}),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.latency, m.lost} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(target string, o Outcome, took time.Duration) {
	if m == nil {
		return
	}
	if o != OutcomeOK && o != OutcomeFail {
		o = OutcomeRetry
	}
	m.deliveries.WithLabelValues(target, string(o)).Inc()
	m.latency.WithLabelValues(target).Observe(took.Seconds())
}

func (m *Metrics) leaseLost(target string) {
	if m != nil {
		m.lost.WithLabelValues(target).Inc()
	}
}

// StatsCollector exports Stats as gauges: wildcat_outbox_jobs{state,target}
// and wildcat_outbox_oldest_pending_seconds. Stats scans the collection, so
// a result is reused for maxAge across scrapes.
type StatsCollector struct {
	o      *Outbox
	maxAge time.Duration

	mu    sync.Mutex
	at    time.Time
	stats *Stats

	jobs, oldest *prometheus.Desc
}

// NewStatsCollector returns a collector of o's Stats; maxAge ≤ 0 means 15 s.
func NewStatsCollector(o *Outbox, maxAge time.Duration) *StatsCollector {
	if maxAge <= 0 {
		maxAge = 15 * time.Second
	}
	return &StatsCollector{
		o: o, maxAge: maxAge,
		jobs:   prometheus.NewDesc("wildcat_outbox_jobs", "Outbox jobs by state and target.", []string{"state", "target"}, nil),
		oldest: prometheus.NewDesc("wildcat_outbox_oldest_pending_seconds", "Age of the oldest pending outbox job.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *StatsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobs
	ch <- c.oldest
}

// Collect implements prometheus.Collector. A failed Stats query leaves the
// gauges out of this scrape rather than reporting zeros.
func (c *StatsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stats == nil || time.Since(c.at) > c.maxAge {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := c.o.Stats(ctx)
		cancel()
		if err != nil {
			return
		}
		c.stats, c.at = st, time.Now()
	}
	for state, byTarget := range c.stats.Depth {
		for target, n := range byTarget {
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(n), string(state), target)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, c.stats.OldestPendingAge(c.o.now()).Seconds())
}
