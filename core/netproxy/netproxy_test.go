package netproxy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/wildcathub/wildcat/core/netguard"
	"github.com/wildcathub/wildcat/core/netproxy"
	"github.com/wildcathub/wildcat/core/netproxy/proxytest"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		ok   bool
		want string // part of the error
	}{
		{"socks5://127.0.0.1:1080", true, ""},
		{"socks5://user:pa%3Ass@proxy.example.com:1080", true, ""},
		{"http://proxy.example.com:3128", true, ""},
		{"https://u:p@proxy.example.com:443/", true, ""},
		{"http://[2001:db8::1]:8080", true, ""},
		{"", false, "must be a URL"},
		{" socks5://h:1", false, "without spaces"},
		{"ftp://h:21", false, `scheme "ftp"`},
		{"socks4://h:1080", false, `scheme "socks4"`},
		{"proxy.example.com:1080", false, "scheme"},
		{"socks5://:1080", false, "no host"},
		{"socks5://user:secret@proxy.example.com", false, "no port"},
		{"http://h:0", false, "not 1 to 65535"},
		{"http://h:70000", false, "not 1 to 65535"},
		{"http://h:3128/path", false, "path"},
		{"http://h:3128?x=1", false, "query"},
		{"http://:secret@h:3128", false, "without a user name"},
		{"http://user:se cret@h:3128", false, "not a URL"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			_, err := netproxy.Parse(tc.raw)
			if tc.ok != (err == nil) {
				t.Fatalf("Parse(%q) = %v, want ok=%v", tc.raw, err, tc.ok)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %q does not say %q", err, tc.want)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("error %q repeats the password", err)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for raw, want := range map[string]string{
		"":                                   "",
		"socks5://user:secret@host:1080":     "socks5://user:***@host:1080",
		"http://user@host:3128":              "http://user@host:3128",
		"https://host:443":                   "https://host:443",
		"http://us%40er:p%40ss@h:8080":       "http://us%40er:***@h:8080",
		"gopher://user:secret@host:70":       "[invalid proxy URL]",
		"socks5://user:secret@host:99999999": "[invalid proxy URL]",
	} {
		if got := netproxy.Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}

// hello is a plain HTTP server the tunnels lead to.
func hello(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Host)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, d *netproxy.Dialer, url string) (string, error) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestDialThroughBothKinds: a request reaches its server only through the
// proxy, with the proxy's credentials; wrong ones are refused.
func TestDialThroughBothKinds(t *testing.T) {
	for _, kind := range []proxytest.Kind{proxytest.SOCKS5, proxytest.CONNECT} {
		t.Run(string(kind), func(t *testing.T) {
			srv := hello(t)
			// The name only the proxy knows: the test's own resolver cannot
			// find it, so only the proxy can have reached the server.
			px := proxytest.Start(t, kind, proxytest.Options{User: "ann", Password: "s3cret:/@x", Route: func(target string) (string, error) {
				if target != "backend.internal:80" {
					return "", fmt.Errorf("unknown target %s", target)
				}
				return srv.Listener.Addr().String(), nil
			}})
			d, err := netproxy.New(px.URL())
			if err != nil {
				t.Fatal(err)
			}
			body, err := get(t, d, "http://backend.internal/x")
			if err != nil {
				t.Fatal(err)
			}
			if body != "hello backend.internal" {
				t.Fatalf("body %q", body)
			}
			tun := px.Tunnels()
			if len(tun) != 1 || tun[0].Target != "backend.internal:80" || tun[0].Up.Load() == 0 || tun[0].Down.Load() == 0 {
				t.Fatalf("tunnels %+v", tun)
			}

			bad, err := netproxy.New(strings.Replace(px.URL(), "ann:", "bob:", 1))
			if err != nil {
				t.Fatal(err)
			}
			_, err = get(t, bad, "http://backend.internal/x")
			if err == nil {
				t.Fatal("wrong credentials passed")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error shows the password: %v", err)
			}
			if len(px.Tunnels()) != 1 {
				t.Fatalf("a tunnel opened with wrong credentials: %+v", px.Tunnels())
			}
		})
	}
}

// fakeResolver answers from a table.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestGuardChecksTheDestination: with a guard, the proxy may sit on a
// loopback address, but it is asked only for checked public addresses: a
// name resolving to a private one, or a private literal, never reaches it.
func TestGuardChecksTheDestination(t *testing.T) {
	for _, kind := range []proxytest.Kind{proxytest.SOCKS5, proxytest.CONNECT} {
		t.Run(string(kind), func(t *testing.T) {
			srv := hello(t)
			px := proxytest.Start(t, kind, proxytest.Options{Route: func(string) (string, error) { return srv.Listener.Addr().String(), nil }})
			d, err := netproxy.New(px.URL())
			if err != nil {
				t.Fatal(err)
			}
			d.Guard = &netguard.Dialer{Resolver: fakeResolver{
				"media.example.com": {netip.MustParseAddr("93.184.216.34")},
				"evil.example.com":  {netip.MustParseAddr("169.254.169.254")},
			}}
			if _, err := get(t, d, "http://media.example.com/a"); err != nil {
				t.Fatal(err)
			}
			for _, u := range []string{"http://evil.example.com/latest/meta-data", "http://10.0.0.1/", "http://localhost:8080/", "http://[::1]/"} {
				if _, err := get(t, d, u); !errors.Is(err, netguard.ErrForbidden) {
					t.Errorf("%s: %v, want ErrForbidden", u, err)
				}
			}
			tun := px.Tunnels()
			if len(tun) != 1 || tun[0].Target != "93.184.216.34:80" {
				t.Fatalf("the proxy was asked for %+v; want only the checked address 93.184.216.34:80", tun)
			}
		})
	}
}

// TestHTTPSProxy: an https:// proxy is spoken to over TLS.
func TestHTTPSProxy(t *testing.T) {
	srv := hello(t)
	// The CONNECT proxy behind a TLS terminator of the test's own.
	px := proxytest.Start(t, proxytest.CONNECT, proxytest.Options{Route: func(string) (string, error) { return srv.Listener.Addr().String(), nil }})
	front := httptest.NewUnstartedServer(nil)
	front.StartTLS()
	t.Cleanup(front.Close)
	_ = front.Listener.Close() // only its certificate is wanted
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tlsLn.Close() })
	cfg := front.TLS.Clone()
	go func() {
		for {
			c, err := tlsLn.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, cfg)
				up, err := net.Dial("tcp", px.Addr())
				if err != nil {
					_ = tc.Close()
					return
				}
				go func() { _, _ = io.Copy(up, tc); _ = up.Close() }()
				_, _ = io.Copy(tc, up)
				_ = tc.Close()
			}()
		}
	}()
	d, err := netproxy.New("https://" + tlsLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	d.TLS = front.Client().Transport.(*http.Transport).TLSClientConfig
	d.TLS.ServerName = "example.com"
	body, err := get(t, d, "http://backend.internal/x")
	if err != nil {
		t.Fatal(err)
	}
	if body != "hello backend.internal" || len(px.Tunnels()) != 1 {
		t.Fatalf("body %q, tunnels %+v", body, px.Tunnels())
	}
}
