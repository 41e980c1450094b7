// Package proxytest runs proxies for tests: a SOCKS5 proxy (RFC 1928 with
// RFC 1929 user/password authentication) and an HTTP CONNECT proxy, each
// on 127.0.0.1, recording every tunnel it opened (the target asked for,
// the connection it dialled, the bytes it carried) so a test can assert
// what went through it.
package proxytest

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Kind is the protocol a Proxy speaks.
type Kind string

const (
	SOCKS5  Kind = "socks5"
	CONNECT Kind = "http"
)

// Tunnel is one connection the proxy opened for a client.
type Tunnel struct {
	// Target is what the client asked for (host:port).
	Target string
	// Upstream is the local address of the proxy's connection to the
	// target: the remote address the target sees.
	Upstream string
	// Up and Down count the bytes carried to and from the target; they
	// grow while the tunnel is open.
	Up, Down *atomic.Int64
}

// Options configure a Proxy.
type Options struct {
	// User and Password, when User is set, are required of every client.
	User, Password string
	// Route maps a requested target to the address to dial; an error
	// refuses the tunnel. Nil dials the target as asked.
	Route func(target string) (string, error)
}

// Proxy is a running test proxy.
type Proxy struct {
	tb   testing.TB
	kind Kind
	opts Options
	ln   net.Listener

	mu      sync.Mutex
	tunnels []Tunnel
	refused []string
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// Start runs a proxy of kind until the test ends.
func Start(tb testing.TB, kind Kind, opts Options) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxytest: %v", err)
	}
	p := &Proxy{tb: tb, kind: kind, opts: opts, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy's URL with its credentials, as an account's proxy.
func (p *Proxy) URL() string {
	u := &url.URL{Scheme: string(p.kind), Host: p.Addr()}
	if p.opts.User != "" {
		u.User = url.UserPassword(p.opts.User, p.opts.Password)
	}
	return u.String()
}

// Tunnels returns the tunnels opened so far, in order.
func (p *Proxy) Tunnels() []Tunnel {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Tunnel(nil), p.tunnels...)
}

// Refused returns the targets of refused requests (bad credentials, a
// Route error, a target that did not answer), with the reason.
func (p *Proxy) Refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

// Upstreams is the set of Tunnel.Upstream addresses.
func (p *Proxy) Upstreams() map[string]bool {
	out := map[string]bool{}
	for _, t := range p.Tunnels() {
		out[t.Upstream] = true
	}
	return out
}

// Close stops the proxy and cuts every tunnel.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) refuse(target, why string) {
	p.mu.Lock()
	p.refused = append(p.refused, target+": "+why)
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			continue
		}
		p.wg.Go(func() {
			defer p.untrack(c)
			if p.kind == SOCKS5 {
				p.serveSOCKS5(c)
			} else {
				p.serveCONNECT(c)
			}
		})
	}
}

// dial opens the upstream connection of target and records its tunnel,
// before the client hears of it; or says why not.
func (p *Proxy) dial(target string) (net.Conn, *Tunnel, error) {
	addr := target
	if p.opts.Route != nil {
		var err error
		if addr, err = p.opts.Route(target); err != nil {
			return nil, nil, err
		}
	}
	up, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if !p.track(up) {
		return nil, nil, errors.New("proxy closed")
	}
	t := Tunnel{Target: target, Upstream: up.LocalAddr().String(), Up: new(atomic.Int64), Down: new(atomic.Int64)}
	p.mu.Lock()
	p.tunnels = append(p.tunnels, t)
	p.mu.Unlock()
	return up, &t, nil
}

// pipe carries bytes both ways until either side ends; client may hold
// bytes the client sent after its request.
func (p *Proxy) pipe(t *Tunnel, client io.Reader, cc net.Conn, up net.Conn) {
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(countWriter{up, t.Up}, client)
		_ = up.Close()
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(countWriter{cc, t.Down}, up)
		_ = cc.Close()
		done <- struct{}{}
	}()
	<-done
	<-done
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

// Write counts before it writes: a test that has read the bytes must find
// them counted.
func (c countWriter) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	n, err := c.w.Write(b)
	c.n.Add(int64(n - len(b)))
	return n, err
}

func (p *Proxy) serveSOCKS5(c net.Conn) {
	br := bufio.NewReader(c)
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(br, hdr); err != nil || hdr[0] != 5 {
		p.refuse("?", "not a SOCKS5 greeting")
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return
	}
	want := byte(0x00)
	if p.opts.User != "" {
		want = 0x02
	}
	if !strings.ContainsRune(string(methods), rune(want)) {
		_, _ = c.Write([]byte{5, 0xff})
		p.refuse("?", "no acceptable authentication method offered")
		return
	}
	if _, err := c.Write([]byte{5, want}); err != nil {
		return
	}
	if want == 0x02 {
		var ver, n byte
		if ver, _ = br.ReadByte(); ver != 1 {
			return
		}
		n, _ = br.ReadByte()
		user := make([]byte, n)
		if _, err := io.ReadFull(br, user); err != nil {
			return
		}
		n, _ = br.ReadByte()
		pass := make([]byte, n)
		if _, err := io.ReadFull(br, pass); err != nil {
			return
		}
		if string(user) != p.opts.User || string(pass) != p.opts.Password {
			_, _ = c.Write([]byte{1, 1})
			p.refuse("?", "wrong credentials")
			return
		}
		if _, err := c.Write([]byte{1, 0}); err != nil {
			return
		}
	}
	req := make([]byte, 4)
	if _, err := io.ReadFull(br, req); err != nil || req[0] != 5 {
		return
	}
	var host string
	switch req[3] {
	case 1, 4:
		ip := make([]byte, map[byte]int{1: 4, 4: 16}[req[3]])
		if _, err := io.ReadFull(br, ip); err != nil {
			return
		}
		host = net.IP(ip).String()
	case 3:
		n, _ := br.ReadByte()
		name := make([]byte, n)
		if _, err := io.ReadFull(br, name); err != nil {
			return
		}
		host = string(name)
	default:
		return
	}
	pb := make([]byte, 2)
	if _, err := io.ReadFull(br, pb); err != nil {
		return
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb))))
	reply := func(code byte) error {
		_, err := c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
		return err
	}
	if req[1] != 1 {
		_ = reply(7) // command not supported
		p.refuse(target, "not a CONNECT")
		return
	}
	up, tun, err := p.dial(target)
	if err != nil {
		_ = reply(2) // not allowed by ruleset
		p.refuse(target, err.Error())
		return
	}
	if err := reply(0); err != nil {
		p.untrack(up)
		return
	}
	p.pipe(tun, br, c, up)
}

func (p *Proxy) serveCONNECT(c net.Conn) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		p.refuse("?", "not an HTTP request")
		return
	}
	target := req.Host
	answer := func(status int, extra string) {
		_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\n%sContent-Length: 0\r\n\r\n", status, http.StatusText(status), extra)
	}
	if req.Method != http.MethodConnect {
		answer(http.StatusMethodNotAllowed, "")
		p.refuse(target, "not a CONNECT: "+req.Method)
		return
	}
	if p.opts.User != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.opts.User+":"+p.opts.Password))
		if req.Header.Get("Proxy-Authorization") != want {
			answer(http.StatusProxyAuthRequired, "Proxy-Authenticate: Basic realm=\"proxytest\"\r\n")
			p.refuse(target, "wrong credentials")
			return
		}
	}
	up, tun, err := p.dial(target)
	if err != nil {
		answer(http.StatusForbidden, "")
		p.refuse(target, err.Error())
		return
	}
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		p.untrack(up)
		return
	}
	p.pipe(tun, br, c, up)
}
