package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/bounded"
	"github.com/wildcathub/wildcat/core/messages"
)

// IdempotencyHeader makes a retried request return the first answer.
const IdempotencyHeader = "Idempotency-Key"

// IdempotencyStore keeps the first answer per key; messages.Idempotency
// implements it.
type IdempotencyStore interface {
	Claim(ctx context.Context, id, requestHash string) (*messages.IdempotencyRecord, error)
	Complete(ctx context.Context, id string, status int, contentType, location string, body []byte) error
	Release(ctx context.Context, id string) error
}

var idempotencyKeyShape = bounded.MustCompile(`^[\x21-\x7e]+$`, 1, 255)

// idempotent wraps a handler of a per-account route. With an
// Idempotency-Key header the first request claims the key (an insert on a
// deterministic _id, {accountId}:{key}: the unique _id decides a race, on
// either engine); its successful answer is stored and replayed, status and
// body, to every retry. A retry while the first is still running gets 409;
// the same key with a different request gets 422. Answers other than 2xx
// are not kept, so a retry after fixing the cause (connecting the account,
// say) runs for real.
func (s *Server) idempotent(store IdempotencyStore, h HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key := r.Header.Get(IdempotencyHeader)
		if key == "" || store == nil {
			return h(w, r)
		}
		if !idempotencyKeyShape.MatchString(key) {
			return Invalid(IdempotencyHeader, "must be 1 to 255 visible ASCII characters, e.g. a UUID")
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return jsonError(err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.New()
		sum.Write([]byte(r.Method + " " + r.URL.Path + "\n" + r.Header.Get("Content-Type") + "\n"))
		sum.Write(body)
		hash := hex.EncodeToString(sum.Sum(nil))
		id := mux.Vars(r)["id"] + ":" + key

		prev, err := store.Claim(r.Context(), id, hash)
		if err != nil {
			return err
		}
		if prev != nil {
			switch {
			case prev.RequestHash != hash:
				return &Error{Status: http.StatusUnprocessableEntity, Slug: "idempotency-key-reused", Title: "Idempotency key reused", Field: IdempotencyHeader,
					Detail: "this key was used for a different request; use a new key for a new request"}
			case !prev.Done:
				return &Error{Status: http.StatusConflict, Slug: "idempotency-key-in-use", Title: "Request still in progress", Field: IdempotencyHeader,
					Detail: "a request with this key is still being handled; retry in a moment"}
			}
			w.Header().Set("Idempotent-Replayed", "true")
			if prev.Location != "" {
				w.Header().Set("Location", prev.Location)
			}
			w.Header().Set("Content-Type", prev.ContentType)
			w.WriteHeader(prev.Status)
			_, err := w.Write(prev.Body)
			return err
		}

		rec := &capture{ResponseWriter: w}
		herr := h(rec, r)
		// The request's context may be gone by now; the record must still
		// be settled, or the key stays blocked until it is abandoned.
		ctx := context.WithoutCancel(r.Context())
		if herr == nil && rec.status >= 200 && rec.status < 300 {
			if err := store.Complete(ctx, id, rec.status, rec.Header().Get("Content-Type"), rec.Header().Get("Location"), rec.body.Bytes()); err != nil {
				s.log.Error("idempotent answer not stored; a retry will run again", slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
			}
			return nil
		}
		if err := store.Release(ctx, id); err != nil {
			s.log.Warn("idempotency key not released", slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
		}
		return herr
	}
}

// capture passes a response through and keeps a copy of it.
type capture struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}
