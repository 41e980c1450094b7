// Package daemon owns wildcatd's lifecycle: it wires the components
// together, starts them, waits for a stop signal and stops them within a
// deadline. Tests start the same core in-process with Start/Shutdown and no
// signal handling.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/apikeys"
	"github.com/wildcathub/wildcat/core/clock"
	"github.com/wildcathub/wildcat/core/cluster"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/configcheck"
	"github.com/wildcathub/wildcat/core/dashboard"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/logging"
	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/netguard"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/outgoing"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/stream"
	"github.com/wildcathub/wildcat/core/throttle"
)

// ErrNotReady is returned by Ready until start-up has finished; callers
// (the /readyz probe) should try again later.
var ErrNotReady = errors.New("start-up not finished")

// Options tunes a Daemon beyond its configuration.
type Options struct {
	Logger *slog.Logger
	// NoSignals makes Run ignore SIGINT/SIGTERM; it then stops only when its
	// context ends. For embedding the daemon in tests and other programs.
	NoSignals bool
	// WatchInterval is how often the store connection is checked for the
	// log; 0 means 5 s.
	WatchInterval time.Duration
	// Sim tunes the simulator network (pairing and receipt delays); its DB
	// and Logger are filled in by the daemon.
	Sim sim.Options
	// OnEvent sees every event once it is stored and queued for the
	// pipeline; an error fails the session's Emit (WhatsApp is not acked).
	OnEvent func(ctx context.Context, ev *event.Event) error
	// Sinks adds outbox sink targets (name → sink) that pipeline stages can
	// name with sink: name. No sinks are built in yet; tests register theirs.
	Sinks map[string]outbox.Sink
	// OutboxSchedule replaces the outbox's default retry schedule (tests use
	// a short one); OutboxPoll is how often an idle sink looks for due
	// retries (default 1 s).
	OutboxSchedule *outbox.Schedule
	OutboxPoll     time.Duration
	// LoadConfig re-reads the configuration (file, environment, flags) for
	// ReloadConfig: POST /v1/pipeline/reload without a body and changes of
	// ConfigFile, which is watched when set. nil: the pipeline changes only
	// through a reload that carries the stages.
	LoadConfig func() (config.Config, error)
	ConfigFile string
	// ConnectRetryMin and ConnectRetryMax bound the backoff between failed
	// session starts; zero means 1 s and 1 min.
	ConnectRetryMin, ConnectRetryMax time.Duration
	// WhatsApp tunes the whatsmeow driver: its HTTP clients (tests point
	// them at the protocol double) and its reconnect backoff. Devices, DB
	// and Logger are filled in by the daemon.
	WhatsApp whatsapp.Driver
	// PluginHost tunes the plugin host (health checks, restart backoff,
	// launch timeout); Plugins, Services and Logger are filled in by the
	// daemon from config.yaml's plugins block.
	PluginHost pluginhost.Options
	// WrapMediaFetch, when set, wraps the plugins' media fetcher (tests
	// inject corrupted and expired downloads); see mediaarchive.go.
	WrapMediaFetch func(pluginhost.MediaFetcher) pluginhost.MediaFetcher
	// Console receives the first admin API key, once (wildcatd: stderr);
	// nil: only data_dir/admin.key has it.
	Console io.Writer
	// AuthFailed hears of every failed API authentication (rate limits).
	AuthFailed api.AuthFailure
	// Clock times send pacing and the API's rate limits; nil is the system
	// clock (tests move a fake one).
	Clock clock.Clock
	// Version is this build's version, shown in GET /v1/instances.
	Version string
	// InstanceID names this daemon among those sharing a MongoDB
	// database; empty: hostname-pid-random.
	InstanceID string
	// Resolver looks up host names for the SSRF guard of webhook
	// registration and rules' ctx.http.fetch; nil: the system's resolver
	// (tests answer for example.com names without a network).
	Resolver netguard.Resolver
}

// Daemon is one running wildcatd.
type Daemon struct {
	cfg      config.Config
	opts     Options
	log      *slog.Logger
	store    *store.Store
	sql      *sqlite.DB        // the embedded engine; nil on MongoDB
	waAuth   *authstore.SQLite // whatsmeow's sqlstore on sql; nil on MongoDB
	api      *api.Server
	messages *messages.Store
	// keys seal content at rest (sealing.go); nil when encryption is off.
	keys     *sealing.Keyring
	sessions *session.Manager
	sim      *sim.Network
	media    media.Store
	// served is what GET /v1/media serves: media, then the media
	// archive's s3 target (mediaarchive.go).
	served   servedMedia
	sender   *outgoing.Sender
	pacer    *throttle.Pacer
	clock    clock.Clock
	idem     *messages.Idempotency
	registry *pipeline.Registry
	engine   *pipeline.Engine
	outbox   *outbox.Outbox
	dispatch *outbox.Dispatcher
	rules    *ruleHost
	plugins  *pluginhost.Manager
	pluginKV pluginhost.KV
	webhooks *webhookHost
	apiKeys  *apikeys.Keyring // nil when http.auth is off
	hub      *stream.Hub
	metrics  *prometheus.Registry
	// cluster holds the account leases on MongoDB (cluster.go); nil on
	// the embedded engine.
	cluster       *cluster.Cluster
	clusterOnce   sync.Once
	clusterCancel context.CancelFunc
	clusterDone   chan struct{}
	startedAt     time.Time

	pipelineMetrics *pipeline.Metrics
	outboxMetrics   *outbox.Metrics

	// The dispatcher runs apart from the other background work: it must
	// outlive the sessions and the pipeline drain at shutdown.
	dispatchCancel context.CancelFunc
	dispatchDone   chan struct{}

	reloadMu sync.Mutex // one configuration reload at a time

	ready    atomic.Bool
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup

	startOnce    sync.Once
	shutdownOnce sync.Once
	shutdownErr  error
}

// New opens the store (starting the embedded engine when no URI is set)
// and builds the API. Nothing listens until Start.
func New(cfg config.Config, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = logging.Discard()
	}
	if opts.WatchInterval <= 0 {
		opts.WatchInterval = 5 * time.Second
	}
	// What config.Load could not check on its own (wildcatd's commands
	// have checked it already, with configcheck.Load); the pipeline is
	// checked below against the stage kinds this daemon offers.
	if err := configcheck.Settings(&cfg); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, opts: opts, log: logging.Component(opts.Logger, "daemon"), clock: opts.Clock,
		startedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if d.clock == nil {
		d.clock = clock.Real{}
	}
	// One engine: MongoDB when a URI is configured, else the embedded
	// SQLite database in data_dir.
	if cfg.MongoDB.URI != "" {
		st, err := store.Open(store.Options{
			URI:      cfg.MongoDB.URI,
			Database: cfg.MongoDB.Database,
			Logger:   logging.Component(opts.Logger, "store"),
		})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		d.store = st
	}
	// From here on a failure must close what it opened.
	err := d.openSQLite(context.Background())
	if err == nil {
		err = d.build(cfg, opts)
	}
	if err != nil {
		if d.store != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = d.store.Close(sctx)
		}
		if d.waAuth != nil {
			_ = d.waAuth.Close()
		}
		if d.sql != nil {
			_ = d.sql.Close()
		}
		return nil, err
	}
	d.bgCtx, d.bgCancel = context.WithCancel(context.Background())
	return d, nil
}

// build creates the components on the open store.
func (d *Daemon) build(cfg config.Config, opts Options) error {
	st := d.store
	if err := d.buildMetrics(); err != nil {
		return err
	}
	d.hub = stream.New(0, 0)
	d.buildCluster(cfg)
	if d.sql != nil {
		d.messages = messages.NewSQLite(d.sql, logging.Component(opts.Logger, "messages"))
	} else {
		d.messages = messages.New(st.DB(), logging.Component(opts.Logger, "messages"))
	}
	if err := d.buildSealing(cfg); err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sched := opts.OutboxSchedule
	if sched == nil {
		sched = outboxSchedule(cfg.Outbox)
	}
	obOpts := outbox.Options{
		Schedule: sched,
		Lease:    cfg.Outbox.Lease,
		// The attempt log keeps the first 4 KiB of a response (webhooks).
		ResponseLimit: 4096,
		Logger:        logging.Component(opts.Logger, "outbox"),
		// Events wait in the outbox with their content sealed.
		Payload: messages.NewEventSealer(d.keys),
	}
	var (
		ob  *outbox.Outbox
		err error
	)
	if d.sql != nil {
		ob, err = outbox.OpenSQLite(d.sql, obOpts)
	} else {
		// MongoDB is shared by every daemon on it: claims are leased in
		// the database, never held in one daemon's memory.
		ob, err = outbox.Open(octx, st.DB(), obOpts)
	}
	if err != nil {
		return fmt.Errorf("open outbox: %w", err)
	}
	d.outbox = ob
	if err := d.registerOutboxStats(ob); err != nil {
		return err
	}
	poll := cfg.Outbox.PollInterval
	if opts.OutboxPoll > 0 {
		poll = opts.OutboxPoll
	}
	d.dispatch = outbox.NewDispatcher(ob, outbox.DispatcherOptions{
		PollInterval: poll,
		Retention:    cfg.Outbox.Retention,
		Logger:       logging.Component(opts.Logger, "outbox"),
		Metrics:      d.outboxMetrics,
	})
	simOpts := opts.Sim
	simOpts.Auth, simOpts.Logger = d.simAuth(), logging.Component(opts.Logger, "sim")
	if d.cluster != nil {
		simOpts.Auth = guardedSimAuth{AuthStore: simOpts.Auth, guard: d.clusterGuard()}
	}
	simOpts.Groups = d.simGroups()
	if simOpts.NetworkURL == "" {
		simOpts.NetworkURL = cfg.Drivers.Sim.NetworkURL
	}
	if simOpts.PairDelay == 0 {
		simOpts.PairDelay = cfg.Drivers.Sim.PairDelay
	}
	d.sim = sim.New(simOpts)
	d.sessions = session.NewManager(session.ManagerOptions{
		Accounts:   d.accountStore(),
		ForgetAuth: d.forgetAuth,
		Messages:   d.messages,
		Logger:     logging.Component(opts.Logger, "sessions"),
		OnEvent:    d.onEvent,
		// Per account, before its session opens: live events of a chat
		// cannot overtake its recovered ones, and a daemon that takes an
		// account over recovers exactly that account. d.engine is set
		// below, before any session starts (Start).
		BeforeOpen: d.recover,
		RetryMin:   opts.ConnectRetryMin,
		RetryMax:   opts.ConnectRetryMax,
		// On MongoDB only the accounts whose lease this daemon holds run
		// here, and their writes are fenced (cluster.go).
		Owns:  d.clusterOwns(),
		Guard: d.clusterGuard(),
	})
	drivers, err := d.drivers()
	if err != nil {
		return err
	}
	for _, drv := range drivers {
		d.sessions.Register(drv)
	}
	// Stage kinds: every component registers what it offers (rules,
	// plugins, sinks) before the configured pipeline is checked against
	// them. Each component's wiring lives in its own file of this package.
	d.registry = pipeline.NewRegistry()
	d.registerRules()
	for name, sink := range opts.Sinks {
		d.registry.RegisterSink(name)
		d.dispatch.Handle(name, sink, cfg.Outbox.Concurrency)
	}
	if err := d.buildMedia(cfg); err != nil {
		return err
	}
	if err := d.buildPlugins(cfg, opts); err != nil {
		return err
	}
	if err := d.buildWebhooks(cfg, opts); err != nil {
		return err
	}
	if err := configcheck.Pipeline(&cfg, d.registry); err != nil {
		return err
	}
	// On the embedded engine an event's outbox jobs commit with its done
	// mark (txProgress); MongoDB stores them one after the other.
	var progress pipeline.Progress = tracedMarks{d.messages}
	if d.sql != nil {
		progress = txProgress{db: d.sql, messages: d.messages, outbox: ob}
	}
	d.engine, err = pipeline.New(pipeline.Options{
		Registry:    d.registry,
		Stages:      cfg.Pipeline,
		Sender:      sessionSender{d},
		ReadMarker:  sessionSender{d},
		Annotator:   d.messages,
		Failures:    failureRecorder{d.messages},
		Enqueuer:    ob,
		DeadLetters: ob,
		Progress:    progress,
		Logger:      logging.Component(opts.Logger, "pipeline"),
		Metrics:     d.pipelineMetrics,
		Observe:     d.hub.Publish,
		Trace:       true,
		// Message events recovered before their account's session opened
		// run once it has connected (or has had sessionStartWait to do so);
		// account events (a pairing session's QR codes) never wait.
		AwaitAccount: func(ctx context.Context, ev *event.Event) {
			if messages.Recoverable(ev) {
				d.sessions.AwaitStarted(ctx, ev.AccountID, sessionStartWait)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	if d.sql != nil {
		d.idem = messages.NewIdempotencySQLite(d.sql, cfg.HTTP.IdempotencyTTL)
	} else {
		d.idem = messages.NewIdempotency(st.DB(), cfg.HTTP.IdempotencyTTL)
	}
	d.idem.Seal(d.keys)
	if err := d.buildPacer(cfg); err != nil {
		return err
	}
	d.sender = outgoing.New(outgoing.Options{
		Sessions:  d.sessions,
		Store:     d.messages,
		Logger:    logging.Component(opts.Logger, "send"),
		Workers:   cfg.Send.Workers,
		QueueSize: cfg.Send.QueueSize,
		Pacer:     d.pacer,
		Clock:     d.clock,
	})
	if err := d.buildKeys(cfg); err != nil {
		return fmt.Errorf("api keys: %w", err)
	}
	if d.sql != nil {
		// The embedded database is open: the first admin key exists before
		// the API listens. On MongoDB start-up makes it once the server
		// answers.
		if err := d.bootstrapKey(octx); err != nil {
			return fmt.Errorf("api keys: %w", err)
		}
	}
	proxies, _, err := api.ParseTrustedProxies(cfg.HTTP.TrustedProxies) // checked by config.Validate
	if err != nil {
		return fmt.Errorf("http.trusted_proxies: %w", err)
	}
	d.api = api.New(api.Options{
		Logger:       logging.Component(opts.Logger, "api"),
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Ready:        d.Ready,
		Accounts:     d.sessions,
		Sim:          d.sim,
		Channels:     d.sessions,
		Groups:       d.sessions,
		Messages:     d.messages,
		Sender:       d.sender,
		Media:        d.served,
		Fetcher: media.NewFetcher(media.FetchOptions{
			MaxBytes: cfg.Media.MaxBytes, Timeout: cfg.Media.FetchTimeout,
			AllowPrivate: cfg.Media.FetchAllowPrivate,
		}),
		Idempotency:    d.idem,
		Pipeline:       d.engine,
		Deliveries:     ob,
		Traces:         d.messages,
		Webhooks:       d.webhooks.reg,
		Plugins:        d.plugins,
		MediaArchive:   d,
		Rules:          d.rules,
		Events:         d.hub,
		StoredEvents:   d.messages,
		ConfigReloader: configReloader{d},
		Metrics:        promhttp.HandlerFor(d.metrics, promhttp.HandlerOpts{Registry: d.metrics}),
		UI:             dashboard.Handler(),
		MetricsOpen:    metricsOpen(cfg.HTTP),
		Keys:           d.apiKeyring(),
		AuthFailed:     opts.AuthFailed,
		TrustedProxies: proxies,
		TLSCertFile:    cfg.HTTP.TLSCertFile,
		TLSKeyFile:     cfg.HTTP.TLSKeyFile,
		RateLimiter:    rateLimiter(cfg.HTTP.RateLimits, d),
		Hosts:          d.apiHosts(cfg),
		AllowedOrigins: cfg.HTTP.AllowedOrigins,
		ReadTimeout:    cfg.HTTP.ReadTimeout,
		UploadTimeout:  cfg.HTTP.UploadTimeout,
		RuleDirs:       cfg.EffectiveRuleDirs(),
		Cluster:        d.apiCluster(),
	})
	return nil
}

// configReloader offers ReloadConfig to the API only when the daemon has a
// configuration source; otherwise a reload must carry its stages.
type configReloader struct{ d *Daemon }

func (c configReloader) ReloadConfig(ctx context.Context) error {
	err := c.d.ReloadConfig(ctx)
	if errors.Is(err, ErrNoConfigSource) {
		return api.Invalid("stages", "is required: this daemon has no configuration file to re-read")
	}
	return err
}

// outboxSchedule is the retry schedule config.yaml declares; full jitter
// and a one-second floor on a sink's Retry-After are not configurable.
func outboxSchedule(c config.Outbox) *outbox.Schedule {
	s := outbox.DefaultSchedule()
	s.Delays = c.Retries
	s.Every, s.MaxAge, s.MaxRetryAfter = c.RetryEvery, c.MaxAge, c.MaxRetryAfter
	return &s
}

// onEvent is the session manager's hook: every stored event enters the
// pipeline. A failed Submit (shutting down, or the caller's context ended
// while the queue was full) fails Emit, so the driver does not acknowledge
// the event. The event itself is already stored, unfinished: a redelivery
// submits it again, and so does recovery (recover) at the account's next
// session start.
//
// While the daemon stops, the pipeline takes no new events but the sessions
// stay open for the drain's replies, whose message.sent events arrive here.
// An event stored as a message document of its own is then accepted without
// entering the pipeline: it stays unprocessed and recovery runs it after the
// next start — so a reply sent during the drain succeeds instead of failing
// its stage. Other events (receipts) are refused as before.
func (d *Daemon) onEvent(ctx context.Context, ev *event.Event) error {
	if err := d.engine.Submit(ctx, ev); err != nil {
		if errors.Is(err, pipeline.ErrClosed) && messages.Recoverable(ev) {
			return nil
		}
		return fmt.Errorf("pipeline intake: %w", err)
	}
	if d.opts.OnEvent != nil {
		return d.opts.OnEvent(ctx, ev)
	}
	return nil
}

// sessionStartWait bounds how long after an account's session began
// starting the pipeline holds the account's events for it to connect.
const sessionStartWait = 30 * time.Second

// recover submits the account's stored events the pipeline had not
// finished (the previous daemon died, or its drain ran out of time).
func (d *Daemon) recover(ctx context.Context, accountID string) error {
	n, err := d.engine.Recover(ctx, d.messages, accountID)
	if n > 0 {
		d.log.Info("unfinished events resubmitted to the pipeline", slog.String("account", accountID), slog.Int("count", n))
	}
	return err
}

var _ pipeline.Unprocessed = (*messages.Store)(nil)

// sessionSender sends pipeline replies through the paced sender: at once
// through the account's session when the account's slot is now (the
// driver's message.sent event stores them), else stored as pending and
// sent at the slot.
type sessionSender struct{ d *Daemon }

func (s sessionSender) Send(ctx context.Context, accountID string, req *session.SendRequest) error {
	return s.d.pacedSend(ctx, accountID, req)
}

// MarkRead is the pipeline's ReadMarker: the read receipt of the event's
// message (a rule's ctx.markRead), through the account's session.
func (s sessionSender) MarkRead(ctx context.Context, ev *event.Event) error {
	m := ev.Message
	if m == nil || m.MessageID == "" {
		return fmt.Errorf("a %s event has no message", ev.Kind)
	}
	chat := m.ChatID
	if chat == "" {
		chat = ev.ChatID
	}
	return s.d.sessions.MarkRead(ctx, ev.AccountID, chat, m.From, []string{m.MessageID})
}

// failureRecorder stores the pipeline's failed actions on the event's
// message (its failures list).
type failureRecorder struct{ s *messages.Store }

func (r failureRecorder) RecordFailures(ctx context.Context, ev *event.Event, fs []pipeline.ActionFailure) error {
	out := make([]messages.ActionFailure, len(fs))
	for i, f := range fs {
		out[i] = messages.ActionFailure{Stage: f.Stage, Action: string(f.Action), Index: f.Index, Origin: f.Origin,
			Error: f.Err.Error(), Attempts: f.Attempts, At: f.At}
	}
	return r.s.RecordFailures(ctx, ev.ID, out)
}

// drivers lists the session drivers built into this wildcatd; an account
// naming any other known driver is kept but cannot connect.
func (d *Daemon) drivers() ([]session.Driver, error) {
	wa := d.opts.WhatsApp
	wa.MediaRetries = d.mediaRetries()
	if wa.Proxy == "" {
		wa.Proxy = d.cfg.Drivers.WhatsApp.Proxy
	}
	if wa.Resolver == nil {
		wa.Resolver = d.opts.Resolver
	}
	wa.Logger = logging.Component(d.opts.Logger, "whatsapp")
	if d.sql != nil {
		// The embedded engine: whatsmeow's own sqlstore on the database
		// file, on a handle of its own (sqlstore runs its own transactions).
		h, err := d.sql.Conn()
		if err != nil {
			return nil, fmt.Errorf("open whatsapp auth state: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		auth, err := authstore.OpenSQLite(ctx, h, whatsapp.NewWALogger(logging.Component(d.opts.Logger, "whatsmeow-store")))
		if err != nil {
			_ = h.Close()
			return nil, fmt.Errorf("open whatsapp auth state: %w", err)
		}
		d.waAuth = auth.Seal(d.keys)
		wa.Devices = func(accountID string) whatsapp.DeviceStore { return auth.Account(accountID) }
	} else {
		db := d.store.DB()
		wa.Devices = func(accountID string) whatsapp.DeviceStore {
			return authstore.New(db, accountID, nil).Seal(d.keys)
		}
	}
	return []session.Driver{
		d.sim,
		&wa,
	}, nil
}

// Sessions is the account manager.
func (d *Daemon) Sessions() *session.Manager { return d.sessions }

// Sim is the simulator network shared by the daemon's sim accounts.
func (d *Daemon) Sim() *sim.Network { return d.sim }

// Media is the media store.
func (d *Daemon) Media() media.Store { return d.media }

// Messages is the message store.
func (d *Daemon) Messages() *messages.Store { return d.messages }

// Pipeline is the event pipeline engine.
func (d *Daemon) Pipeline() *pipeline.Engine { return d.engine }

// Metrics is the daemon's Prometheus registry (GET /metrics); components
// register their collectors on it.
func (d *Daemon) Metrics() *prometheus.Registry { return d.metrics }

// Events is the live stream of events that finished the pipeline.
func (d *Daemon) Events() *stream.Hub { return d.hub }

// Outbox is the durable delivery queue of the pipeline's sink stages.
func (d *Daemon) Outbox() *outbox.Outbox { return d.outbox }

// Store is the daemon's database connection.
func (d *Daemon) Store() *store.Store { return d.store }

// Database is the embedded engine's database; nil on MongoDB.
func (d *Daemon) Database() *sqlite.DB { return d.sql }

// API is the daemon's HTTP server, e.g. for tests that add a route before Start.
func (d *Daemon) API() *api.Server { return d.api }

// Addr is the address the API listens on once started.
func (d *Daemon) Addr() string { return d.api.Addr() }

// Start begins serving HTTP at once (so /healthz answers and /readyz explains
// what is missing) and finishes start-up in the background: the store may
// still be unreachable, and the daemon waits for it rather than exiting.
func (d *Daemon) Start() error {
	err := errors.New("daemon already started")
	d.startOnce.Do(func() {
		// Plugins run before anything can call them: sessions (inline
		// stages), the outbox dispatcher (sink jobs). A plugin that does not
		// start fails Start, naming it.
		if err = d.startPlugins(); err != nil {
			return
		}
		if err = d.api.Listen(d.cfg.HTTP.Addr); err != nil {
			return
		}
		d.log.Info("http listening", slog.String("addr", d.api.Addr()), slog.Bool("tls", d.cfg.HTTP.TLSCertFile != ""), slog.Bool("auth", d.apiKeys != nil))
		d.goBackground(d.startup)
		dctx, cancel := context.WithCancel(context.Background())
		d.dispatchCancel, d.dispatchDone = cancel, make(chan struct{})
		go func() {
			defer close(d.dispatchDone)
			if err := d.dispatch.Run(dctx); err != nil {
				d.log.Error("outbox dispatcher stopped", slog.Any("error", err))
			}
		}()
		d.goBackground(every(time.Hour, d.sweepIdempotency))
		d.goBackground(every(time.Hour, d.purgeTraces))
		d.goBackground(every(d.webhooks.sync, d.webhooks.refresh))
		d.goBackground(every(time.Minute, d.failStaleSends))
		d.goBackground(every(24*time.Hour, d.purgeSendCounts))
		d.goBackground(every(mediaRetentionInterval, d.retainMedia))
		d.goBackground(d.sweepMedia)
		d.goBackground(d.rules.supervise)
		d.goBackground(every(ruleKVSweepInterval, d.sweepRuleKV))
		d.goBackground(every(pluginKVSweepInterval, d.sweepPluginKV))
		if d.store != nil {
			d.goBackground(func(ctx context.Context) { d.store.Watch(ctx, d.opts.WatchInterval, nil) })
		}
		if d.opts.ConfigFile != "" && d.opts.LoadConfig != nil {
			d.goBackground(d.watchConfig)
		}
	})
	return err
}

func (d *Daemon) goBackground(f func(ctx context.Context)) {
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		f(d.bgCtx)
	}()
}

// startup prepares the store and starts the accounts, retrying with
// backoff until it succeeds or the daemon stops.
func (d *Daemon) startup(ctx context.Context) {
	declared := make([]session.AccountSpec, 0, len(d.cfg.Accounts))
	for _, a := range d.cfg.Accounts {
		declared = append(declared, session.AccountSpec{ID: a.ID, Driver: a.Driver, Name: a.Name, Proxy: a.Proxy})
	}
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var err error
		if d.store != nil {
			// MongoDB: collections and indexes, once the server answers.
			err = d.store.EnsureSchema(actx)
			if err == nil {
				err = d.outbox.EnsureIndexes(actx)
			}
		}
		if err == nil {
			// Webhook endpoints are known before any event can arrive.
			err = d.webhooks.load(actx)
		}
		if err == nil {
			err = d.bootstrapKey(actx)
		}
		if err == nil {
			err = d.sessions.Start(actx, declared)
		}
		if err == nil && d.cluster != nil {
			// The declared accounts exist now: place them and start this
			// daemon's share.
			err = d.startCluster(actx)
			if err == nil {
				err = d.sessions.Start(actx, nil)
			}
		}
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("store not ready; retrying", slog.Int("attempt", attempt), slog.Duration("retry_in", backoff), slog.Any("error", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	d.ready.Store(true)
	d.log.Info("ready", slog.String("addr", d.api.Addr()), slog.String("engine", d.engineName()))
}

// sweepIdempotency deletes expired Idempotency-Key records: the embedded
// engine has no TTL indexes, so expiry is this explicit job.
func (d *Daemon) sweepIdempotency(ctx context.Context) {
	if n, err := d.idem.Sweep(ctx); err != nil && ctx.Err() == nil {
		d.log.Warn("idempotency sweep failed", slog.Any("error", err))
	} else if n > 0 {
		d.log.Debug("idempotency keys expired", slog.Int64("count", n))
	}
}

// every runs job each interval, after a first wait, until ctx ends: the
// embedded engine has no TTL indexes, so expiry and clean-up are jobs.
func every(interval time.Duration, job func(ctx context.Context)) func(ctx context.Context) {
	return func(ctx context.Context) {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			job(ctx)
		}
	}
}

// staleSendAge is how old a pending send must be before it is declared
// failed: far beyond a live send's timeout (2 min), so a send still running
// on another daemon sharing the database is never touched.
const staleSendAge = 10 * time.Minute

// failStaleSends marks failed the sends a dead daemon stored as pending but
// never finished, so clients learn they did not happen and can resend.
func (d *Daemon) failStaleSends(ctx context.Context) {
	cutoff := time.Now().Add(-staleSendAge)
	// Sends waiting for their paced slot are pending for as long as they
	// wait: spare them.
	if oldest, ok := d.sender.OldestWaiting(); ok && oldest.Before(cutoff) {
		cutoff = oldest
	}
	n, err := d.messages.FailStalePending(ctx, cutoff, "the daemon stopped before the send was finished; send it again")
	if err != nil && ctx.Err() == nil {
		d.log.Warn("stale send sweep failed", slog.Any("error", err))
	} else if n > 0 {
		d.log.Warn("sends left pending by a stopped daemon marked failed", slog.Int("count", n))
	}
}

// Ready reports nil when start-up is done and the store answers.
func (d *Daemon) Ready(ctx context.Context) error {
	if !d.ready.Load() {
		return ErrNotReady
	}
	if d.store == nil {
		return nil // the embedded database is a file: open means reachable
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := d.store.Ping(ctx); err != nil {
		return errors.New("store unreachable")
	}
	return nil
}

// engineName is the store engine in use, for logs.
func (d *Daemon) engineName() string {
	if d.sql != nil {
		return "sqlite"
	}
	return "mongodb"
}

// Shutdown stops accepting requests, drains in-flight work until ctx ends,
// stops background work and closes the store. It is idempotent: later calls
// return the first call's result.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.shutdownOnce.Do(func() {
		d.log.Info("shutting down")
		d.ready.Store(false)
		var errs []error
		// The reverse of the data flow. First intake: the API (sim inbound,
		// sends) and the background jobs stop; then the pipeline stops
		// taking events and drains while everything its stages need — the
		// sessions for replies, the plugins, the outbox — is still open.
		// What it cannot finish by the deadline stays stored, unprocessed,
		// and recovery runs it after the next start; from then on the
		// sessions' events are stored for recovery (onEvent).
		if err := d.api.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		d.bgCancel()
		done := make(chan struct{})
		go func() { d.bg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("background work still running: %w", ctx.Err()))
		}
		if err := d.engine.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain pipeline: %w", err))
		}
		// Queued sends go out while the sessions are still open.
		if err := d.sender.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close sender: %w", err))
		}
		// Sessions close before the store so their last events are stored;
		// closing does not log out, so the accounts resume on the next start.
		if err := d.sessions.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close sessions: %w", err))
		}
		// The leases go back once the sessions are closed.
		d.stopCluster()
		if err := d.sim.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close sim network: %w", err))
		}
		// The dispatcher hands back its in-flight jobs for the next start.
		if d.dispatchCancel != nil {
			d.dispatchCancel()
			<-d.dispatchDone
		}
		// Plugins stop last: the drain and the dispatcher's last attempts
		// may still have called them.
		if err := d.stopPlugins(); err != nil {
			errs = append(errs, err)
		}
		// The store gets its own short deadline: even after a drain that ran
		// out of time, closing it cleanly keeps the embedded files consistent.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if d.store != nil {
			if err := d.store.Close(sctx); err != nil {
				errs = append(errs, fmt.Errorf("close store: %w", err))
			}
		}
		// whatsmeow's handle closes before the file's own, whose close
		// checkpoints the WAL.
		if d.waAuth != nil {
			if err := d.waAuth.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close whatsapp auth state: %w", err))
			}
		}
		if d.sql != nil {
			if err := d.sql.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close embedded database: %w", err))
			}
		}
		d.shutdownErr = errors.Join(errs...)
		if d.shutdownErr != nil {
			d.log.Warn("stopped with errors", slog.Any("error", d.shutdownErr))
		} else {
			d.log.Info("stopped")
		}
	})
	return d.shutdownErr
}

// Run starts the daemon, waits for SIGINT/SIGTERM (unless NoSignals) or for
// ctx to end, and shuts down within shutdown_timeout.
func (d *Daemon) Run(ctx context.Context) error {
	// Signals are caught before anything starts: Start serves /readyz
	// before it returns, and a SIGTERM in between would otherwise kill the
	// process instead of stopping it.
	stop := func() {}
	if !d.opts.NoSignals {
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	}
	if err := d.Start(); err != nil {
		stop()
		_ = d.Shutdown(context.Background())
		return err
	}
	<-ctx.Done()
	// Restore default signal handling: a second Ctrl-C during a slow drain
	// kills the process, as operators expect.
	stop()
	d.log.Info("stop requested", slog.Duration("deadline", d.cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	return d.Shutdown(sctx)
}
