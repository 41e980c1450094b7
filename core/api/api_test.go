package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a log sink that tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type echoBody struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Tags  []string
}

func startServer(t *testing.T, ready ReadinessFunc) (*Server, string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s := New(Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), MaxBodyBytes: 64, Ready: ready})
	s.Handle("/echo", func(w http.ResponseWriter, r *http.Request) error {
		var b echoBody
		if err := DecodeJSON(r, &b); err != nil {
			return err
		}
		if b.Name == "" {
			return Invalid("name", "must not be empty")
		}
		return WriteJSON(w, http.StatusCreated, b)
	}, http.MethodPost)
	s.Handle("/panic", func(w http.ResponseWriter, r *http.Request) error { panic("boom") }, http.MethodGet)
	s.Handle("/fail", func(w http.ResponseWriter, r *http.Request) error { return errors.New("secret db detail") }, http.MethodGet)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s, "http://" + s.Addr(), logs
}

func do(t *testing.T, method, url, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestProblems(t *testing.T) {
	_, base, logs := startServer(t, nil)
	tests := []struct {
		name, method, path, ct, body string
		status                       int
		field, detail                string
	}{
		{"malformed JSON", "POST", "/v1/echo", "application/json", `{"name":`, 400, "body", "ends too early"},
		{"syntax error", "POST", "/v1/echo", "application/json", `{"name" "x"}`, 400, "body", "malformed JSON"},
		{"empty body", "POST", "/v1/echo", "application/json", ``, 400, "body", "empty"},
		{"wrong type", "POST", "/v1/echo", "application/json", `{"name":"a","count":"3"}`, 400, "count", "expected a number"},
		{"unknown field", "POST", "/v1/echo", "application/json", `{"name":"a","colour":"red"}`, 400, "colour", "unknown field"},
		{"trailing data", "POST", "/v1/echo", "application/json", `{"name":"a"} {}`, 400, "body", "after the JSON value"},
		{"handler validation", "POST", "/v1/echo", "application/json", `{"name":""}`, 400, "name", "must not be empty"},
		{"oversized body", "POST", "/v1/echo", "application/json", `{"name":"` + strings.Repeat("x", 100) + `"}`, 413, "body", "exceeds 64 bytes"},
		{"wrong content type", "POST", "/v1/echo", "text/plain", `{"name":"a"}`, 415, "Content-Type", "application/json"},
		{"no content type", "POST", "/v1/echo", "", `{"name":"a"}`, 415, "Content-Type", "application/json"},
		{"nested too deep", "POST", "/v1/echo", "application/json", `{"name":"a","tags":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, 400, "body", "more than 32 levels"},
		{"brackets in strings do not nest", "POST", "/v1/echo", "application/json", `{"name":"` + strings.Repeat("[{", 17) + `\"[","count":"x"}`, 400, "count", "expected a number"},
		{"no route", "GET", "/v1/nothing", "", "", 404, "", "no route"},
		{"wrong method", "DELETE", "/v1/echo", "", "", 405, "", "DELETE is not allowed"},
		{"panic", "GET", "/v1/panic", "", "", 500, "", "request ID"},
		{"internal error hidden", "GET", "/v1/fail", "", "", 500, "", "request ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, base+tt.path, tt.ct, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			var p Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("problem body is not JSON: %s", body)
			}
			if p.Status != tt.status || !strings.HasPrefix(p.Type, ProblemType) || p.Title == "" {
				t.Fatalf("incomplete problem: %+v", p)
			}
			if p.Field != tt.field {
				t.Errorf("field %q, want %q", p.Field, tt.field)
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q lacks %q", p.Detail, tt.detail)
			}
			if p.RequestID == "" || p.RequestID != resp.Header.Get(RequestIDHeader) {
				t.Errorf("request ID %q not echoed (header %q)", p.RequestID, resp.Header.Get(RequestIDHeader))
			}
			if strings.Contains(string(body), "secret") {
				t.Errorf("internal error leaked to the client: %s", body)
			}
		})
	}
	if !strings.Contains(logs.String(), `"msg":"panic in handler"`) || !strings.Contains(logs.String(), "secret db detail") {
		t.Errorf("panic or internal error not logged:\n%s", logs)
	}
}

func TestSuccessAndRequestID(t *testing.T) {
	_, base, logs := startServer(t, nil)
	req, _ := http.NewRequest("POST", base+"/v1/echo", strings.NewReader(`{"name":"a","count":2}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "caller-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got echoBody
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 201 || got.Name != "a" || got.Count != 2 {
		t.Fatalf("status %d body %+v", resp.StatusCode, got)
	}
	if resp.Header.Get(RequestIDHeader) != "caller-42" {
		t.Fatalf("caller's request ID not kept: %q", resp.Header.Get(RequestIDHeader))
	}
	if !strings.Contains(logs.String(), `"request_id":"caller-42"`) || !strings.Contains(logs.String(), `"status":201`) {
		t.Fatalf("access log line missing:\n%s", logs)
	}
}

func TestProbes(t *testing.T) {
	var mu sync.Mutex
	var notReady error = errors.New("store unreachable")
	_, base, _ := startServer(t, func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return notReady
	})
	if resp, _ := do(t, "GET", base+"/healthz", "", ""); resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	resp, body := do(t, "GET", base+"/readyz", "", "")
	if resp.StatusCode != 503 || !strings.Contains(string(body), "store unreachable") {
		t.Fatalf("readyz while not ready: %d %s", resp.StatusCode, body)
	}
	mu.Lock()
	notReady = nil
	mu.Unlock()
	if resp, _ := do(t, "GET", base+"/readyz", "", ""); resp.StatusCode != 200 {
		t.Fatalf("readyz when ready: %d", resp.StatusCode)
	}
}
