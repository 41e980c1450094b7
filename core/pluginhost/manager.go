package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"sync"
	"time"

	"github.com/wildcathub/wildcat/core/logging"
)

// Options configure a Manager. Zero durations take the defaults below.
type Options struct {
	// Plugins are config.yaml's plugins block.
	Plugins map[string]Config
	// Services are served to every plugin (each with its own KV namespace).
	Services Services
	// Logger receives the manager's lines and, through go-plugin, each
	// plugin's stderr; every line carries plugin=NAME.
	Logger *slog.Logger

	// HealthInterval between gRPC health checks (default 5 s);
	// HealthTimeout of one check (default 2 s); after HealthFailures
	// failures in a row (default 3) the process is killed and restarted.
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	HealthFailures int
	// StartTimeout bounds one launch: handshake, Describe and Configure
	// (default 30 s).
	StartTimeout time.Duration
	// RestartBackoff is the delay before relaunching a process that exited:
	// Min, doubling per failed attempt up to Max (default 250 ms to 1 min);
	// it falls back to Min after a process ran longer than Max.
	RestartBackoff Backoff

	// after waits out a restart backoff: time.After, or a test's recorder.
	after func(time.Duration) <-chan time.Time
}

// Backoff is an exponential delay range.
type Backoff struct {
	Min, Max time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = logging.Discard()
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = 5 * time.Second
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 2 * time.Second
	}
	if o.HealthFailures <= 0 {
		o.HealthFailures = 3
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.RestartBackoff.Min <= 0 {
		o.RestartBackoff.Min = 250 * time.Millisecond
	}
	if o.RestartBackoff.Max < o.RestartBackoff.Min {
		o.RestartBackoff.Max = max(time.Minute, o.RestartBackoff.Min)
	}
	if o.after == nil {
		o.after = time.After
	}
}

// Manager launches the declared plugins, keeps them running and hands out
// their handles.
type Manager struct {
	opts     Options
	logLevel string
	plugins  map[string]*Plugin
	names    []string

	mu       sync.Mutex
	started  bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// New validates the declarations and prepares a Manager; nothing runs until
// Start.
func New(opts Options) (*Manager, error) {
	opts.defaults()
	if err := ValidateAll(opts.Plugins); err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, logLevel: levelName(opts.Logger), plugins: map[string]*Plugin{}, names: sortedKeys(opts.Plugins)}
	kv := opts.Services.KV
	if kv == nil && opts.Services.DB != nil {
		kv = NewMongoKV(opts.Services.DB, nil)
	}
	blobs := opts.Services.blobStore()
	for _, name := range m.names {
		m.plugins[name] = &Plugin{
			name:  name,
			cfg:   opts.Plugins[name],
			m:     m,
			log:   opts.Logger.With(slog.String("plugin", name)),
			host:  &hostServices{plugin: name, svc: opts.Services, kv: kv, blobs: blobs},
			state: StateStarting,
		}
	}
	return m, nil
}

// Start launches every plugin in parallel and returns once all are running.
// If any fails to start (missing file, not a plugin, protocol mismatch,
// rejected config) Start stops the others and returns the errors, each
// naming its plugin. Later exits are handled by restarting, not reported
// here. ctx bounds the launches only.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("plugin manager already started")
	}
	m.started = true
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.mu.Unlock()

	insts := make([]*instance, len(m.names))
	errs := make([]error, len(m.names))
	var wg sync.WaitGroup
	for i, name := range m.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts[i], errs[i] = m.plugins[name].launch(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, inst := range insts {
			if inst != nil {
				inst.client.Kill()
			}
		}
		cancel()
		return err
	}
	for i, name := range m.names {
		p := m.plugins[name]
		p.setRunning(runCtx, insts[i])
		p.log.Info("plugin started", slog.String("version", insts[i].info.Version),
			slog.Any("capabilities", insts[i].info.Capabilities), slog.Int("pid", insts[i].pid))
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			p.run(runCtx, insts[i])
		}()
	}
	return nil
}

// Stop ends supervision and stops every plugin process (each gets go-plugin's
// polite shutdown, then is killed after 2 s), in parallel, waiting at most
// until ctx ends. Calls after Stop fail with ErrUnavailable. Safe to call more
// than once and without Start.
func (m *Manager) Stop(ctx context.Context) error {
	var err error
	m.stopOnce.Do(func() {
		m.mu.Lock()
		cancel := m.cancel
		m.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		done := make(chan struct{})
		go func() {
			m.wg.Wait() // supervisors return promptly once cancelled
			var kills sync.WaitGroup
			for _, p := range m.plugins {
				kills.Add(1)
				go func() {
					defer kills.Done()
					p.stop()
				}()
			}
			kills.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("stop plugins: %w", ctx.Err())
		}
	})
	return err
}

// Get returns the plugin declared under name.
func (m *Manager) Get(name string) (*Plugin, bool) {
	p, ok := m.plugins[name]
	return p, ok
}

// Names lists the declared plugins in name order.
func (m *Manager) Names() []string { return append([]string(nil), m.names...) }

// Status snapshots every plugin, in name order.
func (m *Manager) Status() []Status {
	out := make([]Status, 0, len(m.names))
	for _, name := range m.names {
		out = append(out, m.plugins[name].Status())
	}
	return out
}

func decodeHex(s string) ([]byte, error) { return hex.DecodeString(s) }

func newSHA256() hash.Hash { return sha256.New() }
