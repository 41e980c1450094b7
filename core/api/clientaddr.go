package api

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// requestInfo is filled in while a request is served and read by the
// access log (instrument), which runs outside the router.
type requestInfo struct {
	client string
	key    *KeyInfo
}

type requestInfoKey struct{}

func requestInfoFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return ri
}

// ClientAddr is the request's client address (an IP, no port): the peer,
// or — when the peer is one of http.trusted_proxies — the address the
// proxies' X-Forwarded-For or Forwarded header names.
func ClientAddr(r *http.Request) string {
	if ri := requestInfoFrom(r.Context()); ri != nil && ri.client != "" {
		return ri.client
	}
	return peerIP(r.RemoteAddr)
}

func peerIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// clientAddr works ClientAddr out: walking the forwarding chain from the
// nearest hop, each trusted proxy passes the question on to the address
// it names; the first untrusted address is the client. Headers from an
// untrusted peer are ignored: anyone can write them.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer := peerIP(r.RemoteAddr)
	if len(trusted) == 0 || !isTrusted(peer, trusted) {
		return peer
	}
	chain := forwardedFor(r.Header)
	client := peer
	for i := len(chain) - 1; i >= 0; i-- {
		addr, ok := parseHop(chain[i])
		if !ok {
			break // an obfuscated or garbled hop: trust stops here
		}
		client = addr
		if !isTrusted(addr, trusted) {
			break
		}
	}
	return client
}

func isTrusted(ip string, trusted []netip.Prefix) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor lists the hops of Forwarded (RFC 7239 for=) or, without
// it, X-Forwarded-For, oldest first.
func forwardedFor(h http.Header) []string {
	var out []string
	if fw := h.Values("Forwarded"); len(fw) > 0 {
		for _, line := range fw {
			for _, elem := range strings.Split(line, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						out = append(out, strings.Trim(v, `"`))
					}
				}
			}
		}
		return out
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for _, hop := range strings.Split(line, ",") {
			out = append(out, strings.TrimSpace(hop))
		}
	}
	return out
}

// parseHop reads an address with or without a port ([v6]:port, v4:port).
func parseHop(s string) (string, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().String(), true
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap().String(), true
	}
	return "", false
}

// ParseTrustedProxies reads http.trusted_proxies: CIDRs or single
// addresses. The first bad entry's index is returned with the error.
func ParseTrustedProxies(list []string) ([]netip.Prefix, int, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, i, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, -1, nil
}
