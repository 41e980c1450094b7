package daemon

// Webhook delivery's wiring. The registry (core/webhooks) owns the
// endpoints; each endpoint is its own outbox target "webhook:<id>", so the
// dispatcher gives it its own claim loop and one slow endpoint never delays
// another. A pipeline stage "sink: webhooks" fans out to one job per
// enabled endpoint whose events and accounts filters match (the pipeline
// registry's fan-out hook). The HTTP requests are made by the webhook
// plugin, declared like any plugin under plugins.NAME (webhooks.plugin,
// default "webhook") and launched by the plugin host (plugins.go); the
// registry hands it each attempt's endpoint settings.
//
// Keeping the dispatcher in step: an endpoint created (here or, seen by the
// periodic refresh, by another daemon sharing the database) gets its
// target handled; a deleted one has it removed. A disabled endpoint keeps
// its target: its queued jobs are dead-lettered at their next attempt
// (replayable once it is enabled again) instead of waiting forever.
//
// Endpoints declared in config.yaml (webhooks.endpoints) are upserted and
// every endpoint loaded before any session starts, so no event is fanned
// out against an empty registry.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/logging"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// webhookHost is the daemon's side of webhook delivery.
type webhookHost struct {
	reg         *webhooks.Registry
	declared    []webhooks.Declared
	sync        time.Duration
	concurrency int
	log         *slog.Logger
	d           *Daemon

	mu sync.Mutex
	// handled: the endpoints the dispatcher handles, by id, and whether
	// in per-chat order.
	handled map[string]bool
}

// buildWebhooks creates the registry and registers the webhooks fan-out.
// It runs after buildPlugins: the webhook plugin is one of the declared
// plugins.
func (d *Daemon) buildWebhooks(cfg config.Config, opts Options) error {
	wc := cfg.Webhooks
	// Declared URLs are checked for their addresses here, so a refused one
	// stops start-up with its key instead of being retried as if the store
	// were down.
	for i, e := range wc.Endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := webhooks.ValidateURL(ctx, fmt.Sprintf("webhooks.endpoints[%d].url", i), e.URL, wc.AllowPrivateTargets, opts.Resolver)
		cancel()
		var fe *webhooks.FieldError
		if errors.As(err, &fe) {
			return &config.Error{Key: fe.Field, Problem: fe.Problem}
		}
	}
	h := &webhookHost{
		declared: wc.Endpoints, sync: wc.SyncInterval, concurrency: cfg.Outbox.Concurrency,
		log: logging.Component(opts.Logger, "webhooks"), d: d, handled: map[string]bool{},
	}
	h.reg = webhooks.New(webhooks.Options{
		Store:        d.endpointStore(),
		Enqueuer:     d.outbox,
		AllowPrivate: wc.AllowPrivateTargets,
		Resolver:     opts.Resolver,
		Timeout:      wc.Timeout,
		DisableAfter: wc.DisableAfter,
		Logger:       h.log,
		OnChange:     h.onChange,
	})
	if p, ok := d.plugins.Get(wc.Plugin); ok {
		h.reg.SetDeliverer(p)
		if t := pluginTimeout(cfg.Plugins[wc.Plugin]); t <= wc.Timeout {
			h.log.Warn("the webhook plugin's call timeout is not longer than webhooks.timeout: slow receivers are cut off by the plugin host first",
				slog.String("key", "plugins."+wc.Plugin+".timeout"), slog.Duration("plugin_timeout", t), slog.Duration("webhooks_timeout", wc.Timeout))
		}
	} else if len(wc.Endpoints) > 0 || stagesUse(cfg, webhooks.SinkName) {
		h.log.Warn("no webhook plugin declared: webhook deliveries wait in the outbox until one is",
			slog.String("key", "plugins."+wc.Plugin))
	}
	// A sink handed in by the embedding program under the same name (tests)
	// takes precedence over the fan-out.
	if _, taken := opts.Sinks[webhooks.SinkName]; !taken {
		d.registry.RegisterFanout(webhooks.SinkName, h.reg.Targets)
	}
	d.webhooks = h
	return nil
}

func pluginTimeout(c pluginhost.Config) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return pluginhost.DefaultTimeout
}

func stagesUse(cfg config.Config, sink string) bool {
	for _, st := range cfg.Pipeline {
		if st.Sink == sink {
			return true
		}
	}
	return false
}

// onChange keeps the dispatcher's targets in step with the registry.
func (h *webhookHost) onChange(ep *webhooks.Endpoint, deleted bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case deleted:
		h.d.dispatch.Remove(ep.Target())
		delete(h.handled, ep.ID)
	default:
		// Handled again only when its order changes: that restarts the
		// target's claim loop (attempts in flight are handed back).
		if ordered, ok := h.handled[ep.ID]; ok && ordered == ep.Ordered {
			return
		}
		h.d.dispatch.HandleWith(ep.Target(), h.reg.Sink(), outbox.HandleOptions{Concurrency: h.concurrency, PerChatOrder: ep.Ordered})
		h.handled[ep.ID] = ep.Ordered
	}
}

// load upserts the declared endpoints and loads every stored one; start-up
// runs it before the sessions start (and retries it with them).
func (h *webhookHost) load(ctx context.Context) error {
	if err := h.reg.Upsert(ctx, h.declared); err != nil {
		return err
	}
	return h.reg.Refresh(ctx)
}

// refresh picks up endpoints other daemons created, changed or deleted.
func (h *webhookHost) refresh(ctx context.Context) {
	if err := h.reg.Refresh(ctx); err != nil && ctx.Err() == nil {
		h.log.Warn("refreshing webhook endpoints failed", slog.Any("error", err))
	}
}

// Webhooks is the webhook endpoint registry.
func (d *Daemon) Webhooks() *webhooks.Registry { return d.webhooks.reg }

// EndpointStore is a store on the daemon's database holding its webhook
// endpoints (tests act through it as another daemon would).
func (d *Daemon) EndpointStore() webhooks.EndpointStore { return d.endpointStore() }

// endpointStore keeps the webhook endpoints on the daemon's engine, their
// secrets sealed when encryption is on.
func (d *Daemon) endpointStore() webhooks.EndpointStore {
	if d.sql != nil {
		return webhooks.Sealed(webhooks.NewSQLiteEndpoints(d.sql), d.keys)
	}
	return webhooks.Sealed(webhooks.NewMongoEndpoints(d.store.DB(), ""), d.keys)
}
