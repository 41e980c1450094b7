package whatsapp

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wildcathub/wildcat/core/netguard"
	"github.com/wildcathub/wildcat/core/netproxy"
	"github.com/wildcathub/wildcat/core/session"
)

// proxied are the HTTP clients of an account behind a proxy: one for the
// websocket (before and after pairing), one for media up- and downloads.
// Both dial only through the proxy; nothing of the account's traffic
// leaves any other way.
type proxied struct {
	url   string // redacted, for logs
	ws    *http.Client
	media *http.Client
}

// proxied returns the account's clients, or nil when it has no proxy
// (neither its own nor the driver's default).
func (d *Driver) proxied(acct session.Account) (*proxied, error) {
	raw := acct.Proxy
	if raw == "" {
		raw = d.Proxy
	}
	if raw == "" {
		return nil, nil
	}
	ws, err := netproxy.New(raw)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", acct.ID, err)
	}
	ws.TLS = d.ProxyTLS
	// Media URLs come in messages anyone can send: the guard resolves
	// their host here, refuses non-public addresses and asks the proxy for
	// the checked address, so the proxy cannot be made to reach its own
	// network. The proxy itself may be private: the operator chose it.
	media := *ws
	media.Guard = &netguard.Dialer{Resolver: d.Resolver}
	return &proxied{
		url:   ws.String(),
		ws:    &http.Client{Transport: d.proxyTransport(ws.DialContext, false)},
		media: &http.Client{Transport: d.proxyTransport(media.DialContext, true)},
	}, nil
}

func (d *Driver) proxyTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error), h2 bool) *http.Transport {
	t := &http.Transport{
		Proxy:                 nil, // never the environment's: the account's proxy is the only way out
		DialContext:           dial,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The websocket upgrade is HTTP/1.1; media may use HTTP/2.
		ForceAttemptHTTP2: h2,
	}
	if d.ProxyTLS != nil {
		t.TLSClientConfig = d.ProxyTLS.Clone()
	}
	return t
}

// configure sets cli's clients; whatsmeow's own proxy settings are not
// used, as they would replace the transports (and the guard) wholesale.
func (p *proxied) configure(cli *whatsmeow.Client) {
	cli.SetPreLoginHTTPClient(p.ws)
	cli.SetWebsocketHTTPClient(p.ws)
	cli.SetMediaHTTPClient(p.media)
}

func (p *proxied) close() {
	p.ws.CloseIdleConnections()
	p.media.CloseIdleConnections()
}
