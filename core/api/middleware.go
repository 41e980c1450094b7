package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/bounded"
)

type ctxKey int

const requestIDKey ctxKey = iota

// RequestIDHeader carries the request ID in and out. A caller's own ID is
// kept when it looks sane, so one ID follows a request across services.
const RequestIDHeader = "X-Request-Id"

var saneRequestID = bounded.MustCompile(`^[A-Za-z0-9._:-]+$`, 1, 128)

// RequestID returns the ID of the request being served, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers what was written for the access log and the
// panic handler.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Flush keeps streaming responses (e.g. server-sent events) working.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// instrument assigns the request ID, recovers panics into a
// logged 500 and writes one access-log line per request.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		ri := &requestInfo{client: clientAddr(r, s.proxies)}
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		r = r.WithContext(context.WithValue(ctx, requestInfoKey{}, ri))
		rec := &statusRecorder{ResponseWriter: w}

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", slog.String("request_id", id), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				if rec.status == 0 {
					writeProblem(rec, r, &Error{Status: http.StatusInternalServerError, Slug: "internal", Title: "Internal server error",
						Detail: "the server failed to handle this request; the request ID finds it in the log"})
				}
			}
			level := slog.LevelInfo
			if isProbe(r) {
				level = slog.LevelDebug // probes every few seconds would drown the log
			}
			attrs := []slog.Attr{
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("remote", ri.client),
			}
			// The key by id and name, never its secret.
			if ri.key != nil {
				attrs = append(attrs, slog.String("key_id", ri.key.ID), slog.String("key", ri.key.Name))
			}
			s.log.LogAttrs(r.Context(), level, "http request", attrs...)
		}()
		next.ServeHTTP(rec, r)
	})
}

// handle adapts a HandlerFunc: the body is limited to the server's maximum,
// and a returned error is rendered as a problem and logged (client errors
// at debug, server errors at error).
func (s *Server) handle(h HandlerFunc) http.Handler { return s.handleLimit(h, s.maxBody) }

// handleLimit is handle with a route's own body limit.
func (s *Server) handleLimit(h HandlerFunc, maxBody int64) http.Handler {
	return s.handleBody(h, maxBody, jsonBody)
}

// handleBody is handleLimit for a route taking bodies of the given kind.
func (s *Server) handleBody(h HandlerFunc, maxBody int64, kind bodyKind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if maxBody > s.maxBody && hasBody(r) {
			// Media bodies may take longer than the server's read timeout.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.uploadTimeout))
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		err := checkQuery(r)
		if err == nil {
			err = checkPathVars(mux.Vars(r))
		}
		if err == nil {
			err = checkBodyType(r, kind)
		}
		if err == nil {
			err = h(w, r)
		}
		if err == nil {
			return
		}
		ae := writeProblem(w, r, err)
		switch {
		case isProbe(r):
			// A 503 from /readyz while starting or during an outage is the
			// probe doing its job; the store watcher logs the outage itself.
			s.log.Debug("probe not ready", slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
		case ae.Status >= 500:
			s.log.Error("request failed", slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
		default:
			s.log.Debug("request refused", slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
		}
	})
}

// checkQuery refuses a query string that does not decode (a malformed
// escape such as %u002e): url.Values would silently drop the pair, and the
// route would answer as if the parameter had not been given.
func checkQuery(r *http.Request) error {
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		return Invalid("query", "does not decode: %v", err)
	}
	return nil
}

func isProbe(r *http.Request) bool { return r.URL.Path == "/healthz" || r.URL.Path == "/readyz" }
