package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/sdk/webhooks"
)

// ErrNoPlugin: no webhook plugin is configured; deliveries wait in the
// outbox (retried) until one is.
var ErrNoPlugin = errors.New("no webhook plugin is running (declare plugins.webhook in config.yaml)")

// BatchDeliverer is a Deliverer that takes several attempts in one call:
// *pluginhost.Plugin is one (one gRPC call for a plugin speaking protocol
// version 2, one call per attempt for a version-1 plugin).
type BatchDeliverer interface {
	Deliverer
	DeliverBatch(ctx context.Context, jobs []pluginhost.BatchJob) []pluginhost.DeliverResult
}

// Sink delivers the outbox jobs of every endpoint target ("webhook:<id>").
// The daemon registers it once per endpoint with the dispatcher, which
// gives each endpoint its own claim loop. It is an outbox.BatchSink: the
// jobs claimed together reach the webhook plugin in one call.
func (r *Registry) Sink() outbox.Sink { return sink{r} }

type sink struct{ r *Registry }

func (s sink) Deliver(ctx context.Context, job *outbox.Job) outbox.Result {
	return s.r.deliver(ctx, job)
}

func (s sink) DeliverBatch(ctx context.Context, jobs []*outbox.Job) []outbox.Result {
	return s.r.deliverBatch(ctx, jobs)
}

// endpointFor is the enabled endpoint of job's target, or the job's final
// answer when there is none.
func (r *Registry) endpointFor(ctx context.Context, job *outbox.Job) (*Endpoint, *outbox.Result) {
	answer := func(res outbox.Result) (*Endpoint, *outbox.Result) { return nil, &res }
	id, ok := EndpointID(job.Target)
	if !ok {
		return answer(outbox.Fail(fmt.Errorf("%q is not a webhook endpoint target", job.Target)))
	}
	if job.Event == nil {
		return answer(outbox.Fail(errors.New("the job carries no event")))
	}
	e := r.cached(id)
	if e == nil {
		var err error
		if e, err = r.Get(ctx, id); err != nil {
			if errors.Is(err, ErrNotFound) {
				return answer(outbox.Fail(fmt.Errorf("webhook endpoint %q was deleted", id)))
			}
			return answer(outbox.Retry(err))
		}
		r.remember(e)
	}
	if !e.Enabled {
		return answer(outbox.Fail(fmt.Errorf("webhook endpoint %q is disabled (%s); replay its dead letters once it is enabled again", id, e.DisabledReason)))
	}
	return e, nil
}

// deliverBatch makes one attempt of each job: those of endpoints without a
// rate limit in one call to the plugin (the batch option then decides
// whether the plugin posts them as one request), those of rate-limited
// endpoints one by one at the limit's pace. Each job gets its own result;
// each endpoint's health is recorded once for the batch.
func (r *Registry) deliverBatch(ctx context.Context, jobs []*outbox.Job) []outbox.Result {
	out := make([]outbox.Result, len(jobs))
	r.mu.RLock()
	bd, _ := r.opts.Deliverer.(BatchDeliverer)
	r.mu.RUnlock()
	var wg sync.WaitGroup
	var send []int
	var calls []pluginhost.BatchJob
	eps := make([]*Endpoint, len(jobs))
	cfgs := map[string][]byte{}
	for i, job := range jobs {
		e, res := r.endpointFor(ctx, job)
		switch {
		case res != nil:
			out[i] = *res
			continue
		case bd == nil || e.RateLimit > 0:
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i] = r.deliver(ctx, job)
			}()
			continue
		}
		cfg, ok := cfgs[e.ID]
		if !ok {
			var err error
			if cfg, err = r.targetConfig(e); err != nil {
				out[i] = outbox.Fail(err)
				continue
			}
			cfgs[e.ID] = cfg
		}
		eps[i] = e
		send = append(send, i)
		calls = append(calls, pluginhost.BatchJob{Event: job.Event, Target: job.Target, Attempt: job.Attempts, TargetConfig: cfg})
	}
	if len(calls) > 0 {
		health := map[string]attemptResult{}
		var order []*Endpoint
		for k, pr := range bd.DeliverBatch(ctx, calls) {
			i := send[k]
			res := attemptResult{Result: pr.Outbox(), disable: pr.Permanent && pr.DisableTarget}
			out[i] = res.Result
			e := eps[i]
			prev, seen := health[e.ID]
			if !seen {
				order = append(order, e)
			}
			// The endpoint's health for the batch: any success clears its
			// failure streak; a 410 disables it; otherwise it failed.
			if !seen || res.disable || (res.Outcome == outbox.OutcomeOK && !prev.disable) {
				health[e.ID] = res
			}
		}
		for _, e := range order {
			r.health(ctx, e, health[e.ID])
		}
	}
	wg.Wait()
	return out
}

func (r *Registry) deliver(ctx context.Context, job *outbox.Job) outbox.Result {
	e, final := r.endpointFor(ctx, job)
	if final != nil {
		return *final
	}
	r.mu.RLock()
	lim := r.limiters[e.ID]
	r.mu.RUnlock()
	if lim != nil {
		// Wait for a token within the attempt's deadline; a longer wait
		// hands the job back, due when the token is (not a failure of the
		// endpoint, so its health is untouched).
		rv := lim.Reserve()
		d := rv.Delay()
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d+r.opts.Timeout {
			rv.Cancel()
			return outbox.RetryAfter(d, fmt.Errorf("held back by the endpoint's rate limit (%g/s)", e.RateLimit))
		}
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				rv.Cancel()
				return outbox.Retry(fmt.Errorf("held back by the endpoint's rate limit (%g/s): %w", e.RateLimit, ctx.Err()))
			}
		}
	}
	res := r.attempt(ctx, e, job.Event, job.Target, job.Attempts)
	r.health(ctx, e, res)
	return res.Result
}

// attemptResult is one attempt's outcome with the plugin's disable flag.
type attemptResult struct {
	outbox.Result
	disable bool
}

// attempt hands one event to the plugin with e's settings.
func (r *Registry) attempt(ctx context.Context, e *Endpoint, ev *event.Event, target string, n int) attemptResult {
	r.mu.RLock()
	d := r.opts.Deliverer
	r.mu.RUnlock()
	if d == nil {
		return attemptResult{Result: outbox.Retry(ErrNoPlugin)}
	}
	cfg, err := r.targetConfig(e)
	if err != nil {
		return attemptResult{Result: outbox.Fail(err)}
	}
	pr := d.DeliverWith(ctx, ev, target, n, cfg)
	return attemptResult{Result: pr.Outbox(), disable: pr.Permanent && pr.DisableTarget}
}

// targetConfig is what the plugin gets with each attempt to e.
func (r *Registry) targetConfig(e *Endpoint) ([]byte, error) {
	return json.Marshal(webhooks.Target{
		EndpointID: e.ID, URL: e.URL, Secrets: e.secrets(r.now()), Headers: e.Headers,
		TimeoutMS: r.opts.Timeout.Milliseconds(), AllowPrivate: r.opts.AllowPrivate, Batch: e.Batch,
	})
}

// health records an attempt: a success clears the failure streak; a
// failure starts it, and disables the endpoint once it lasted
// DisableAfter; a 410 disables at once.
func (r *Registry) health(ctx context.Context, e *Endpoint, res attemptResult) {
	if ctx.Err() != nil && res.Outcome != outbox.OutcomeOK {
		return // shutting down: not the endpoint's fault
	}
	now := r.now()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	switch {
	case res.Outcome == outbox.OutcomeOK:
		if e.FailingSince != nil {
			r.setFailingSince(wctx, e, nil)
		}
	case res.disable:
		r.disable(wctx, e, fmt.Sprintf("the receiver answered %d: %v", res.Status, res.Err), now)
	case e.FailingSince == nil:
		r.setFailingSince(wctx, e, &now)
	case now.Sub(*e.FailingSince) >= r.opts.DisableAfter:
		r.disable(wctx, e, fmt.Sprintf("every attempt failed since %s (webhooks.disable_after %s); last: %v",
			e.FailingSince.Format(time.RFC3339), r.opts.DisableAfter, res.Err), now)
	}
}

func (r *Registry) setFailingSince(ctx context.Context, e *Endpoint, t *time.Time) {
	if err := r.st.SetFailingSince(ctx, e.ID, t); err != nil {
		r.log.Warn("recording webhook endpoint health failed", slog.String("endpoint", e.ID), slog.Any("error", err))
		return
	}
	c := *e
	c.FailingSince = t
	r.mu.Lock()
	if cur := r.cache[e.ID]; cur != nil && cur.UpdatedAt.Equal(e.UpdatedAt) {
		r.cache[e.ID] = &c
	}
	r.mu.Unlock()
}

// disable turns the endpoint off and announces it with a webhook.disabled
// event — once: only the writer that flipped enabled does.
func (r *Registry) disable(ctx context.Context, e *Endpoint, reason string, now time.Time) {
	flipped, err := r.st.Disable(ctx, e.ID, reason, now)
	if err != nil {
		r.log.Warn("disabling a webhook endpoint failed", slog.String("endpoint", e.ID), slog.Any("error", err))
		return
	}
	c := *e
	c.Enabled, c.DisabledReason, c.DisabledAt, c.UpdatedAt = false, reason, &now, now
	r.remember(&c)
	if !flipped {
		return // already disabled, by another daemon or attempt
	}
	r.log.Warn("webhook endpoint disabled", slog.String("endpoint", e.ID), slog.String("url", e.URL), slog.String("reason", reason))
	ev := &event.Event{
		ID: fmt.Sprintf("webhook.disabled:%s:%d", e.ID, now.UnixMilli()), Kind: KindDisabled, Timestamp: now,
		Source: event.SourceAPI, Annotations: map[string]string{"endpointId": e.ID, "url": e.URL, "reason": reason},
	}
	targets := r.Targets(ev)
	if len(targets) == 0 || r.opts.Enqueuer == nil {
		return
	}
	if err := r.opts.Enqueuer.Enqueue(ctx, ev, targets...); err != nil {
		r.log.Warn("queueing webhook.disabled failed", slog.String("endpoint", e.ID), slog.Any("error", err))
	}
}

// Test sends a webhook.test event to the endpoint now, outside the outbox
// (no retries, no effect on its health), and returns the attempt. An
// attempt that failed is still an answer: its result says how.
func (r *Registry) Test(ctx context.Context, id string) (*outbox.Attempt, error) {
	e, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	start := r.now()
	ev := &event.Event{
		ID: "webhook.test:" + uuid.NewString(), Kind: KindTest, Timestamp: start, Source: event.SourceAPI,
		Annotations: map[string]string{"endpointId": e.ID},
	}
	began := time.Now()
	res := r.attempt(ctx, e, ev, e.Target(), 1)
	a := &outbox.Attempt{At: start, DurationMS: time.Since(began).Milliseconds(), Result: res.Outcome, Status: res.Status, Response: res.Response}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	return a, nil
}
