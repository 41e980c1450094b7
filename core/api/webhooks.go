package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// Webhooks is the webhook endpoint registry; *webhooks.Registry implements it.
type Webhooks interface {
	Create(ctx context.Context, in webhooks.Input) (*webhooks.Endpoint, error)
	Get(ctx context.Context, id string) (*webhooks.Endpoint, error)
	List(ctx context.Context) ([]*webhooks.Endpoint, error)
	Update(ctx context.Context, id string, in webhooks.Input) (*webhooks.Endpoint, error)
	Delete(ctx context.Context, id string) error
	RotateSecret(ctx context.Context, id string) (*webhooks.Endpoint, error)
	Test(ctx context.Context, id string) (*outbox.Attempt, error)
}

type webhookRoutes struct {
	reg Webhooks
}

// create answers POST /v1/webhooks: 201 with the endpoint and its secret,
// which no later answer shows again (rotate-secret makes a new one).
func (h *webhookRoutes) create(w http.ResponseWriter, r *http.Request) error {
	var in webhooks.Input
	if err := DecodeJSON(r, &in); err != nil {
		return err
	}
	e, err := h.reg.Create(r.Context(), in)
	if err != nil {
		return webhookError(err, "")
	}
	w.Header().Set("Location", "/v1/webhooks/"+e.ID)
	return WriteJSON(w, http.StatusCreated, e)
}

// list answers GET /v1/webhooks.
func (h *webhookRoutes) list(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	all, err := h.reg.List(r.Context())
	if err != nil {
		return err
	}
	out := make([]*webhooks.Endpoint, 0, len(all))
	for _, e := range all {
		out = append(out, e.Public())
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"webhooks": out})
}

// get answers GET /v1/webhooks/{id}.
func (h *webhookRoutes) get(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	e, err := h.reg.Get(r.Context(), id)
	if err != nil {
		return webhookError(err, id)
	}
	return WriteJSON(w, http.StatusOK, e.Public())
}

// update answers PATCH /v1/webhooks/{id}: the fields sent change, the
// others stay. enabled: true re-enables a disabled endpoint (nothing is
// replayed by itself; POST /v1/deliveries/replay does that).
func (h *webhookRoutes) update(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	var in webhooks.Input
	if err := DecodeJSON(r, &in); err != nil {
		return err
	}
	e, err := h.reg.Update(r.Context(), id, in)
	if err != nil {
		return webhookError(err, id)
	}
	return WriteJSON(w, http.StatusOK, e.Public())
}

// delete answers DELETE /v1/webhooks/{id}.
func (h *webhookRoutes) delete(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	if err := h.reg.Delete(r.Context(), id); err != nil {
		return webhookError(err, id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rotate answers POST /v1/webhooks/{id}/rotate-secret with the new secret;
// the old one keeps signing, alongside, for 24 hours.
func (h *webhookRoutes) rotate(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	e, err := h.reg.RotateSecret(r.Context(), id)
	if err != nil {
		return webhookError(err, id)
	}
	return WriteJSON(w, http.StatusOK, e)
}

// testAttempt is the answer of POST /v1/webhooks/{id}/test: every field
// always present.
type testAttempt struct {
	At         time.Time      `json:"at"`
	DurationMS int64          `json:"durationMs"`
	Result     outbox.Outcome `json:"result"`
	Status     int            `json:"status"`
	Error      string         `json:"error"`
	Response   string         `json:"response"`
}

// test answers POST /v1/webhooks/{id}/test: a webhook.test event is sent
// to the endpoint now, outside the outbox, and the attempt is the answer —
// 200 whatever the receiver said (result ok, retry or fail).
func (h *webhookRoutes) test(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	a, err := h.reg.Test(r.Context(), id)
	if err != nil {
		return webhookError(err, id)
	}
	return WriteJSON(w, http.StatusOK, testAttempt{At: a.At, DurationMS: a.DurationMS, Result: a.Result, Status: a.Status, Error: a.Error, Response: a.Response})
}

func webhookError(err error, id string) error {
	var fe *webhooks.FieldError
	switch {
	case errors.As(err, &fe):
		return Invalid(fe.Field, "%s", fe.Problem)
	case errors.Is(err, webhooks.ErrNotFound):
		return NotFound("webhook", id)
	case errors.Is(err, webhooks.ErrExists):
		return Conflict("%s", err.Error())
	}
	return err
}
