// Package s3mediatest runs an in-process S3-protocol server (gofakes3 over
// memory) on a loopback port for tests, recording every request it
// answers: the headers a client sent (gofakes3 stores but does not act on
// server-side encryption headers, so tests assert they were sent) and how
// many uploads reached it.
package s3mediatest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Request is one request the server answered.
type Request struct {
	Method, Path string
	Query        string
	Header       http.Header
	Status       int
}

// Upload reports whether the request wrote object bytes (a PUT that is
// not a server-side copy, or a multipart part).
func (r Request) Upload() bool {
	return r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") == ""
}

// Copy reports whether the request was a server-side copy.
func (r Request) Copy() bool {
	return r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != ""
}

// Server is a running fake S3 with one bucket.
type Server struct {
	URL     string
	Backend *s3mem.Backend

	mu   sync.Mutex
	reqs []Request
}

// New starts a server with the bucket; it stops when the test ends.
func New(t testing.TB, bucket string) *Server {
	t.Helper()
	be := s3mem.New()
	if err := be.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	s := &Server{Backend: be}
	fake := gofakes3.New(be, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		fake.ServeHTTP(rec, r)
		s.mu.Lock()
		s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Status: rec.status})
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Requests are the requests answered so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Count is how many requests answered so far match.
func (s *Server) Count(match func(Request) bool) int {
	n := 0
	for _, r := range s.Requests() {
		if match(r) {
			n++
		}
	}
	return n
}

// Uploads is how many uploads of the object key (bucket/key path) were
// answered; "" counts every upload.
func (s *Server) Uploads(path string) int {
	return s.Count(func(r Request) bool {
		return r.Upload() && (path == "" || strings.TrimPrefix(r.Path, "/") == strings.TrimPrefix(path, "/"))
	})
}

// Keys lists the keys in bucket under prefix.
func (s *Server) Keys(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	l, err := s.Backend.ListBucket(bucket, &gofakes3.Prefix{Prefix: prefix, HasPrefix: true}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range l.Contents {
		out = append(out, c.Key)
	}
	return out
}

// Object is the stored bytes of key, nil when absent.
func (s *Server) Object(t testing.TB, bucket, key string) []byte {
	t.Helper()
	o, err := s.Backend.GetObject(bucket, key, nil)
	if err != nil {
		return nil
	}
	defer o.Contents.Close()
	b, err := io.ReadAll(o.Contents)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
