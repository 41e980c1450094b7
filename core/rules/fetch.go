package rules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/netguard"
)

// ErrFetchDisabled is what ctx.http.fetch throws in a dry run.
var ErrFetchDisabled = errors.New("http.fetch is disabled here (rules test runs without network)")

// fetchRequest is ctx.http.fetch's options.
type fetchRequest struct {
	URL     string
	Method  string
	Headers map[string]string
	Body    string
	Timeout time.Duration
}

type fetchResponse struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// hostAllowed matches a URL's host name against a rule's allow-list:
// exact names, or "*.example.com" for any subdomain (not example.com
// itself, which must be listed on its own).
func hostAllowed(allow []string, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range allow {
		if suffix, ok := strings.CutPrefix(a, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == a {
			return true
		}
	}
	return false
}

func checkFetchURL(allow []string, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: only http and https are allowed", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("URL %q: credentials in the URL are not allowed; send a header", raw)
	}
	host := u.Hostname()
	if !hostAllowed(allow, host) {
		if len(allow) == 0 {
			return nil, fmt.Errorf("host %q is not allowed: this rule's config has no http.allow list", host)
		}
		return nil, fmt.Errorf("host %q is not allowed (http.allow: %s)", host, strings.Join(allow, ", "))
	}
	return u, nil
}

// fetcher performs a rule's HTTP requests. Redirects are followed only to
// allowed hosts, and the response body is read up to maxBytes. Every
// connection goes through netguard: the host allow-list says which names a
// rule may use, the guard that none of them reaches the daemon's own
// network (a listed name resolving to 169.254.169.254 is refused when it
// is dialled) unless the rule's config sets http.allowPrivate. No proxy
// from the environment is used: the guard must see the address dialled.
type fetcher struct {
	guarded, open *http.Client
}

func newFetcher(r netguard.Resolver) *fetcher {
	return &fetcher{
		guarded: &http.Client{Transport: netguard.Transport(&netguard.Dialer{Timeout: 10 * time.Second, Resolver: r})},
		open:    &http.Client{Transport: netguard.Transport(netguard.NewDialer(10*time.Second, true))},
	}
}

type allowKey struct{}

func (f *fetcher) do(ctx context.Context, allow []string, allowPrivate bool, maxBytes int64, fr fetchRequest) (*fetchResponse, error) {
	u, err := checkFetchURL(allow, fr.URL)
	if err != nil {
		return nil, err
	}
	if fr.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fr.Timeout)
		defer cancel()
	}
	method := strings.ToUpper(fr.Method)
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if fr.Body != "" {
		body = strings.NewReader(fr.Body)
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, allowKey{}, allow), method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", fr.URL, err)
	}
	for k, v := range fr.Headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "wildcat-rules")
	}
	c := *f.guarded
	if allowPrivate {
		c = *f.open
	}
	c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("more than 5 redirects")
		}
		if _, err := checkFetchURL(r.Context().Value(allowKey{}).([]string), r.URL.String()); err != nil {
			return fmt.Errorf("redirect refused: %w", err)
		}
		return nil
	}
	resp, err := c.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("fetch %s: %w", fr.URL, context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("fetch %s: %w", fr.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: read body: %w", fr.URL, err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("fetch %s: response larger than %d bytes (http.maxBytes)", fr.URL, maxBytes)
	}
	h := make(map[string]string, len(resp.Header))
	for k, v := range resp.Header {
		h[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return &fetchResponse{Status: resp.StatusCode, Headers: h, Body: data}, nil
}
