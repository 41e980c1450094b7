// Package netguard keeps requests the daemon makes on a client's behalf
// (media fetched by URL, webhook deliveries) away from its own network: no
// loopback, private, link-local (cloud metadata at 169.254.169.254),
// multicast or otherwise reserved addresses. The decisive check runs on the
// address actually dialled (Control), after DNS resolution and for every
// connection, so neither a hostname resolving to 127.0.0.1 nor a DNS answer
// that changed since registration gets through; CheckURL is the early,
// friendlier check when a URL is accepted.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrForbidden: the address is not a public one and private targets are
// not allowed.
var ErrForbidden = errors.New("address not allowed")

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:10::/28"),    // ORCHID
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
}

// PublicAddr reports whether a is a globally routable unicast address.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// Control refuses to connect to non-public addresses. Use it as a
// net.Dialer's Control hook: it runs on the resolved IP about to be
// connected.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbidden, address)
	}
	if !PublicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address", ErrForbidden, ap.Addr())
	}
	return nil
}

// Dialer returns a dialer with the guard installed unless allowPrivate.
func Dialer(timeout time.Duration, allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = Control
	}
	return d
}

// URLError says what is wrong with a URL; errors.Is(err, ErrForbidden)
// tells a refused address from a malformed URL.
type URLError struct {
	URL    string
	Reason string
	Err    error
}

func (e *URLError) Error() string { return e.Reason }
func (e *URLError) Unwrap() error { return e.Err }

// Resolver looks host names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURL accepts an absolute http or https URL whose host is public:
// literal IPs are checked as they are, "localhost" names are refused, and
// other names are resolved with r (nil: net.DefaultResolver) and refused
// when any address they resolve to is not public. A name that does not
// resolve now is accepted — the dial-time guard (Control) still applies
// to every connection. With allowPrivate only the URL's form is checked.
func CheckURL(ctx context.Context, raw string, allowPrivate bool, r Resolver) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &URLError{URL: raw, Reason: "not a URL: " + err.Error()}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, &URLError{URL: raw, Reason: fmt.Sprintf("only http and https URLs are allowed, not %q", u.Scheme)}
	}
	host := u.Hostname()
	if host == "" {
		return nil, &URLError{URL: raw, Reason: "the URL has no host"}
	}
	if u.User != nil {
		return nil, &URLError{URL: raw, Reason: "credentials in the URL are not allowed; send them in a header"}
	}
	if allowPrivate {
		return u, nil
	}
	forbidden := func(what string) error {
		return &URLError{URL: raw, Err: ErrForbidden,
			Reason: fmt.Sprintf("%s is not a public address (loopback, private, link-local and metadata addresses are refused unless private targets are allowed)", what)}
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if !PublicAddr(a) {
			return nil, forbidden(host)
		}
		return u, nil
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		return nil, forbidden(host)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(lctx, "ip", host)
	if err != nil {
		return u, nil
	}
	for _, a := range addrs {
		if !PublicAddr(a) {
			return nil, forbidden(fmt.Sprintf("%s (resolves to %s)", host, a.Unmap()))
		}
	}
	return u, nil
}
