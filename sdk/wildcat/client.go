package wildcat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client calls one daemon's REST API. It is safe for concurrent use.
type Client struct {
	base *url.URL
	key  string
	http *http.Client
	ua   string
}

// Option configures a Client.
type Option func(*Client)

// WithKey sends key (wck_…) as the bearer token of every request. Without
// it no Authorization header is sent, which a daemon with http.auth off
// accepts.
func WithKey(key string) Option { return func(c *Client) { c.key = key } }

// WithHTTPClient uses hc for every request instead of a default client.
// Its Timeout, if any, also ends Events streams: leave it zero there and
// use the context instead.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.ua = ua } }

// New returns a client of the API at baseURL, e.g. "http://127.0.0.1:8080"
// (the daemon's http.addr; a path prefix in front of /v1 is kept).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("wildcat: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("wildcat: base URL %q is not an http(s) URL", baseURL)
	}
	c := &Client{base: u, http: http.DefaultClient, ua: "wildcat-go"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL is the URL the client was made with.
func (c *Client) BaseURL() string { return c.base.String() }

// request is one API call: method, path under /v1, query, JSON body.
type request struct {
	method string
	path   string
	query  url.Values
	body   any
	header http.Header
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	u := *c.base
	// r.path has its segments escaped (esc): keep them so, an id with a
	// "/" or "|" is one segment.
	raw := strings.TrimRight(c.base.EscapedPath(), "/") + "/v1" + r.path
	p, err := url.PathUnescape(raw)
	if err != nil {
		return nil, fmt.Errorf("wildcat: %s %s: %w", r.method, r.path, err)
	}
	u.Path, u.RawPath = p, raw
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("wildcat: %s %s: encode body: %w", r.method, r.path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("wildcat: %s %s: %w", r.method, r.path, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("User-Agent", c.ua)
	return req, nil
}

// do sends r and decodes a 2xx JSON answer into dst (nil: discard it).
func (c *Client) do(ctx context.Context, r request, dst any) error {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &TransportError{Method: r.method, URL: c.base.String(), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return decodeError(r.method, r.path, resp)
	}
	if dst == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		return fmt.Errorf("wildcat: %s %s: decode answer: %w", r.method, r.path, err)
	}
	return nil
}

// TransportError is a request that got no HTTP answer: the daemon is not
// running, the address is wrong, the connection broke.
type TransportError struct {
	Method, URL string
	Err         error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("cannot reach the Wildcat API at %s: %v", e.URL, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Error is an answer the API refused, decoded from its problem document
// (application/problem+json, RFC 9457).
type Error struct {
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Type is the problem type, urn:wildcat:problem:<slug>.
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail,omitempty"`
	// Field names the request field at fault ("to", "media.url"), if any.
	Field     string `json:"field,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"requestId,omitempty"`
	// Method and Path are the request that was refused.
	Method string `json:"-"`
	Path   string `json:"-"`
}

func (e *Error) Error() string {
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Field != "" && !strings.Contains(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	return fmt.Sprintf("%s (%d)", msg, e.Status)
}

// Sentinel errors to test an *Error against with errors.Is.
var (
	ErrInvalid      = errors.New("invalid request") // 400, 413, 415, 422
	ErrUnauthorized = errors.New("unauthorized")    // 401: no key, or a key the daemon does not know
	ErrForbidden    = errors.New("forbidden")       // 403: the key lacks the scope or the account
	ErrNotFound     = errors.New("not found")       // 404
	ErrConflict     = errors.New("conflict")        // 409: the resource's state forbids it
	ErrRateLimited  = errors.New("rate limited")    // 429
	ErrUnavailable  = errors.New("unavailable")     // 503
	ErrServer       = errors.New("server error")    // any other 5xx
)

// Is makes errors.Is(err, ErrNotFound) and friends work.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge ||
			e.Status == http.StatusUnsupportedMediaType || e.Status == http.StatusUnprocessableEntity
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	case ErrServer:
		return e.Status >= 500 && e.Status != http.StatusServiceUnavailable
	}
	return false
}

func decodeError(method, path string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Method: method, Path: path}
	if json.Unmarshal(body, e) != nil || e.Status == 0 {
		// Not a problem document (a proxy's page): keep the status.
		e.Status = resp.StatusCode
		e.Title = http.StatusText(resp.StatusCode)
		if t := strings.TrimSpace(string(body)); t != "" && len(t) < 200 && !strings.HasPrefix(t, "<") {
			e.Detail = t
		}
	}
	e.Status = resp.StatusCode
	return e
}

func esc(s string) string { return url.PathEscape(s) }
