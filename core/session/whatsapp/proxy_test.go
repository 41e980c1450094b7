package whatsapp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/netproxy/proxytest"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
)

// mediaIP is the public address the test's resolver gives WhatsApp's media
// host: the guard lets it through, and the proxies route it to the double.
const mediaIP = "157.240.0.53"

// front is the protocol double served over TLS on an address only the
// test's proxies know (watest.TLSFront), refusing every request that did
// not come through one of their tunnels.
type front struct {
	*watest.TLSFront
	mu  sync.Mutex
	pxs []*proxytest.Proxy
}

func newFront(t *testing.T, double *watest.Server) *front {
	t.Helper()
	f := &front{}
	f.TLSFront = double.ServeTLS(f.viaProxy)
	return f
}

// viaProxy reports whether a connection from remote is one a proxy opened.
func (f *front) viaProxy(remote string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.pxs {
		if p.Upstreams()[remote] {
			return true
		}
	}
	return false
}

// proxy starts a proxy of kind whose only routes are WhatsApp's websocket
// host and the media address, both to the front.
func (f *front) proxy(t *testing.T, kind proxytest.Kind, password string) *proxytest.Proxy {
	p := proxytest.Start(t, kind, proxytest.Options{User: "ann", Password: password, Route: func(target string) (string, error) {
		switch target {
		case "web.whatsapp.com:443", mediaIP + ":443":
			return f.Addr(), nil
		}
		return "", fmt.Errorf("no route to %s", target)
	}})
	f.mu.Lock()
	f.pxs = append(f.pxs, p)
	f.mu.Unlock()
	return p
}

// resolver answers for WhatsApp's media host only.
type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// tunnelsTo sums the bytes of p's tunnels to target.
func tunnelsTo(p *proxytest.Proxy, target string) (n int, up, down int64) {
	for _, tun := range p.Tunnels() {
		if tun.Target == target {
			n++
			up += tun.Up.Load()
			down += tun.Down.Load()
		}
	}
	return n, up, down
}

func (s *storeSink) count(kind event.Kind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ev := range s.seen {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// TestReachesWhatsAppOnlyThroughTheProxy: with a SOCKS5 or an HTTP CONNECT
// proxy — the account's own, or the driver's default — the account pairs,
// receives and downloads media, and uploads media, with the protocol
// double reachable only through the proxy (it refuses any connection the
// proxy did not open, and no other route to it exists); the proxy saw the
// websocket's host and the media address the guard checked, and carried
// the media's bytes. Then the account's proxy changes, as PATCH does: the
// next session connects through the new proxy only.
func TestReachesWhatsAppOnlyThroughTheProxy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		kind, next proxytest.Kind
		viaDefault bool
	}{
		{"socks5", proxytest.SOCKS5, proxytest.CONNECT, false},
		{"http connect", proxytest.CONNECT, proxytest.SOCKS5, false},
		{"driver default", proxytest.SOCKS5, proxytest.SOCKS5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.driver.HTTP = whatsapp.HTTPClients{} // no route to the double but the proxy
			f := newFront(t, r.srv)
			px := f.proxy(t, tc.kind, "pw:"+tc.name)
			r.driver.ProxyTLS = f.ClientTLS
			r.driver.Resolver = resolver{"mmg.whatsapp.net": {netip.MustParseAddr(mediaIP)}}
			setProxy := func(u string) {
				if tc.viaDefault {
					r.driver.Proxy = u
				} else {
					r.proxy = u
				}
			}
			setProxy(px.URL())

			s, acct := r.pair(t)
			if n, up, down := tunnelsTo(px, "web.whatsapp.com:443"); n == 0 || up == 0 || down == 0 {
				t.Fatalf("the websocket did not go through the proxy: %d tunnels, %d/%d bytes; tunnels %+v", n, up, down, px.Tunnels())
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			own := acct.JID().ToNonAD()

			// A download: through the proxy, to the address the guard checked.
			alice := r.srv.Contact("15551230001")
			img := bytes.Repeat([]byte("proxied image "), 5000)
			id, err := alice.SendImage(ctx, own, img, "image/jpeg", "")
			if err != nil {
				t.Fatal(err)
			}
			ev := r.sink.waitFor(t, "image", func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == id })
			rc, err := s.DownloadMedia(ctx, ev.Message)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(rc)
			if !bytes.Equal(data, img) {
				t.Fatalf("downloaded %d bytes, want the %d sent", len(data), len(img))
			}
			n, _, down := tunnelsTo(px, mediaIP+":443")
			if n == 0 || down < int64(len(img)) {
				t.Fatalf("the download did not go through the proxy: %d tunnels to %s carried %d bytes down", n, mediaIP, down)
			}

			// An upload: the same way.
			doc := bytes.Repeat([]byte("%PDF-1.7 proxied "), 3000)
			if _, err := s.Send(ctx, &session.SendRequest{To: alice.JID().String(), Source: event.SourceAPI,
				Media: &session.MediaSend{Kind: session.MediaDocument, Data: doc, Mimetype: "application/pdf", Filename: "a.pdf"}}); err != nil {
				t.Fatal(err)
			}
			if _, up, _ := tunnelsTo(px, mediaIP+":443"); up < int64(len(doc)) {
				t.Fatalf("the upload did not go through the proxy: %d bytes up", up)
			}

			// The proxy's password appears in no event.
			r.sink.mu.Lock()
			for _, ev := range r.sink.seen {
				if ev.Account != nil && strings.Contains(ev.Account.Reason, "pw:") {
					t.Errorf("event %s shows the proxy password: %q", ev.ID, ev.Account.Reason)
				}
			}
			r.sink.mu.Unlock()

			// The proxy changes: the session restarts through the new one.
			px2 := f.proxy(t, tc.next, "pw2:"+tc.name)
			before, _, _ := tunnelsTo(px, "web.whatsapp.com:443")
			connected := r.sink.count(event.KindAccountConnected)
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			setProxy(px2.URL())
			s2 := r.open(t)
			poll.Until(t, wait, func() error {
				if r.sink.count(event.KindAccountConnected) == connected {
					return fmt.Errorf("not connected again yet")
				}
				return nil
			})
			if n, _, _ := tunnelsTo(px2, "web.whatsapp.com:443"); n == 0 {
				t.Fatalf("the new session did not go through the new proxy: %+v", px2.Tunnels())
			}
			if after, _, _ := tunnelsTo(px, "web.whatsapp.com:443"); after != before {
				t.Fatalf("the new session went through the old proxy too (%d tunnels, %d before)", after, before)
			}
			if _, err := s2.Send(ctx, &session.SendRequest{To: alice.JID().String(), Text: "through the new proxy", Source: event.SourceAPI}); err != nil {
				t.Fatal(err)
			}

			// Nothing reached the double any other way, and the check that
			// says so does refuse a direct request.
			if m := f.Refused(); len(m) != 0 {
				t.Fatalf("requests reached the double without the proxy: %v", m)
			}
			cfg := f.ClientTLS.Clone()
			cfg.ServerName = "web.whatsapp.com"
			resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}).Get("https://" + f.Addr() + "/control")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("a direct request got %d, want 403", resp.StatusCode)
			}
			if m := f.Refused(); len(m) != 1 || !strings.HasSuffix(m[0], "/control") {
				t.Fatalf("direct requests seen: %v; want only the control", m)
			}
			for _, p := range []*proxytest.Proxy{px, px2} {
				if rf := p.Refused(); len(rf) != 0 {
					t.Errorf("the proxy refused %v", rf)
				}
			}
		})
	}
}
