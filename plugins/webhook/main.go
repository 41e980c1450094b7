// Command webhook is Wildcat's webhook delivery plugin: a sink that POSTs
// each event to one endpoint per outbox job, signed per the Standard
// Webhooks specification (see sdk/webhooks) — or, for an endpoint with
// batch on, the events of a batch as one JSON array signed as one body.
// It serves protocol version 2 (DeliverBatch): the daemon hands it the jobs
// it claimed together in one call, and it posts to every endpoint at once,
// at most config.endpoint_concurrency (default 8) requests in flight per
// endpoint, over one shared keep-alive transport. The daemon's webhook registry
// owns the endpoints and hands each attempt its endpoint's settings (URL,
// secrets, headers, timeout) as the job's target config; the plugin keeps
// no state of its own.
//
// Outcomes: 2xx delivered; 410 Gone disables the endpoint; 429, 5xx,
// network errors and timeouts are retried, honouring Retry-After; any other
// status is retried on the schedule too (the receiver may be mid-deploy),
// the attempt log saying why. A URL that resolves to a non-public address
// is refused at connect time unless private targets are allowed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wildcathub/wildcat/core/netguard"
	"github.com/wildcathub/wildcat/sdk"
	"github.com/wildcathub/wildcat/sdk/webhooks"
)

// version of the plugin, shown in the User-Agent and GET /v1/plugins.
const version = "1.0.0"

// ResponseLimit is how much of a response body is kept for the attempt log.
const ResponseLimit = 4096

// DefaultTimeout applies when a target names none.
const DefaultTimeout = 15 * time.Second

// DefaultEndpointConcurrency is how many requests the plugin has in flight
// to one endpoint at most, unless config.endpoint_concurrency says
// otherwise; MaxEndpointConcurrency is the most it accepts.
const (
	DefaultEndpointConcurrency = 8
	MaxEndpointConcurrency     = 256
)

// Webhook is the plugin.
type Webhook struct {
	userAgent string
	// concurrency bounds the requests in flight per endpoint.
	concurrency int
	// now is the signing clock (tests).
	now func() time.Time

	mu sync.Mutex
	// clients are shared by every endpoint and delivery: one keep-alive
	// transport per guard mode (allowPrivate false/true), made on first
	// use. A daemon uses one mode (webhooks.allow_private_targets), so in
	// practice one transport; two keep a connection dialled without the
	// guard from ever serving a request that needs it.
	clients map[bool]*http.Client
	// slots is each endpoint's semaphore of concurrency requests.
	slots map[string]chan struct{}
}

// New returns the plugin with its defaults.
func New() *Webhook {
	return &Webhook{userAgent: "Wildcat-Webhooks/" + version, concurrency: DefaultEndpointConcurrency, now: time.Now,
		clients: map[bool]*http.Client{}, slots: map[string]chan struct{}{}}
}

// client is the shared client of the guard mode.
func (w *Webhook) client(allowPrivate bool) *http.Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.clients[allowPrivate]
	if c == nil {
		c = newClient(allowPrivate, w.concurrency)
		w.clients[allowPrivate] = c
	}
	return c
}

func newClient(allowPrivate bool, perHost int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			// No proxy from the environment: the guard must see the address
			// actually dialled, not a proxy's.
			Proxy:               nil,
			DialContext:         netguard.NewDialer(10*time.Second, allowPrivate).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			// Keep-alive: an endpoint's connections stay open between
			// deliveries, as many as it may have requests in flight (below
			// that, a burst would close and reopen them).
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   max(perHost, 16),
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
			ExpectContinueTimeout: time.Second,
		},
		// A webhook is answered where it is sent: a redirect is an answer
		// like any other non-2xx (and following it would dodge the guard's
		// intent of pinning the registered URL).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// acquire takes one of the endpoint's request slots, or fails when ctx
// ends first.
func (w *Webhook) acquire(ctx context.Context, endpoint string) (release func(), err error) {
	w.mu.Lock()
	sem := w.slots[endpoint]
	if sem == nil {
		sem = make(chan struct{}, w.concurrency)
		w.slots[endpoint] = sem
	}
	w.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Describe names the plugin; it wants every kind (the registry filters).
func (w *Webhook) Describe() sdk.Description {
	return sdk.Description{Name: "webhook", Version: version, Description: "Delivers events to webhook endpoints, signed per Standard Webhooks"}
}

// Configure accepts an optional user_agent and endpoint_concurrency.
func (w *Webhook) Configure(_ context.Context, cfg map[string]any) error {
	for k, v := range cfg {
		switch k {
		case "user_agent":
			s, ok := v.(string)
			if !ok || strings.TrimSpace(s) == "" {
				return fmt.Errorf("config.user_agent: must be a non-empty string")
			}
			w.userAgent = s
		case "endpoint_concurrency":
			n, ok := v.(float64)
			if !ok || n != float64(int(n)) || n < 1 || n > MaxEndpointConcurrency {
				return fmt.Errorf("config.endpoint_concurrency: must be a whole number from 1 to %d (default %d), not %v", MaxEndpointConcurrency, DefaultEndpointConcurrency, v)
			}
			w.mu.Lock()
			w.concurrency = int(n)
			w.mu.Unlock()
		default:
			return fmt.Errorf("config.%s: unknown key (known: user_agent, endpoint_concurrency)", k)
		}
	}
	return nil
}

// parseTarget reads a job's endpoint settings.
func parseTarget(job *sdk.Job) (webhooks.Target, error) {
	var t webhooks.Target
	if err := json.Unmarshal(job.TargetConfig, &t); err != nil || t.URL == "" || len(t.Secrets) == 0 {
		return t, fmt.Errorf("target %q: no usable endpoint settings in the job (%v)", job.Target, err)
	}
	return t, nil
}

// endpointKey names an endpoint for its concurrency bound.
func endpointKey(t webhooks.Target) string {
	if t.EndpointID != "" {
		return t.EndpointID
	}
	return t.URL
}

// Deliver makes one POST (a daemon speaking protocol version 1 calls it per
// job; a batch endpoint then gets arrays of one).
func (w *Webhook) Deliver(ctx context.Context, job *sdk.Job) sdk.Result {
	t, err := parseTarget(job)
	if err != nil {
		return sdk.Fail(err)
	}
	return w.deliverGroup(ctx, t, []*sdk.Job{job})[0]
}

// DeliverBatch answers each job of a batch: the jobs of each endpoint with
// batch on are posted together as one JSON array; every other job gets its
// own POST. All endpoints are served at once, each with at most
// endpoint_concurrency requests in flight, so a slow or failing endpoint
// never holds up another's deliveries, and its failure is its jobs' alone.
func (w *Webhook) DeliverBatch(ctx context.Context, jobs []*sdk.Job) []sdk.Result {
	out := make([]sdk.Result, len(jobs))
	type group struct {
		t   webhooks.Target
		idx []int
	}
	var groups []*group
	byKey := map[string]*group{}
	for i, job := range jobs {
		t, err := parseTarget(job)
		if err != nil {
			out[i] = sdk.Fail(err)
			continue
		}
		// Jobs of one endpoint share its settings; a different secret or
		// URL (a rotation between claims) makes a group of its own.
		key := string(job.TargetConfig)
		g := byKey[key]
		if g == nil {
			g = &group{t: t}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}
	var wg sync.WaitGroup
	for _, g := range groups {
		if g.t.Batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				gj := make([]*sdk.Job, len(g.idx))
				for k, i := range g.idx {
					gj[k] = jobs[i]
				}
				for k, r := range w.deliverGroup(ctx, g.t, gj) {
					out[g.idx[k]] = r
				}
			}()
			continue
		}
		for _, i := range g.idx {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i] = w.deliverGroup(ctx, g.t, []*sdk.Job{jobs[i]})[0]
			}()
		}
	}
	wg.Wait()
	return out
}

// deliverGroup posts jobs to t's endpoint — one event as an envelope, or,
// for an endpoint with batch on, the events as one array — in one of the
// endpoint's slots, and answers every job with the request's outcome.
func (w *Webhook) deliverGroup(ctx context.Context, t webhooks.Target, jobs []*sdk.Job) []sdk.Result {
	all := func(r sdk.Result) []sdk.Result {
		out := make([]sdk.Result, len(jobs))
		for i := range out {
			out[i] = r
		}
		return out
	}
	var body []byte
	var id string
	var err error
	if t.Batch {
		evs := make([]*sdk.Event, len(jobs))
		ids := make([]string, len(jobs))
		for i, j := range jobs {
			evs[i], ids[i] = j.Event, j.Event.ID
		}
		body, err = webhooks.RenderBatch(evs)
		id = webhooks.BatchID(ids)
	} else {
		body, err = webhooks.Render(jobs[0].Event)
		id = jobs[0].Event.ID
	}
	if err != nil {
		return all(sdk.Fail(fmt.Errorf("render the event: %w", err)))
	}
	release, err := w.acquire(ctx, endpointKey(t))
	if err != nil {
		return all(sdk.Retry(fmt.Errorf("not attempted: the endpoint's requests in flight (config.endpoint_concurrency) took the call's time: %w", err)))
	}
	defer release()
	return all(w.post(ctx, t, id, body))
}

// post makes one signed POST of body under webhook-id id.
func (w *Webhook) post(ctx context.Context, t webhooks.Target, id string, body []byte) sdk.Result {
	ts := w.now()
	sig, err := webhooks.SignAll(t.Secrets, id, ts, body)
	if err != nil {
		return sdk.Fail(fmt.Errorf("sign: %w", err))
	}
	timeout := time.Duration(t.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return sdk.Fail(fmt.Errorf("build the request: %w", err))
	}
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.userAgent)
	req.Header.Set(webhooks.HeaderID, id)
	req.Header.Set(webhooks.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(webhooks.HeaderSignature, sig)

	resp, err := w.client(t.AllowPrivate).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop url.Error's `Post "…":` prefix
		}
		switch {
		case errors.Is(err, netguard.ErrForbidden):
			return sdk.Fail(fmt.Errorf("refused: %v (webhooks.allow_private_targets is off)", err))
		case rctx.Err() != nil && ctx.Err() == nil:
			return sdk.Retry(fmt.Errorf("timeout: no answer within %s", timeout))
		}
		return sdk.Retry(fmt.Errorf("network error: %v", err))
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, ResponseLimit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	res := classify(resp, w.now())
	res.Status, res.Response = resp.StatusCode, string(head)
	return res
}

// classify turns an HTTP answer into an outcome.
func classify(resp *http.Response, now time.Time) sdk.Result {
	code := resp.StatusCode
	status := fmt.Sprintf("HTTP %d %s", code, http.StatusText(code))
	retryAfter, hasRA := parseRetryAfter(resp.Header.Get("Retry-After"), now)
	retry := func(why string) sdk.Result {
		if hasRA {
			return sdk.RetryAfter(retryAfter, fmt.Errorf("%s: %s; Retry-After %s", status, why, retryAfter))
		}
		return sdk.Retry(fmt.Errorf("%s: %s", status, why))
	}
	switch {
	case code >= 200 && code < 300:
		return sdk.OK()
	case code == http.StatusGone:
		return sdk.Disable(fmt.Errorf("%s: the receiver says the endpoint is gone; it is disabled", status))
	case code == http.StatusTooManyRequests:
		return retry("rate limited by the receiver")
	case code >= 500:
		return retry("receiver error")
	case code >= 300 && code < 400:
		return retry("redirects are not followed; update the endpoint's URL (Location: " + resp.Header.Get("Location") + ")")
	default:
		return retry("refused by the receiver; retrying on the schedule in case it is mid-deploy")
	}
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func main() { sdk.Serve(New()) }
