package daemon

// The plugin host's wiring: config.yaml's plugins block becomes a
// pluginhost.Manager whose plugins are pipeline stage kinds (inline
// handlers) and outbox sink targets, both under the plugin's name.
//
// Life cycle: build registers every declared plugin as both inline and sink
// (what a plugin can do is known only once it runs) so the configured
// pipeline compiles; Start launches the processes before the API listens and
// before any session or the outbox dispatcher runs, then re-registers each
// plugin with the capabilities it reported and checks the stages again — a
// stage asking a plugin for a mode it does not serve stops start-up with a
// *config.Error naming the stage. Shutdown stops the plugins last, after the
// pipeline drained and the dispatcher stopped, so in-flight calls finish.
//
// While a plugin restarts, its calls fail at once with
// pluginhost.ErrUnavailable: inline stages follow their onError policy and
// sink jobs are retried by the outbox on its schedule.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/configcheck"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/logging"
	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/outgoing"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/sdk"
)

// ErrPluginStart wraps a plugin that could not be started (missing file,
// not a plugin, another protocol version, rejected config): Start and Run
// return it, naming the plugin.
var ErrPluginStart = errors.New("plugins did not start")

// pluginStartTimeout bounds launching every plugin at start.
const pluginStartTimeout = 2 * time.Minute

// buildPlugins creates the plugin manager and registers each declared plugin
// with the pipeline registry and the outbox dispatcher. Nothing runs yet.
func (d *Daemon) buildPlugins(cfg config.Config, opts Options) error {
	po := opts.PluginHost
	po.Plugins = cfg.Plugins
	po.Logger = logging.Component(opts.Logger, "plugins")
	var db *mongo.Database
	if d.sql != nil {
		d.pluginKV = pluginhost.SealedKV(pluginhost.NewSQLiteKV(d.sql, nil), d.keys)
	} else {
		db = d.store.DB()
		d.pluginKV = pluginhost.SealedKV(pluginhost.NewMongoKV(db, nil), d.keys)
	}
	po.Services = pluginhost.Services{
		Sender:   pluginSender{d},
		Media:    d.mediaFetcher(pluginMedia{d}),
		Messages: pluginMessages{d},
		KV:       d.pluginKV,
		DB:       db,
		Blobs:    d.media,
		// The media archive's link back to the message (mediaarchive.go).
		Linker:       mediaLinker{d},
		BlobMaxBytes: cfg.Media.MaxBytes,
	}
	m, err := pluginhost.New(po)
	if err != nil {
		var ce *pluginhost.ConfigError
		if errors.As(err, &ce) {
			return &config.Error{Key: ce.Key, Problem: ce.Problem}
		}
		return fmt.Errorf("plugins: %w", err)
	}
	d.plugins = m
	for _, name := range m.Names() {
		// A plugin's sink jobs are the outbox target of its name.
		if d.registry.HasSink(name) {
			return &config.Error{Key: "plugins." + name, Problem: fmt.Sprintf("the name is taken by the sink %q (outbox targets share one namespace); rename the plugin", name)}
		}
		p, _ := m.Get(name)
		d.registry.RegisterPlugin(name, pluginFactory(p), true)
		d.dispatch.HandleWith(name, pluginSink{p}, outbox.HandleOptions{
			Concurrency: pluginhost.SinkConcurrency(cfg.Plugins[name]), PerChatOrder: cfg.Plugins[name].Ordered,
		})
	}
	return nil
}

// startPlugins launches every plugin and checks the configured stages
// against what the plugins reported they can do.
func (d *Daemon) startPlugins() error {
	if len(d.plugins.Names()) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(d.bgCtx, pluginStartTimeout)
	defer cancel()
	if err := d.plugins.Start(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrPluginStart, err)
	}
	for _, st := range d.plugins.Status() {
		p, _ := d.plugins.Get(st.Name)
		var inline pipeline.Factory
		if slices.Contains(st.Capabilities, string(sdk.CapabilityInline)) {
			inline = pluginFactory(p)
		}
		sink := slices.Contains(st.Capabilities, string(sdk.CapabilitySink))
		d.registry.RegisterPlugin(st.Name, inline, sink)
		if !sink {
			// Jobs queued for it earlier stay queued.
			d.dispatch.Remove(st.Name)
		}
	}
	// The stages running are the configured ones: no reload can have
	// happened before Start.
	return configcheck.Pipeline(&d.cfg, d.registry)
}

// stopPlugins stops every plugin process: each is asked to exit and killed
// after 2 s. It gets a deadline of its own, like the store, so no process
// outlives the daemon even after a drain that ran out of time.
func (d *Daemon) stopPlugins() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.plugins.Stop(ctx); err != nil {
		return fmt.Errorf("stop plugins: %w", err)
	}
	return nil
}

// Plugins is the plugin host: the declared plugins and their state.
func (d *Daemon) Plugins() *pluginhost.Manager { return d.plugins }

// pluginFactory makes a plugin an inline stage.
func pluginFactory(p *pluginhost.Plugin) pipeline.Factory {
	return func(pipeline.StageConfig) (pipeline.InlineHandler, error) {
		return pipeline.HandlerFunc(func(ctx context.Context, ev *event.Event) ([]pipeline.Action, error) {
			acts, err := p.Handle(ctx, ev)
			if err != nil {
				return nil, err
			}
			return pipelineActions(acts)
		}), nil
	}
}

// pipelineActions converts a plugin's resolved actions. A reply quotes the
// event's message only when the plugin asked to (the host then filled in
// ReplyTo).
func pipelineActions(in []pluginhost.Action) ([]pipeline.Action, error) {
	out := make([]pipeline.Action, 0, len(in))
	for i, a := range in {
		switch a.Kind {
		case pluginhost.ActionReply:
			out = append(out, pipeline.Action{Type: pipeline.ActionReply, Send: a.Send, NoQuote: a.Send == nil || a.Send.ReplyTo == nil})
		case pluginhost.ActionSend:
			out = append(out, pipeline.Action{Type: pipeline.ActionSend, Send: a.Send})
		case pluginhost.ActionDrop:
			out = append(out, pipeline.Drop())
		case pluginhost.ActionTag:
			out = append(out, pipeline.Tag(a.Tags...))
		case pluginhost.ActionAnnotate:
			out = append(out, pipeline.Annotate(map[string]string{a.Key: a.Value}))
		case pluginhost.ActionRoute:
			out = append(out, pipeline.Route(a.Sinks...))
		default:
			return nil, fmt.Errorf("action %d: unknown kind %q", i, a.Kind)
		}
	}
	return out, nil
}

// pluginSink feeds a plugin its outbox jobs (target: the plugin's name).
type pluginSink struct{ p *pluginhost.Plugin }

func (s pluginSink) Deliver(ctx context.Context, job *outbox.Job) outbox.Result {
	if job.Event == nil {
		return outbox.Fail(errors.New("the job carries no event"))
	}
	// A plugin that is restarting fails at once (pluginhost.ErrUnavailable):
	// a retry, so the job waits in the outbox for the process to be back.
	return s.p.DeliverWith(ctx, job.Event, job.Target, job.Attempts, nil).Outbox()
}

// DeliverBatch makes pluginSink an outbox.BatchSink: the jobs claimed
// together reach the plugin in one call (protocol version 2), each with
// its own outcome.
func (s pluginSink) DeliverBatch(ctx context.Context, jobs []*outbox.Job) []outbox.Result {
	out := make([]outbox.Result, len(jobs))
	var send []int
	var batch []pluginhost.BatchJob
	for i, job := range jobs {
		if job.Event == nil {
			out[i] = outbox.Fail(errors.New("the job carries no event"))
			continue
		}
		send = append(send, i)
		batch = append(batch, pluginhost.BatchJob{Event: job.Event, Target: job.Target, Attempt: job.Attempts})
	}
	for k, r := range s.p.DeliverBatch(ctx, batch) {
		out[send[k]] = r.Outbox()
	}
	return out
}

// pluginSender is the Host's SendMessage: through the paced sender, as
// pipeline replies go; the driver's message.sent event stores the message
// with source plugin.
type pluginSender struct{ d *Daemon }

func (s pluginSender) Send(ctx context.Context, accountID string, req *session.SendRequest) (string, error) {
	if req.ID == "" {
		req.ID = outgoing.NewMessageID()
	}
	req.Source = event.SourcePlugin
	// Paced like every send: at once when the account's slot is now, else
	// queued for it (the id is the message's either way).
	if err := s.d.pacedSend(ctx, accountID, req); err != nil {
		if errors.Is(err, session.ErrAccountNotFound) {
			return "", fmt.Errorf("%w: %v", pluginhost.ErrNotFound, err)
		}
		return "", err
	}
	return req.ID, nil
}

// pluginMedia is the Host's FetchMedia: the stored copy of the message's
// media when there is one (media sent over the API), otherwise a download
// through the account's session.
type pluginMedia struct{ d *Daemon }

func (m pluginMedia) FetchMedia(ctx context.Context, accountID, messageID string) (io.ReadCloser, error) {
	msg, err := m.d.messages.Get(ctx, accountID, messageID)
	if err != nil {
		return nil, messageNotFound(err)
	}
	if msg.MediaID != "" {
		r, err := m.d.served.Open(ctx, msg.MediaID)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, media.ErrNotFound) {
			return nil, err
		}
	}
	if !msg.HasMedia {
		return nil, fmt.Errorf("message %s of account %s: %w", messageID, accountID, session.ErrNoMedia)
	}
	rc, err := m.d.sessions.DownloadMedia(ctx, accountID, messageID)
	return rc, messageNotFound(err)
}

// pluginMessages is the Host's GetMessage.
type pluginMessages struct{ d *Daemon }

func (g pluginMessages) GetMessage(ctx context.Context, accountID, messageID string) (*event.Message, error) {
	m, err := g.d.messages.Get(ctx, accountID, messageID)
	if err != nil {
		return nil, messageNotFound(err)
	}
	out := m.Message
	if out.Raw == nil {
		out.Raw = m.RawMessage
	}
	return &out, nil
}

// messageNotFound makes the message store's "no such message" the host's
// ErrNotFound, so it crosses the wire as such.
func messageNotFound(err error) error {
	if err != nil && errors.Is(err, messages.ErrNotFound) && !errors.Is(err, pluginhost.ErrNotFound) {
		return fmt.Errorf("%w: %v", pluginhost.ErrNotFound, err)
	}
	return err
}

// pluginKVSweepInterval is how often the plugins' expired keys are deleted
// (reads ignore them anyway; the sweep keeps them from piling up).
const pluginKVSweepInterval = 10 * time.Minute

// sweepPluginKV deletes the expired keys of every plugin.
func (d *Daemon) sweepPluginKV(ctx context.Context) {
	if n, err := d.pluginKV.Sweep(ctx); err != nil && ctx.Err() == nil {
		d.log.Warn("plugin kv sweep failed", slog.Any("error", err))
	} else if n > 0 {
		d.log.Debug("expired plugin kv entries deleted", slog.Int64("count", n))
	}
}
