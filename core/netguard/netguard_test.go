package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
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

func TestCheckURL(t *testing.T) {
	r := resolver{
		"public.example":   {"93.184.216.34"},
		"mixed.example":    {"93.184.216.34", "10.0.0.7"},
		"metadata.example": {"169.254.169.254"},
		"v6local.example":  {"fd00::1"},
	}
	ctx := context.Background()
	for _, u := range []string{"https://public.example/h", "http://93.184.216.34:8080/h", "https://unresolvable.example/h", "http://[2606:4700::1]/"} {
		if _, err := CheckURL(ctx, u, false, r); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	forbidden := []string{
		"http://127.0.0.1/", "http://[::1]/", "http://10.1.2.3/", "http://192.168.1.1/", "http://172.16.0.1/",
		"http://169.254.169.254/latest/meta-data", "http://100.64.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/",
		"http://localhost:8080/", "http://api.localhost/", "https://mixed.example/", "https://metadata.example/", "https://v6local.example/",
	}
	for _, u := range forbidden {
		_, err := CheckURL(ctx, u, false, r)
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: got %v, want ErrForbidden", u, err)
		}
		if _, err := CheckURL(ctx, u, true, r); err != nil {
			t.Errorf("%s with private targets allowed: %v", u, err)
		}
	}
	for _, u := range []string{"ftp://public.example/", "file:///etc/passwd", "public.example/h", "http:///x", "https://user:pw@public.example/", "::"} {
		_, err := CheckURL(ctx, u, true, r)
		var ue *URLError
		if !errors.As(err, &ue) || errors.Is(err, ErrForbidden) {
			t.Errorf("%s: got %v, want a malformed-URL error", u, err)
		}
	}
}

func TestControlRefusesNonPublic(t *testing.T) {
	if err := Control("tcp", "127.0.0.1:80", nil); !errors.Is(err, ErrForbidden) {
		t.Errorf("loopback: %v", err)
	}
	if err := Control("tcp", "[fe80::1]:80", nil); !errors.Is(err, ErrForbidden) {
		t.Errorf("link-local: %v", err)
	}
	if err := Control("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("public: %v", err)
	}
}
