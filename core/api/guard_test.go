package api

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// guardServer serves a JSON route, a route that acts without reading its
// body (as POST …/connect does) and an upload route.
func guardServer(t *testing.T, opts Options) (string, *atomic.Int32) {
	t.Helper()
	var ran atomic.Int32
	s := New(opts)
	s.Handle("/echo", func(w http.ResponseWriter, r *http.Request) error {
		var b echoBody
		if err := DecodeJSON(r, &b); err != nil {
			return err
		}
		ran.Add(1)
		return WriteJSON(w, http.StatusCreated, b)
	}, http.MethodPost)
	s.Handle("/act", func(w http.ResponseWriter, r *http.Request) error {
		ran.Add(1)
		return WriteJSON(w, http.StatusAccepted, map[string]string{"ok": "yes"})
	}, http.MethodPost)
	s.root.Handle("/v1/upload", s.handleBody(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.Copy(io.Discard, r.Body)
		ran.Add(1)
		return WriteJSON(w, http.StatusCreated, map[string]string{"ok": "yes"})
	}, 1<<20, uploadBody)).Methods(http.MethodPost)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	return "http://" + s.Addr(), &ran
}

func TestCrossSiteAndRebindingRequestsRefused(t *testing.T) {
	base, ran := guardServer(t, Options{Hosts: []string{"wildcat.internal"}, AllowedOrigins: []string{"https://console.example"}})
	port := base[strings.LastIndex(base, ":")+1:]
	const js = "application/json"
	tests := []struct {
		name, method, path, host, ct, body string
		header                             []string
		status                             int
		field                              string
	}{
		{"JSON without a content type", "POST", "/v1/echo", "", "", `{"name":"a"}`, nil, 415, "Content-Type"},
		{"form post", "POST", "/v1/echo", "", "application/x-www-form-urlencoded", `{"name":"a"}`, nil, 415, "Content-Type"},
		{"text/plain post", "POST", "/v1/echo", "", "text/plain", `{"name":"a"}`, nil, 415, "Content-Type"},
		{"form post to a route that ignores its body", "POST", "/v1/act", "", "text/plain", `x`, nil, 415, "Content-Type"},
		{"multipart to a JSON route", "POST", "/v1/act", "", "multipart/form-data; boundary=x", "--x--", nil, 415, "Content-Type"},
		{"cross-site origin", "POST", "/v1/echo", "", js, `{"name":"a"}`, []string{"Origin", "http://evil.example"}, 403, "Origin"},
		{"cross-site origin, no body", "POST", "/v1/act", "", "", ``, []string{"Origin", "http://evil.example"}, 403, "Origin"},
		{"cross-site multipart upload", "POST", "/v1/upload", "", "multipart/form-data; boundary=x", "--x--", []string{"Origin", "http://evil.example"}, 403, "Origin"},
		{"another port on localhost", "POST", "/v1/echo", "", js, `{"name":"a"}`, []string{"Origin", "http://127.0.0.1:1"}, 403, "Origin"},
		{"null origin", "POST", "/v1/echo", "", js, `{"name":"a"}`, []string{"Origin", "null"}, 403, "Origin"},
		{"cross-site fetch metadata", "GET", "/v1/openapi.json", "", "", ``, []string{"Sec-Fetch-Site", "cross-site"}, 403, "Origin"},
		{"rebound host name", "POST", "/v1/echo", "attacker.example:" + port, js, `{"name":"a"}`, nil, 421, "Host"},
		{"rebound host name, read", "GET", "/v1/openapi.json", "attacker.example", "", ``, nil, 421, "Host"},
		{"rebound host, same origin", "POST", "/v1/act", "attacker.example:" + port, "", ``, []string{"Origin", "http://attacker.example:" + port}, 421, "Host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := doRequest(t, tt.method, base+tt.path, tt.host, tt.ct, tt.body, tt.header...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			var p Problem
			if err := json.Unmarshal(body, &p); err != nil || p.Field != tt.field {
				t.Fatalf("problem %s, want field %q", body, tt.field)
			}
		})
	}
	if n := ran.Load(); n != 0 {
		t.Fatalf("handlers ran %d times for refused requests", n)
	}

	ok := []struct {
		name, method, path, host, ct, body string
		header                             []string
		status                             int
	}{
		{"JSON", "POST", "/v1/echo", "", js, `{"name":"a"}`, nil, 201},
		{"+json", "POST", "/v1/echo", "", "application/merge-patch+json; charset=utf-8", `{"name":"a"}`, nil, 201},
		{"no body, no content type", "POST", "/v1/act", "", "", ``, nil, 202},
		{"upload with its own type", "POST", "/v1/upload", "", "image/png", "png", nil, 201},
		{"localhost", "POST", "/v1/echo", "localhost:" + port, js, `{"name":"a"}`, nil, 201},
		{"IPv6 loopback", "GET", "/v1/openapi.json", "[::1]:" + port, "", ``, nil, 200},
		{"LAN address", "GET", "/v1/openapi.json", "192.168.1.5:" + port, "", ``, nil, 200},
		{"configured name", "GET", "/v1/openapi.json", "Wildcat.Internal", "", ``, nil, 200},
		{"same origin", "POST", "/v1/echo", "", js, `{"name":"a"}`, []string{"Origin", base}, 201},
		{"listed origin", "POST", "/v1/echo", "", js, `{"name":"a"}`, []string{"Origin", "https://console.example"}, 201},
		{"same-site navigation", "GET", "/v1/openapi.json", "", "", ``, []string{"Sec-Fetch-Site", "none"}, 200},
		{"probe under any name", "GET", "/healthz", "lb-check.example", "", ``, nil, 200},
		{"the machine's name", "GET", "/v1/openapi.json", hostname(t) + ":" + port, "", ``, nil, 200},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := doRequest(t, tt.method, base+tt.path, tt.host, tt.ct, tt.body, tt.header...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
		})
	}

	// A listed origin gets CORS answers, its preflight included.
	resp, _ := doRequest(t, "OPTIONS", base+"/v1/echo", "", "", "", "Origin", "https://console.example", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://console.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = doRequest(t, "OPTIONS", base+"/v1/echo", "", "", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from an unlisted origin: %d %v", resp.StatusCode, resp.Header)
	}

	// "*" in http.hosts answers any name.
	open, _ := guardServer(t, Options{Hosts: []string{"*"}})
	if resp, body := doRequest(t, "GET", open+"/v1/openapi.json", "anything.example", "", ""); resp.StatusCode != 200 {
		t.Fatalf("hosts [*]: %d %s", resp.StatusCode, body)
	}
}

func doRequest(t *testing.T, method, url, host, contentType, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	if host != "" {
		req.Host = host
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func hostname(t *testing.T) string {
	name, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return name
}
