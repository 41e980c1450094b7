package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

type resolver map[string][]string

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

var testResolver = resolver{
	"public.example":   {"93.184.216.34"},
	"mixed.example":    {"93.184.216.34", "10.0.0.7"},
	"metadata.example": {"169.254.169.254"},
	"v6local.example":  {"fd00::1"},
	"nat64.example":    {"64:ff9b::a9fe:a9fe"},
}

// forbiddenHosts is every form of a non-public target the guard must
// refuse, both when a URL is registered and when it is dialled.
var forbiddenHosts = []string{
	"127.0.0.1", "[::1]", "10.1.2.3", "192.168.1.1", "172.16.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
	"localhost", "api.localhost", "mixed.example", "metadata.example", "v6local.example", "nat64.example",
	// IPv4 in the forms inet_aton and browsers accept.
	"2130706433", "0x7f000001", "017700000001", "127.1", "0", "0x7f.1", "127.0.0.01",
	// Ideographic and full-width full stops, which IDNA maps to dots.
	"127。0。0。1", "127．0．0．1", "169。254。169。254",
	// IPv4 carried in IPv6.
	"[::ffff:127.0.0.1]", "[::127.0.0.1]", "[::a9fe:a9fe]", "[64:ff9b::7f00:1]", "[64:ff9b::a9fe:a9fe]", "[64:ff9b::10.0.0.1]",
	"[2002:7f00:1::]", "[2002:a9fe:a9fe::1]", "[2002:c0a8:101::]", "[2001::1]",
	// Documentation and other reserved ranges.
	"192.0.2.10", "198.51.100.7", "203.0.113.9", "[2001:db8::1]", "[3fff::1]", "198.18.0.1", "240.0.0.1", "255.255.255.255",
	"[fe80::1]", "[fc00::1]", "[ff02::1]", "[::]", "[fec0::1]", "[100::1]",
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"https://public.example/h", "http://93.184.216.34:8080/h", "http://[2606:4700::1]/",
		"http://[64:ff9b::5db8:d822]/", "http://[2002:5db8:d822::1]/"} {
		if _, err := CheckURL(ctx, u, false, testResolver); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, h := range append(forbiddenHosts, "unresolvable.example") {
		u := "http://" + h + "/x"
		_, err := CheckURL(ctx, u, false, testResolver)
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: got %v, want ErrForbidden", u, err)
		}
		if _, err := CheckURL(ctx, u, true, testResolver); err != nil {
			t.Errorf("%s with private targets allowed: %v", u, err)
		}
	}
	for _, u := range []string{"ftp://public.example/", "file:///etc/passwd", "public.example/h", "http:///x", "https://user:pw@public.example/", "::"} {
		_, err := CheckURL(ctx, u, true, testResolver)
		var ue *URLError
		if !errors.As(err, &ue) || errors.Is(err, ErrForbidden) {
			t.Errorf("%s: got %v, want a malformed-URL error", u, err)
		}
	}
}

func TestPublicAddr(t *testing.T) {
	for a, want := range map[string]bool{
		"93.184.216.34": true, "2606:4700::1": true, "64:ff9b::5db8:d822": true, "2002:5db8:d822::": true,
		"::ffff:93.184.216.34": true,
		"::127.0.0.1":          false, "::ffff:127.0.0.1": false, "64:ff9b::7f00:1": false, "2002:7f00:1::": false,
		"2002:a00:1::": false, "192.0.2.1": false, "198.51.100.1": false, "203.0.113.1": false, "2001:db8::1": false,
	} {
		if got := PublicAddr(netip.MustParseAddr(a)); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", a, got, want)
		}
	}
}

func TestControlRefusesNonPublic(t *testing.T) {
	for _, a := range []string{"127.0.0.1:80", "[fe80::1]:80", "[::127.0.0.1]:80", "[::ffff:127.0.0.1]:80", "[64:ff9b::a9fe:a9fe]:80",
		"[2002:7f00:1::]:80", "192.0.2.1:80", "198.51.100.1:80", "203.0.113.1:80", "[2001:db8::1]:80"} {
		if err := Control("tcp", a, nil); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: %v", a, err)
		}
	}
	if err := Control("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("public: %v", err)
	}
}

// TestTransportRefusesAtConnect sends real requests through the guarded
// transport to a server on loopback, naming it in every form above: none
// may reach it, and with private targets allowed the plain address does.
func TestTransportRefusesAtConnect(t *testing.T) {
	reached := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	// Resolve names as the test says, and the loopback names as a system
	// resolver would, so "localhost" really points at the server.
	res := resolver{"localhost": {"127.0.0.1"}, "api.localhost": {"127.0.0.1"}, "rebind.example": {"127.0.0.1"}}
	for k, v := range testResolver {
		res[k] = v
	}
	guarded := &http.Client{Transport: Transport(&Dialer{Resolver: res})}
	t.Setenv("HTTP_PROXY", srv.URL)
	t.Setenv("http_proxy", srv.URL)
	for _, h := range append(forbiddenHosts, "rebind.example") {
		// Build the request by hand: url.Parse keeps the odd host forms.
		req, err := http.NewRequest(http.MethodGet, "http://placeholder/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL = &url.URL{Scheme: "http", Host: h + ":" + port, Path: "/"}
		if strings.HasPrefix(h, "[") {
			req.URL.Host = h + ":" + port
		}
		resp, err := guarded.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: reached the server", h)
			continue
		}
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", h, err)
		}
	}
	// A public address is dialled (it need not answer: refusing it before
	// the dial would be the bug).
	pub := &Dialer{Resolver: res}
	if _, err := pub.resolve(context.Background(), "public.example"); err != nil {
		t.Errorf("public.example: %v", err)
	}
	if reached != 0 {
		t.Fatalf("the server was reached %d times", reached)
	}
	open := &http.Client{Transport: Transport(NewDialer(0, true))}
	resp, err := open.Get(srv.URL)
	if err != nil {
		t.Fatalf("private targets allowed: %v", err)
	}
	resp.Body.Close()
	if reached != 1 {
		t.Fatalf("the allowed request did not reach the server directly (HTTP_PROXY must be ignored): %d", reached)
	}
}
