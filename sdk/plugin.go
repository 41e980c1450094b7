package sdk

import (
	"context"
)

// Handler is an inline plugin: the pipeline calls Handle for each matching
// event, in order within a chat, and applies the returned actions. An error
// is handled by the stage's onError policy (skip, retry, deadletter).
//
// ctx carries the call's deadline (the stage timeout, default 5 s); honour
// it. HostFrom(ctx) and Logger(ctx) give the host services and the logger.
type Handler interface {
	Handle(ctx context.Context, ev *Event) ([]Action, error)
}

// Sink is an asynchronous plugin fed through the daemon's durable outbox:
// one Deliver per (event, target) attempt, retried on the outbox's schedule
// until it returns OK or Fail. Deliveries are at least once: use Job.ID (stable
// across attempts) to make the effect idempotent.
type Sink interface {
	Deliver(ctx context.Context, job *Job) Result
}

// BatchSink is an optional addition to Sink for plugins that gain from
// seeing several deliveries at once (one request carrying many, a shared
// connection, a bulk insert). A daemon speaking protocol version 2 hands a
// sink its claimed jobs in batches; with a BatchSink the SDK passes each
// batch to DeliverBatch, otherwise it calls Deliver for each job of the
// batch, up to BatchConcurrency at a time. Older daemons call Deliver only,
// so a BatchSink still needs its Deliver.
//
// DeliverBatch returns one Result per job, in the jobs' order: a batch that
// partly fails is retried only for the jobs that failed, so answer each job
// for itself (one failing target must not fail the others). The jobs may
// have different targets. ctx ends a little before the daemon's deadline
// for the whole call, leaving time for the answer to reach it: jobs not
// attempted by then should be answered with Retry.
type BatchSink interface {
	DeliverBatch(ctx context.Context, jobs []*Job) []Result
}

// BatchConcurrency is how many Deliver calls of one batch the SDK runs at
// once for a Sink that is not a BatchSink.
const BatchConcurrency = 8

// Configurer receives the plugin's config block from config.yaml
// (plugins.NAME.config), decoded from YAML into JSON-like values: map[string]any,
// []any, string, float64, bool and nil. It is called once per process
// start, before any Handle or Deliver; an error stops the plugin from
// starting and is shown to the operator, so say what is wrong.
type Configurer interface {
	Configure(ctx context.Context, cfg map[string]any) error
}

// Describer tells the daemon who the plugin is. Without it the plugin is
// named after its executable, has no version and wants every event kind.
type Describer interface {
	Describe() Description
}

// Description is what a Describer reports. Capabilities (inline, sink) are
// not part of it: they follow from the interfaces the plugin implements.
type Description struct {
	// Name of the plugin (the operator chooses the name it is declared
	// under in config.yaml; this is the plugin's own).
	Name string
	// Version of the plugin, e.g. "1.2.0"; shown in GET /v1/plugins.
	Version string
	// Description is one line about what the plugin does.
	Description string
	// EventKinds are the kind patterns the plugin wants: an exact kind
	// ("message.received"), a family ("message.*") or "*". Empty means
	// every kind. The daemon does not call the plugin for other kinds.
	EventKinds []string
}

// Capability is a way the pipeline can use a plugin.
type Capability string

const (
	// CapabilityInline: the plugin is a Handler.
	CapabilityInline Capability = "inline"
	// CapabilitySink: the plugin is a Sink.
	CapabilitySink Capability = "sink"
)

// capabilities lists what impl implements.
func capabilities(impl any) []Capability {
	var caps []Capability
	if _, ok := impl.(Handler); ok {
		caps = append(caps, CapabilityInline)
	}
	if _, ok := impl.(Sink); ok {
		caps = append(caps, CapabilitySink)
	}
	return caps
}
