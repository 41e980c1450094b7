// Package netproxy reaches the network through an operator's proxy: a
// SOCKS5 proxy (socks5://) or an HTTP proxy that tunnels with CONNECT
// (http://, or https:// for a proxy spoken to over TLS), credentials in
// the URL's user part. It checks such URLs (Parse), shows them without
// their password (Redact) and dials through them (Dialer).
//
// Names are resolved by the proxy, which is the point of one: the address
// the connection leaves from is the proxy's. A Dialer with Guard set
// resolves the destination itself instead, refuses non-public addresses
// and asks the proxy for the address it checked, so a URL chosen by
// someone else (a media message's) cannot reach the proxy's network. The
// proxy itself may be on a private address: the operator chose it.
package netproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/proxy"
)

// Schemes are the proxy URL schemes Parse accepts.
var Schemes = []string{"socks5", "http", "https"}

// Parse checks a proxy URL: scheme socks5, http or https, a host, a port
// (1–65535), optionally user:password@; nothing else (no path, query or
// fragment). Its errors never repeat the URL, which may hold a password.
func Parse(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) != raw || raw == "" {
		return nil, errors.New("must be a URL like socks5://user:password@host:1080 or http://host:3128, without spaces")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes its input: say what is wrong without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("is not a URL: %v", err)
	}
	switch u.Scheme {
	case "socks5", "http", "https":
	default:
		return nil, fmt.Errorf("scheme %q is not supported: use socks5://, http:// or https://", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("has no host: write %s://host:port", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("has no host")
	}
	port := u.Port()
	if port == "" {
		return nil, errors.New("has no port: write host:port (e.g. :1080 for SOCKS5, :3128 or :8080 for HTTP)")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("port %q is not 1 to 65535", port)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, errors.New("must not have a path, query or fragment")
	}
	if u.User != nil && u.User.Username() == "" {
		return nil, errors.New("has a password without a user name")
	}
	u.Path = ""
	return u, nil
}

// Redact returns raw with its password replaced by ***, for answers and
// logs; "" stays "". A value Parse refuses is shown as [invalid proxy URL].
func Redact(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := Parse(raw)
	if err != nil {
		return "[invalid proxy URL]"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	// url.String would escape the asterisks.
	return strings.Replace(u.String(), "%2A%2A%2A@", "***@", 1)
}

// ContextDialer makes connections; *net.Dialer is one.
type ContextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Guard checks a destination before the proxy is asked for it: it returns
// the addresses host may be reached at, or an error when it must not be.
// *netguard.Dialer's Resolve is one.
type Guard interface {
	Resolve(ctx context.Context, host string) ([]netip.Addr, error)
}

// Dialer makes TCP connections through one proxy.
type Dialer struct {
	u *url.URL
	// Forward reaches the proxy; nil: a net.Dialer with a 30 s timeout.
	Forward ContextDialer
	// TLS configures the connection to an https:// proxy; nil: the
	// system's roots, the proxy's host name.
	TLS *tls.Config
	// Guard, when set, checks every destination (see Guard).
	Guard Guard
}

// New returns a Dialer through the proxy at raw (checked with Parse).
func New(raw string) (*Dialer, error) {
	u, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return &Dialer{u: u}, nil
}

// String is the proxy's URL without its password.
func (d *Dialer) String() string { return Redact(d.u.String()) }

func (d *Dialer) forward() ContextDialer {
	if d.Forward != nil {
		return d.Forward
	}
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
}

// DialContext connects to addr (host:port) through the proxy.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("proxy %s: network %q is not supported", d, network)
	}
	if d.Guard == nil {
		return d.tunnel(ctx, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	addrs, err := d.Guard.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var first error
	for _, a := range addrs {
		c, err := d.tunnel(ctx, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// tunnel asks the proxy for a connection to addr.
func (d *Dialer) tunnel(ctx context.Context, addr string) (net.Conn, error) {
	var c net.Conn
	var err error
	if d.u.Scheme == "socks5" {
		c, err = d.socks5(ctx, addr)
	} else {
		c, err = d.connect(ctx, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("proxy %s to %s: %w", d, addr, err)
	}
	return c, nil
}

func (d *Dialer) socks5(ctx context.Context, addr string) (net.Conn, error) {
	var auth *proxy.Auth
	if d.u.User != nil {
		pw, _ := d.u.User.Password()
		auth = &proxy.Auth{User: d.u.User.Username(), Password: pw}
	}
	px, err := proxy.SOCKS5("tcp", d.u.Host, auth, forwardDialer{d.forward()})
	if err != nil {
		return nil, err
	}
	return px.(proxy.ContextDialer).DialContext(ctx, "tcp", addr)
}

// forwardDialer gives x/net/proxy a ContextDialer it recognises.
type forwardDialer struct{ ContextDialer }

func (f forwardDialer) Dial(network, addr string) (net.Conn, error) {
	return f.DialContext(context.Background(), network, addr)
}

// connect opens an HTTP CONNECT tunnel.
func (d *Dialer) connect(ctx context.Context, addr string) (_ net.Conn, err error) {
	c, err := d.forward().DialContext(ctx, "tcp", d.u.Host)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	// The handshake ends with ctx: a proxy that never answers must not
	// hold the caller.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if d.u.Scheme == "https" {
		cfg := &tls.Config{}
		if d.TLS != nil {
			cfg = d.TLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = d.u.Hostname()
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS with the proxy: %w", err)
		}
		c = tc
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if d.u.User != nil {
		pw, _ := d.u.User.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(d.u.User.Username()+":"+pw)))
	}
	if err := req.Write(c); err != nil {
		return nil, fmt.Errorf("send CONNECT: %w", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("read the answer to CONNECT: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CONNECT refused: %s", resp.Status)
	}
	if !stop() {
		return nil, ctx.Err()
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if br.Buffered() > 0 {
		// The tunnel's first bytes came with the answer.
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
