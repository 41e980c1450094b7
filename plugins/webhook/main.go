// Command webhook is Wildcat's webhook delivery plugin: a sink that POSTs
// each event to one endpoint per outbox job, signed per the Standard
// Webhooks specification (see sdk/webhooks). The daemon's webhook registry
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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// Webhook is the plugin.
type Webhook struct {
	public, private *http.Client
	userAgent       string
	// now is the signing clock (tests).
	now func() time.Time
}

// New returns the plugin with its two HTTP clients: one guarded against
// non-public addresses, one not (for endpoints when private targets are
// allowed).
func New() *Webhook {
	return &Webhook{public: newClient(false), private: newClient(true), userAgent: "Wildcat-Webhooks/" + version, now: time.Now}
}

func newClient(allowPrivate bool) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			// No proxy from the environment: the guard must see the address
			// actually dialled, not a proxy's.
			Proxy:                 nil,
			DialContext:           netguard.NewDialer(10*time.Second, allowPrivate).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   16,
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

// Describe names the plugin; it wants every kind (the registry filters).
func (w *Webhook) Describe() sdk.Description {
	return sdk.Description{Name: "webhook", Version: version, Description: "Delivers events to webhook endpoints, signed per Standard Webhooks"}
}

// Configure accepts an optional user_agent.
func (w *Webhook) Configure(_ context.Context, cfg map[string]any) error {
	for k, v := range cfg {
		switch k {
		case "user_agent":
			s, ok := v.(string)
			if !ok || strings.TrimSpace(s) == "" {
				return fmt.Errorf("config.user_agent: must be a non-empty string")
			}
			w.userAgent = s
		default:
			return fmt.Errorf("config.%s: unknown key (known: user_agent)", k)
		}
	}
	return nil
}

// Deliver makes one POST.
func (w *Webhook) Deliver(ctx context.Context, job *sdk.Job) sdk.Result {
	var t webhooks.Target
	if err := json.Unmarshal(job.TargetConfig, &t); err != nil || t.URL == "" || len(t.Secrets) == 0 {
		return sdk.Fail(fmt.Errorf("target %q: no usable endpoint settings in the job (%v)", job.Target, err))
	}
	body, err := webhooks.Render(job.Event)
	if err != nil {
		return sdk.Fail(fmt.Errorf("render the event: %w", err))
	}
	ts := w.now()
	sig, err := webhooks.SignAll(t.Secrets, job.Event.ID, ts, body)
	if err != nil {
		return sdk.Fail(fmt.Errorf("sign: %w", err))
	}
	timeout := time.Duration(t.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, t.URL, strings.NewReader(string(body)))
	if err != nil {
		return sdk.Fail(fmt.Errorf("build the request: %w", err))
	}
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.userAgent)
	req.Header.Set(webhooks.HeaderID, job.Event.ID)
	req.Header.Set(webhooks.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(webhooks.HeaderSignature, sig)

	client := w.public
	if t.AllowPrivate {
		client = w.private
	}
	resp, err := client.Do(req)
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
