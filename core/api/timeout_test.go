package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/stream"
)

// trickle opens a connection, sends a request whose body is announced as
// length bytes and then sends one byte every tick until the server stops
// reading. It returns the connection's reader; the writer stops when the
// connection fails.
func trickle(t *testing.T, addr, path, contentType, prefix string, length int, tick time.Duration) (*bufio.Reader, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s", path, addr, contentType, length, prefix)
	go func() {
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for i := len(prefix); i < length; i++ {
			<-tk.C
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	return bufio.NewReader(conn), conn
}

// TestSlowBodyIsCut: a client trickling a body is cut at http.read_timeout
// although it never stops sending, while an upload route trickled for
// longer than that completes (it has http.upload_timeout).
func TestSlowBodyIsCut(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	s := New(Options{ReadTimeout: readTimeout, UploadTimeout: time.Minute, MaxBodyBytes: 1 << 20})
	s.Handle("/echo", func(w http.ResponseWriter, r *http.Request) error {
		var b echoBody
		if err := DecodeJSON(r, &b); err != nil {
			return err
		}
		return WriteJSON(w, http.StatusCreated, b)
	}, http.MethodPost)
	s.root.Handle("/v1/upload", s.handleBody(func(w http.ResponseWriter, r *http.Request) error {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusCreated, map[string]int64{"size": n})
	}, 2<<20, uploadBody)).Methods(http.MethodPost)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })

	start := time.Now()
	br, conn := trickle(t, s.Addr(), "/v1/echo", "application/json", `{"name":"`, 1<<20, 10*time.Millisecond)
	// Fail rather than hang if the body is never cut.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"field":"body"`) {
			t.Fatalf("trickled body: %d %s, want 408 naming the body", resp.StatusCode, body)
		}
		// And the connection is closed after it.
		_, err = br.ReadByte()
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the trickling client was not cut: %v", err)
	}
	if elapsed := time.Since(start); elapsed < readTimeout {
		t.Fatalf("cut after %s, before the read timeout", elapsed)
	}

	// 60 bytes at one per 10 ms take longer than the read timeout; the
	// upload route's own deadline lets them through.
	br, conn = trickle(t, s.Addr(), "/v1/upload", "application/octet-stream", "", 60, 10*time.Millisecond)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	start = time.Now()
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"size":60`) {
		t.Fatalf("slow upload: %d %s", resp.StatusCode, body)
	}
	t.Logf("upload took %s (read timeout %s)", time.Since(start), readTimeout)
}

// TestEventStreamOutlivesReadTimeout: the read timeout bounds reading the
// request, not the life of the event stream that answers it (a
// WriteTimeout, or a deadline left on the connection, would end it).
func TestEventStreamOutlivesReadTimeout(t *testing.T) {
	const readTimeout = 100 * time.Millisecond
	s := New(Options{ReadTimeout: readTimeout, Events: stream.New(10, 10), EventsKeepAlive: 20 * time.Millisecond})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	resp, err := http.Get("http://" + s.Addr() + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	sc := bufio.NewScanner(resp.Body)
	keepAlives := 0
	// Read keep-alives until the stream has lived through several read
	// timeouts; a stream cut by the timeout ends the scan early.
	for sc.Scan() {
		if sc.Text() == ": keep-alive" {
			keepAlives++
		}
		if keepAlives >= 5 && time.Since(start) > 4*readTimeout {
			return
		}
	}
	t.Fatalf("the stream ended after %s and %d keep-alives: %v", time.Since(start), keepAlives, sc.Err())
}
