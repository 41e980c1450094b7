package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/wildcathub/wildcat/core/netguard"
)

// MaxRedirects is how many redirects a media fetch follows.
const MaxRedirects = 3

// ErrFetch wraps every reason a media URL could not be fetched; the
// message says which, for the client.
var ErrFetch = errors.New("media URL not fetched")

// ErrForbiddenAddress: the URL resolves to an address the daemon must not
// reach (loopback, private, link-local, ...), and the config does not
// allow it.
var ErrForbiddenAddress = netguard.ErrForbidden

// FetchOptions configures a Fetcher.
type FetchOptions struct {
	MaxBytes     int64
	Timeout      time.Duration
	AllowPrivate bool
	// Transport, when set, replaces the guarded transport (tests only).
	Transport http.RoundTripper
}

// Fetcher downloads media from URLs a client names. Such a URL is
// attacker-controlled: unless allowed, it must not reach the daemon's own
// network (the store, cloud metadata at 169.254.169.254, admin ports). The
// check runs on the address actually dialled, after DNS resolution and for
// every redirect, so neither a hostname resolving to 127.0.0.1 nor a
// redirect to one gets through.
type Fetcher struct {
	client   *http.Client
	maxBytes int64
}

// NewFetcher returns a Fetcher.
func NewFetcher(o FetchOptions) *Fetcher {
	rt := o.Transport
	if rt == nil {
		d := netguard.NewDialer(10*time.Second, o.AllowPrivate)
		rt = &http.Transport{
			// No proxy from the environment: a proxy would dial on our behalf
			// and the guard would only ever see the proxy's address.
			Proxy:                 nil,
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 20 * time.Second,
			MaxIdleConns:          16,
			IdleConnTimeout:       30 * time.Second,
		}
	}
	return &Fetcher{
		maxBytes: o.MaxBytes,
		client: &http.Client{
			Transport: rt,
			Timeout:   o.Timeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) > MaxRedirects {
					return fmt.Errorf("more than %d redirects", MaxRedirects)
				}
				if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
					return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
				}
				return nil
			},
		},
	}
}

// PublicAddr reports whether a is a globally routable unicast address (see
// netguard, which holds the guard media fetches and webhooks share).
func PublicAddr(a netip.Addr) bool { return netguard.PublicAddr(a) }

// Fetched is media downloaded from a URL.
type Fetched struct {
	Data []byte
	// Mimetype is the response's Content-Type.
	Mimetype string
	// Filename is the last path segment of the final URL.
	Filename string
}

// Fetch downloads rawURL, following at most MaxRedirects redirects, within
// the timeout and the size limit (enforced while reading: a lying or
// missing Content-Length changes nothing).
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (*Fetched, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not an http or https URL", ErrFetch, rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	req.Header.Set("User-Agent", "wildcatd media fetch")
	resp, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			return nil, fmt.Errorf("%w: %w", ErrFetch, unwrapURLError(err))
		}
		return nil, fmt.Errorf("%w: %v", ErrFetch, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %s", ErrFetch, resp.Request.URL.Redacted(), resp.Status)
	}
	if resp.ContentLength > f.maxBytes {
		return nil, &TooLargeError{Limit: f.maxBytes}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the body: %v", ErrFetch, err)
	}
	if int64(len(data)) > f.maxBytes {
		return nil, &TooLargeError{Limit: f.maxBytes}
	}
	name := ""
	if p := resp.Request.URL.Path; p != "" {
		name = p[lastSlash(p)+1:]
	}
	return &Fetched{Data: data, Mimetype: resp.Header.Get("Content-Type"), Filename: name}, nil
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

// unwrapURLError drops url.Error's "Get \"…\":" prefix, which repeats the
// URL the client sent.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
