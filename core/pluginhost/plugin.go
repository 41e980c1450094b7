package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	plugin "github.com/hashicorp/go-plugin"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/sdk"
)

// State is where a plugin is in its life.
type State string

const (
	// StateStarting: the first launch is under way.
	StateStarting State = "starting"
	// StateRunning: the process is up, described and configured.
	StateRunning State = "running"
	// StateRestarting: the process exited or failed its health checks; a new
	// one is launched after a backoff. Calls fail with ErrUnavailable.
	StateRestarting State = "restarting"
	// StateStopped: the manager stopped it.
	StateStopped State = "stopped"
)

// Plugin is one declared plugin and its supervised process. The handle is
// stable across restarts: keep it, and calls reach whichever process is
// current. Methods are safe for concurrent use.
type Plugin struct {
	name string
	cfg  Config
	m    *Manager
	log  *slog.Logger
	host *hostServices

	mu        sync.RWMutex
	inst      *instance
	info      *sdk.PluginInfo // the last process's Describe, kept while it restarts
	state     State
	restarts  int
	lastErr   string
	lastErrAt time.Time

	handle, deliver callCounters
}

// instance is one launched process.
type instance struct {
	client  *plugin.Client
	rpc     *sdk.PluginClient
	info    *sdk.PluginInfo
	pid     int
	started time.Time
}

type callCounters struct{ calls, errors, timeouts atomic.Uint64 }

func (c *callCounters) record(err error) {
	c.calls.Add(1)
	if err != nil {
		c.errors.Add(1)
		if errors.Is(err, context.DeadlineExceeded) {
			c.timeouts.Add(1)
		}
	}
}

func (c *callCounters) snapshot() CallCounters {
	return CallCounters{Calls: c.calls.Load(), Errors: c.errors.Load(), Timeouts: c.timeouts.Load()}
}

// Name is the name the plugin is declared under.
func (p *Plugin) Name() string { return p.name }

func (p *Plugin) current() (*instance, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.inst == nil {
		return nil, fmt.Errorf("plugin %q is %s: %w", p.name, p.state, ErrUnavailable)
	}
	return p.inst, nil
}

// ProtocolVersion is the plugin protocol negotiated with the running
// process (2: batch delivery; 1: one delivery per call), 0 while none runs.
func (p *Plugin) ProtocolVersion() int {
	inst, err := p.current()
	if err != nil {
		return 0
	}
	return inst.rpc.ProtocolVersion()
}

// Wants reports whether the plugin asked for events of kind (Describe's
// event kinds; none means all). False while the plugin is not running.
func (p *Plugin) Wants(kind event.Kind) bool {
	inst, err := p.current()
	return err == nil && wants(inst.info, kind)
}

func wants(info *sdk.PluginInfo, kind event.Kind) bool {
	if len(info.EventKinds) == 0 {
		return true
	}
	for _, pat := range info.EventKinds {
		if event.MatchKind(pat, kind) {
			return true
		}
	}
	return false
}

// callCtx applies the plugin's timeout unless ctx already ends sooner.
func (p *Plugin) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := callTimeout(p.cfg)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// Handle makes an inline call: the event in, the resolved actions out. An
// event of a kind the plugin did not ask for is not sent and yields no
// actions. The call has the plugin's timeout (Config.Timeout) unless ctx
// ends sooner; a call cut by it returns an error matching
// context.DeadlineExceeded, promptly, and the process stays in use. While
// the plugin restarts, Handle fails at once with ErrUnavailable.
func (p *Plugin) Handle(ctx context.Context, ev *event.Event) ([]Action, error) {
	inst, err := p.current()
	if err != nil {
		p.handle.record(err)
		return nil, err
	}
	if !wants(inst.info, ev.Kind) {
		return nil, nil
	}
	cctx, cancel := p.callCtx(ctx)
	defer cancel()
	acts, err := inst.rpc.Handle(cctx, ev)
	if err == nil {
		var out []Action
		out, err = resolveActions(cctx, ev, acts, p.host.blobs)
		if err == nil {
			p.handle.record(nil)
			return out, nil
		}
	}
	err = fmt.Errorf("plugin %q: %w", p.name, err)
	p.handle.record(err)
	p.noteError(err)
	return nil, err
}

// Deliver makes one sink attempt of ev to target. ok is true when delivered.
// Otherwise permanent says the plugin gave up for good (dead-letter now),
// retryAfter is the plugin's requested delay (zero: the outbox's schedule)
// and err the reason. A call that did not complete (process gone,
// deadline, panic) is a retryable failure with err set. The job id the
// plugin sees is "{eventId}:{target}", stable across attempts.
func (p *Plugin) Deliver(ctx context.Context, ev *event.Event, target string, attempt int) (ok bool, retryAfter time.Duration, permanent bool, err error) {
	r := p.DeliverWith(ctx, ev, target, attempt, nil)
	return r.OK, r.RetryAfter, r.Permanent, r.Err
}

// DeliverResult is one sink attempt as DeliverWith reports it.
type DeliverResult struct {
	// OK: delivered. Otherwise Permanent says the plugin gave up for good
	// (dead-letter now), RetryAfter is its requested delay (zero: the
	// outbox's schedule) and Err the reason.
	OK         bool
	Permanent  bool
	RetryAfter time.Duration
	Err        error
	// DisableTarget, with Permanent: the target itself is gone (e.g. HTTP
	// 410); its owner stops delivering to it.
	DisableTarget bool
	// Status and Response are the target's answer for the attempt log
	// (e.g. the HTTP status and the start of the body), with any outcome.
	Status   int
	Response string
}

// Outbox is the attempt as the outbox records it: ok, fail (dead-letter
// now) or retry at the plugin's requested delay, with the target's answer.
func (r DeliverResult) Outbox() outbox.Result {
	res := outbox.Result{Status: r.Status, Response: r.Response, Err: r.Err}
	switch {
	case r.OK:
		res.Outcome, res.Err = outbox.OutcomeOK, nil
	case r.Permanent:
		res.Outcome = outbox.OutcomeFail
	default:
		res.Outcome, res.RetryAfter = outbox.OutcomeRetry, r.RetryAfter
	}
	return res
}

// DeliverWith is Deliver with the target's settings (targetConfig, JSON,
// handed to the plugin as Job.TargetConfig) and the plugin's whole answer:
// status, response and the disable flag as well.
func (p *Plugin) DeliverWith(ctx context.Context, ev *event.Event, target string, attempt int, targetConfig []byte) DeliverResult {
	inst, err := p.current()
	if err != nil {
		p.deliver.record(err)
		return DeliverResult{Err: err}
	}
	if !wants(inst.info, ev.Kind) {
		return DeliverResult{OK: true}
	}
	cctx, cancel := p.callCtx(ctx)
	defer cancel()
	res, err := inst.rpc.Deliver(cctx, &sdk.Job{ID: ev.ID + ":" + target, Event: ev, Target: target, Attempt: attempt, TargetConfig: targetConfig})
	if err != nil {
		err = fmt.Errorf("plugin %q: %w", p.name, err)
		p.deliver.record(err)
		p.noteError(err)
		return DeliverResult{Err: err}
	}
	return p.result(res)
}

// result is the plugin's verdict on one attempt, counted.
func (p *Plugin) result(res sdk.Result) DeliverResult {
	out := DeliverResult{Status: res.Status, Response: res.Response}
	switch res.Outcome {
	case sdk.OutcomeOK:
		p.deliver.record(nil)
		out.OK = true
	case sdk.OutcomeFail:
		out.Err = fmt.Errorf("plugin %q: permanent failure: %w", p.name, res.Err)
		p.deliver.record(out.Err)
		out.Permanent, out.DisableTarget = true, res.DisableTarget
	default:
		out.Err = fmt.Errorf("plugin %q: %w", p.name, res.Err)
		p.deliver.record(out.Err)
		out.RetryAfter = res.RetryAfter
	}
	return out
}

// MaxBatch is the most jobs one DeliverBatch call to a plugin carries;
// DeliverBatch splits longer lists into calls of this size.
const MaxBatch = 64

// BatchJob is one job of DeliverBatch: an attempt of Event to Target with
// the target's settings (JSON, handed to the plugin as Job.TargetConfig).
type BatchJob struct {
	Event        *event.Event
	Target       string
	Attempt      int
	TargetConfig []byte
}

// DeliverBatch makes one sink attempt of each job and answers each, in
// order, as DeliverWith would. A plugin speaking protocol version 2 gets
// the jobs in calls of up to MaxBatch (made concurrently), each call with
// the plugin's timeout; a version-1 plugin gets one Deliver per job, all
// concurrently — the caller bounds how many jobs it hands over. A call that
// does not complete is a retryable failure of its jobs only; every other
// outcome is per job, so one failing target never fails another's jobs.
func (p *Plugin) DeliverBatch(ctx context.Context, jobs []BatchJob) []DeliverResult {
	out := make([]DeliverResult, len(jobs))
	inst, err := p.current()
	if err != nil {
		for i := range out {
			p.deliver.record(err)
			out[i] = DeliverResult{Err: err}
		}
		return out
	}
	// Kinds the plugin did not ask for are done without a call.
	var send []int
	for i, j := range jobs {
		if wants(inst.info, j.Event.Kind) {
			send = append(send, i)
		} else {
			out[i] = DeliverResult{OK: true}
		}
	}
	var wg sync.WaitGroup
	if inst.rpc.ProtocolVersion() < 2 {
		for _, i := range send {
			wg.Add(1)
			go func() {
				defer wg.Done()
				j := jobs[i]
				out[i] = p.DeliverWith(ctx, j.Event, j.Target, j.Attempt, j.TargetConfig)
			}()
		}
		wg.Wait()
		return out
	}
	for len(send) > 0 {
		chunk := send[:min(len(send), MaxBatch)]
		send = send[len(chunk):]
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.deliverChunk(ctx, inst, jobs, chunk, out)
		}()
	}
	wg.Wait()
	return out
}

// deliverChunk makes one DeliverBatch call with jobs[idx...] and writes
// their results to out[idx...].
func (p *Plugin) deliverChunk(ctx context.Context, inst *instance, jobs []BatchJob, idx []int, out []DeliverResult) {
	sj := make([]*sdk.Job, len(idx))
	for k, i := range idx {
		j := jobs[i]
		sj[k] = &sdk.Job{ID: j.Event.ID + ":" + j.Target, Event: j.Event, Target: j.Target, Attempt: j.Attempt, TargetConfig: j.TargetConfig}
	}
	cctx, cancel := p.callCtx(ctx)
	defer cancel()
	res, err := inst.rpc.DeliverBatch(cctx, sj)
	if err == nil && len(res) != len(idx) {
		err = fmt.Errorf("DeliverBatch answered %d results for %d jobs", len(res), len(idx))
	}
	if err != nil {
		p.noteError(fmt.Errorf("plugin %q: %w", p.name, err))
	}
	if len(res) != len(idx) {
		for _, i := range idx {
			p.deliver.record(err)
			out[i] = DeliverResult{Err: fmt.Errorf("plugin %q: %w", p.name, err)}
		}
		return
	}
	for k, i := range idx {
		out[i] = p.result(res[k])
	}
}

func (p *Plugin) noteError(err error) {
	p.mu.Lock()
	p.lastErr, p.lastErrAt = err.Error(), time.Now().UTC()
	p.mu.Unlock()
}

// launch starts a process, checks the handshake, describes and configures
// it. Errors name the plugin and say what to do.
func (p *Plugin) launch(ctx context.Context) (*instance, error) {
	path := p.cfg.Path
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("plugin %q: plugins.%s.path: %w", p.name, p.name, err)
	}
	cmd := exec.Command(path, p.cfg.Args...)
	cmd.Env = []string{sdk.LogLevelEnv + "=" + p.m.logLevel, sdk.HostPIDEnv + "=" + strconv.Itoa(os.Getpid())}
	dieWithHost(cmd)
	// Mutual TLS on P-256 certificates made here (sdk.TLSEnv says why not
	// go-plugin's AutoMTLS); PLUGIN_CLIENT_CERT is AutoMTLS's variable, which
	// a plugin built with an older SDK answers with a certificate of its own.
	tlsEnv, hostCert, tlsConfig, err := sdk.HostTLS()
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %w", p.name, err)
	}
	cmd.Env = append(cmd.Env, sdk.TLSEnv+"="+tlsEnv, "PLUGIN_CLIENT_CERT="+hostCert)
	cc := &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.VersionedPlugins(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		TLSConfig:        tlsConfig,
		Managed:          true,
		StartTimeout:     p.m.opts.StartTimeout,
		Logger:           newHCLog(p.log),
	}
	if p.cfg.SHA256 != "" {
		sum, err := decodeHex(p.cfg.SHA256)
		if err != nil {
			return nil, fmt.Errorf("plugin %q: plugins.%s.sha256: %w", p.name, p.name, err)
		}
		cc.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: newSHA256()}
	}
	client := plugin.NewClient(cc)
	inst, err := p.handshake(ctx, client)
	if err != nil {
		client.Kill()
		return nil, err
	}
	return inst, nil
}

func (p *Plugin) handshake(ctx context.Context, client *plugin.Client) (*instance, error) {
	rpc, err := client.Client()
	if err != nil {
		return nil, p.startError(err)
	}
	raw, err := rpc.Dispense(sdk.PluginKey)
	if err != nil {
		return nil, fmt.Errorf("plugin %q (%s): %w", p.name, p.cfg.Path, err)
	}
	pc, ok := raw.(*sdk.PluginClient)
	if !ok {
		return nil, fmt.Errorf("plugin %q: dispensed %T, not a Wildcat plugin client", p.name, raw)
	}
	cctx, cancel := context.WithTimeout(ctx, p.m.opts.StartTimeout)
	defer cancel()
	info, err := pc.Describe(cctx)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: describe: %w", p.name, err)
	}
	if len(info.Capabilities) == 0 {
		return nil, fmt.Errorf("plugin %q: it reports neither the inline nor the sink capability", p.name)
	}
	for _, pat := range info.EventKinds {
		if err := event.ValidateKindPattern(pat); err != nil {
			return nil, fmt.Errorf("plugin %q: Describe's event kinds: %w", p.name, err)
		}
	}
	if err := pc.Configure(cctx, p.name, p.cfg.Config, p.host); err != nil {
		return nil, fmt.Errorf("plugin %q rejected its configuration (plugins.%s.config): %w", p.name, p.name, err)
	}
	inst := &instance{client: client, rpc: pc, info: info, started: time.Now().UTC()}
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	return inst, nil
}

// startError explains go-plugin's start failures.
func (p *Plugin) startError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "incompatible API version"):
		return fmt.Errorf("plugin %q (%s) speaks an incompatible plugin protocol version; this daemon speaks versions %d to %d of wildcat.plugin.v1 — rebuild the plugin with a matching sdk: %w",
			p.name, p.cfg.Path, sdk.MinProtocolVersion, sdk.ProtocolVersion, err)
	case strings.Contains(msg, "Unrecognized remote plugin message"),
		strings.Contains(msg, "exited before we could connect"),
		strings.Contains(msg, "timeout while waiting for plugin to start"),
		strings.Contains(msg, "incompatible core API version"):
		return fmt.Errorf("plugin %q: %s is not a Wildcat plugin (no go-plugin handshake; build it with sdk.Serve): %w", p.name, p.cfg.Path, err)
	case strings.Contains(msg, "checksums did not match"):
		return fmt.Errorf("plugin %q: %s does not match plugins.%s.sha256: %w", p.name, p.cfg.Path, p.name, err)
	}
	return fmt.Errorf("plugin %q (%s): start: %w", p.name, p.cfg.Path, err)
}

// supervise watches inst until it exits, fails its health checks or ctx
// ends; it returns why the instance is gone (nil when ctx ended).
func (p *Plugin) supervise(ctx context.Context, inst *instance) error {
	t := time.NewTicker(p.m.opts.HealthInterval)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-inst.rpc.Done():
			return errors.New("plugin process exited")
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, p.m.opts.HealthTimeout)
		err := inst.rpc.Health(hctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			failures = 0
			continue
		}
		failures++
		p.log.Warn("plugin health check failed", slog.Int("failures", failures), slog.Any("error", err))
		if failures >= p.m.opts.HealthFailures {
			// A process that stopped answering does not answer go-plugin's
			// graceful shutdown either, and client.Kill waits for that
			// without a deadline: end the process first, or it is never
			// replaced.
			if proc, perr := os.FindProcess(inst.pid); perr == nil {
				_ = proc.Kill()
			}
			return fmt.Errorf("%d health checks failed in a row, last: %w", failures, err)
		}
	}
}

// run supervises the first instance and every replacement until ctx ends.
func (p *Plugin) run(ctx context.Context, inst *instance) {
	backoff := p.m.opts.RestartBackoff.Min
	for {
		why := p.supervise(ctx, inst)
		if why == nil {
			return // stopping; Stop kills the process
		}
		up := time.Since(inst.started)
		p.mu.Lock()
		p.inst, p.state = nil, StateRestarting
		p.restarts++
		p.lastErr, p.lastErrAt = why.Error(), time.Now().UTC()
		p.mu.Unlock()
		p.log.Error("plugin down; restarting", slog.Any("error", why), slog.Duration("uptime", up))
		inst.client.Kill()
		if up > p.m.opts.RestartBackoff.Max {
			backoff = p.m.opts.RestartBackoff.Min
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.m.opts.after(backoff):
			}
			backoff = min(backoff*2, p.m.opts.RestartBackoff.Max)
			next, err := p.launch(ctx)
			if err == nil {
				inst = next
				break
			}
			if ctx.Err() != nil {
				return
			}
			p.noteError(err)
			p.log.Error("plugin restart failed", slog.Any("error", err), slog.Duration("next_attempt_in", backoff))
		}
		if !p.setRunning(ctx, inst) {
			return
		}
		p.log.Info("plugin restarted", slog.String("version", inst.info.Version), slog.Int("pid", inst.pid))
	}
}

// setRunning publishes inst, unless the manager is stopping (then it kills
// inst and reports false).
func (p *Plugin) setRunning(ctx context.Context, inst *instance) bool {
	p.mu.Lock()
	if ctx.Err() != nil {
		p.mu.Unlock()
		inst.client.Kill()
		return false
	}
	p.inst, p.info, p.state = inst, inst.info, StateRunning
	p.mu.Unlock()
	return true
}

// stop kills the current process. Safe to call more than once.
func (p *Plugin) stop() {
	p.mu.Lock()
	inst := p.inst
	p.inst, p.state = nil, StateStopped
	p.mu.Unlock()
	if inst != nil {
		inst.client.Kill() // asks politely, kills after 2 s
	}
}
