package daemon

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
)

// buildMetrics creates the daemon's own registry (never the global one, so
// several daemons in one test binary do not collide) with the process and
// Go runtime collectors and the pipeline's and dispatcher's metrics. The
// outbox depth gauges are added once the outbox is open (registerOutboxStats).
func (d *Daemon) buildMetrics() error {
	d.metrics = prometheus.NewRegistry()
	d.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var err error
	if d.pipelineMetrics, err = pipeline.NewMetrics(d.metrics); err != nil {
		return fmt.Errorf("pipeline metrics: %w", err)
	}
	if d.outboxMetrics, err = outbox.NewMetrics(d.metrics); err != nil {
		return fmt.Errorf("outbox metrics: %w", err)
	}
	return nil
}

// registerOutboxStats exports the outbox's depth by state and target and
// the age of its oldest pending job. The counts scan the collection, so one
// result serves scrapes for 15 s.
func (d *Daemon) registerOutboxStats(o *outbox.Outbox) error {
	if err := d.metrics.Register(outbox.NewStatsCollector(o, 0)); err != nil {
		return fmt.Errorf("outbox depth metrics: %w", err)
	}
	return nil
}
