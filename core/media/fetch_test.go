package media

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true, "93.184.216.34": true,
		"127.0.0.1": false, "127.8.9.10": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false,
		"192.168.1.1": false, "169.254.169.254": false, "fe80::1": false, "fc00::1": false, "0.0.0.0": false,
		"::": false, "224.0.0.1": false, "ff02::1": false, "100.64.0.1": false, "255.255.255.255": false,
		"::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "::ffff:8.8.8.8": true,
	} {
		if got := PublicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestFetchGuard: the guard runs on the dialled address, so loopback is
// refused however it is named.
func TestFetchGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("secret")) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	f := NewFetcher(FetchOptions{MaxBytes: 1 << 20, Timeout: 5 * time.Second})
	for _, u := range []string{srv.URL, "http://localhost:" + port, "http://[::1]:" + port} {
		_, err := f.Fetch(context.Background(), u)
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s: got %v, want the address refused", u, err)
		}
	}
	// The same server is reachable when private addresses are allowed.
	open := NewFetcher(FetchOptions{MaxBytes: 1 << 20, Timeout: 5 * time.Second, AllowPrivate: true})
	if got, err := open.Fetch(context.Background(), srv.URL); err != nil || string(got.Data) != "secret" {
		t.Fatalf("allowed fetch: %v %v", got, err)
	}
}

func TestFetchLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		switch {
		case strings.HasPrefix(r.URL.Path, "/hop/"):
			_, _ = fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/hop/"), &n)
			if n > 0 {
				http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
				return
			}
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write([]byte("png"))
		case r.URL.Path == "/stream":
			// No Content-Length: the limit must hold while reading.
			w.Header().Set("Content-Type", "application/pdf")
			for range 100 {
				_, _ = w.Write(make([]byte, 1024))
				w.(http.Flusher).Flush()
			}
		case r.URL.Path == "/declared":
			w.Header().Set("Content-Length", "999999")
			w.WriteHeader(200)
		case r.URL.Path == "/slow":
			time.Sleep(300 * time.Millisecond)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := NewFetcher(FetchOptions{MaxBytes: 10 << 10, Timeout: 200 * time.Millisecond, AllowPrivate: true})
	tests := []struct {
		path    string
		tooBig  bool
		errText string
	}{
		{"/hop/3", false, ""},
		{"/hop/4", false, "redirects"},
		{"/stream", true, ""},
		{"/declared", true, ""},
		{"/missing", false, "404"},
		{"/slow", false, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := f.Fetch(context.Background(), srv.URL+tt.path)
			switch {
			case tt.tooBig:
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("got %v, want too large", err)
				}
			case tt.errText != "":
				if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("got %v, want an error mentioning %q", err, tt.errText)
				}
			default:
				if err != nil || string(got.Data) != "png" || got.Mimetype != "image/png" || got.Filename != "0" {
					t.Fatalf("got %+v, %v", got, err)
				}
			}
		})
	}
}
