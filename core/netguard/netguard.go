// Package netguard keeps requests the daemon makes on someone else's behalf
// (media fetched by URL, webhook deliveries, rules' ctx.http.fetch) away
// from its own network: no loopback, private, link-local (cloud metadata at
// 169.254.169.254), multicast, documentation or otherwise reserved
// addresses, including IPv4 addresses embedded in IPv6 ones (IPv4-mapped,
// IPv4-compatible, NAT64, 6to4).
//
// Two checks, one rule set. CheckURL is the early, friendlier check when a
// URL is accepted (registration); it refuses what it cannot resolve.
// Dialer is the decisive one: it resolves the name itself, refuses the
// connection unless every address it would dial is public, and checks the
// address actually dialled once more (Control), for every connection — so
// neither a hostname resolving to 127.0.0.1 nor a DNS answer that changed
// since registration gets through. Transport builds an http.Transport on
// it that never uses a proxy from the environment (a proxy would dial on
// our behalf and the guard would only ever see the proxy's address).
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/idna"
)

// ErrForbidden: the address is not a public one and private targets are
// not allowed.
var ErrForbidden = errors.New("address not allowed")

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation (TEST-NET-1)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation (TEST-NET-2)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation (TEST-NET-3)
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated) and ::, ::1
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments: Teredo, ORCHID, benchmarking
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("3fff::/20"),       // documentation (RFC 9637)
	netip.MustParsePrefix("5f00::/16"),       // SRv6 SIDs
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// PublicAddr reports whether a is a globally routable unicast address. An
// IPv6 address that carries an IPv4 one (IPv4-mapped, NAT64 64:ff9b::/96,
// 6to4 2002::/16) is public only when the IPv4 address is.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() {
		return false
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return PublicAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixTo4.Contains(a):
			return PublicAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
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

// Resolver looks host names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer connects only to public addresses unless AllowPrivate.
type Dialer struct {
	Timeout      time.Duration
	AllowPrivate bool
	// Resolver looks names up; nil: net.DefaultResolver.
	Resolver Resolver
}

// NewDialer returns a dialer with the guard installed unless allowPrivate.
func NewDialer(timeout time.Duration, allowPrivate bool) *Dialer {
	return &Dialer{Timeout: timeout, AllowPrivate: allowPrivate}
}

// DialContext resolves address's host, refuses the connection when the
// host is written in an ambiguous numeric form or any address it resolves
// to is not public, and dials the addresses in turn with Control installed.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: d.Timeout}
	if d.AllowPrivate {
		return nd.DialContext(ctx, network, address)
	}
	nd.Control = Control
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrForbidden, address, err)
	}
	addrs, err := d.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, a := range addrs {
		c, err := nd.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// Resolve returns the addresses host resolves to, every one public, or an
// error (ErrForbidden for a non-public one): the check DialContext makes,
// for a connection someone else dials — a proxy, which must then be asked
// for these addresses, not for the name. AllowPrivate is not consulted.
func (d *Dialer) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	return d.resolve(ctx, host)
}

// resolve returns the addresses of host, all public, or an ErrForbidden.
func (d *Dialer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	name, lit, err := normalizeHost(host)
	if err != nil {
		return nil, err
	}
	if lit.IsValid() {
		if !PublicAddr(lit) {
			return nil, fmt.Errorf("%w: %s is not a public address", ErrForbidden, lit)
		}
		return []netip.Addr{lit}, nil
	}
	if isLocalhost(name) {
		return nil, fmt.Errorf("%w: %s is a loopback name", ErrForbidden, name)
	}
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", name, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", name)
	}
	for _, a := range addrs {
		if !PublicAddr(a) {
			return nil, fmt.Errorf("%w: %s resolves to %s, not a public address", ErrForbidden, name, a.Unmap())
		}
	}
	return addrs, nil
}

// Transport returns an http.Transport that dials through d and never uses
// a proxy.
func Transport(d *Dialer) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
		ExpectContinueTimeout: time.Second,
	}
}

// normalizeHost maps a URL host to the name to resolve (IDNA, lower case,
// no trailing dot), or to the literal address it is. An IPv4 address in a
// form other than dotted decimal (2130706433, 0x7f000001, 017700000001,
// 127.1, 0 — forms inet_aton and browsers accept) is refused: it is a
// classic way around checks that only know the usual form.
func normalizeHost(host string) (string, netip.Addr, error) {
	h := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", netip.Addr{}, fmt.Errorf("%w: %s has a zone", ErrForbidden, host)
		}
		return "", a, nil
	}
	// IDNA maps full-width and ideographic dots (127。0。0。1) to ASCII.
	ascii, err := idna.Lookup.ToASCII(h)
	if err != nil {
		// Lookup refuses some numeric labels; the plain mapping still
		// shows what the host would become.
		ascii, err = idna.Punycode.ToASCII(strings.Map(mapDot, h))
		if err != nil {
			return "", netip.Addr{}, fmt.Errorf("%w: host %q is not a valid name: %v", ErrForbidden, host, err)
		}
	}
	ascii = strings.TrimSuffix(strings.ToLower(ascii), ".")
	if a, err := netip.ParseAddr(ascii); err == nil {
		if ascii != h {
			return "", netip.Addr{}, fmt.Errorf("%w: host %q is the address %s in another form; write it as %s", ErrForbidden, host, a, a)
		}
		return "", a, nil
	}
	if a, ok := legacyIPv4(ascii); ok {
		return "", netip.Addr{}, fmt.Errorf("%w: host %q is the address %s in a non-standard form; write it as %s", ErrForbidden, host, a, a)
	}
	if ascii == "" {
		return "", netip.Addr{}, fmt.Errorf("%w: empty host", ErrForbidden)
	}
	return ascii, netip.Addr{}, nil
}

func mapDot(r rune) rune {
	switch r {
	case '\u3002', '\uff0e', '\uff61':
		return '.'
	}
	return r
}

// legacyIPv4 parses the forms inet_aton accepts and the WHATWG URL
// standard treats as IPv4: one to four parts, each decimal, octal (leading
// 0) or hexadecimal (0x), the last filling the remaining bytes. A host
// whose last label is numeric is treated as such an address by browsers.
func legacyIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var nums []uint64
	for _, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		base, digits := 10, p
		switch {
		case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
			base, digits = 16, p[2:]
			if digits == "" {
				digits = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		n, err := strconv.ParseUint(digits, base, 64)
		if err != nil {
			return netip.Addr{}, false
		}
		nums = append(nums, n)
	}
	var v uint64
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		v |= n << (8 * (3 - i))
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v |= last
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func isLocalhost(name string) bool {
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
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

// CheckURL accepts an absolute http or https URL whose host is public:
// literal IPs are checked as they are, IPv4 addresses in non-standard
// numeric forms and "localhost" names are refused, and other names are
// resolved with r (nil: net.DefaultResolver) and refused when any address
// they resolve to is not public — or when they do not resolve at all,
// since nothing can be said about them then. The dial-time guard (Dialer)
// still applies to every connection. With allowPrivate only the URL's
// form is checked.
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
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d := &Dialer{Resolver: r}
	if _, err := d.resolve(lctx, host); err != nil {
		if errors.Is(err, ErrForbidden) {
			return nil, &URLError{URL: raw, Err: ErrForbidden,
				Reason: strings.TrimPrefix(err.Error(), ErrForbidden.Error()+": ") +
					" (loopback, private, link-local, metadata and other non-public addresses are refused unless private targets are allowed)"}
		}
		return nil, &URLError{URL: raw, Err: ErrForbidden,
			Reason: fmt.Sprintf("host %s does not resolve (%v); a URL is accepted only when its host resolves to public addresses", host, err)}
	}
	return u, nil
}
