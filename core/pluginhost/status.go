package pluginhost

import (
	"time"
)

// Status is a snapshot of one plugin, as GET /v1/plugins lists it.
type Status struct {
	// Name is the name it is declared under in config.yaml.
	Name string `json:"name"`
	Path string `json:"path"`
	// Plugin, Version, Description, Capabilities and EventKinds are what
	// the process reported (empty until it first ran; while it restarts,
	// what the last process reported).
	Plugin       string   `json:"plugin,omitempty"`
	Version      string   `json:"version,omitempty"`
	Description  string   `json:"description,omitempty"`
	Capabilities []string `json:"capabilities"`
	EventKinds   []string `json:"eventKinds,omitempty"`

	// Protocol is the plugin protocol version negotiated with the running
	// process: 2 takes deliveries in batches, 1 one per call.
	Protocol int `json:"protocol,omitempty"`

	State     State      `json:"state"`
	PID       int        `json:"pid,omitempty"`
	StartedAt *time.Time `json:"startedAt,omitempty"`
	// Restarts counts replacements of a process that exited or failed its
	// health checks.
	Restarts    int        `json:"restarts"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
	Calls       CallStats  `json:"calls"`
}

// CallStats counts calls per method since the daemon started.
type CallStats struct {
	Handle  CallCounters `json:"handle"`
	Deliver CallCounters `json:"deliver"`
}

// CallCounters counts calls, those that failed (for Deliver: did not end in
// OK), and those among them cut by their deadline.
type CallCounters struct {
	Calls    uint64 `json:"calls"`
	Errors   uint64 `json:"errors"`
	Timeouts uint64 `json:"timeouts"`
}

// Status returns a snapshot of the plugin.
func (p *Plugin) Status() Status {
	p.mu.RLock()
	defer p.mu.RUnlock()
	s := Status{
		Name:         p.name,
		Path:         p.cfg.Path,
		Capabilities: []string{},
		State:        p.state,
		Restarts:     p.restarts,
		LastError:    p.lastErr,
		Calls:        CallStats{Handle: p.handle.snapshot(), Deliver: p.deliver.snapshot()},
	}
	if !p.lastErrAt.IsZero() {
		at := p.lastErrAt
		s.LastErrorAt = &at
	}
	if info := p.info; info != nil {
		s.Plugin, s.Version, s.Description = info.Name, info.Version, info.Description
		s.EventKinds = info.EventKinds
		for _, c := range info.Capabilities {
			s.Capabilities = append(s.Capabilities, string(c))
		}
	}
	if inst := p.inst; inst != nil {
		s.PID = inst.pid
		s.Protocol = inst.rpc.ProtocolVersion()
		started := inst.started
		s.StartedAt = &started
	}
	return s
}
