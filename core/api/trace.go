package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
)

// Traces reads the pipeline traces stored on messages.
type Traces interface {
	// Trace is the trace's JSON and when it was stored: messages.ErrNotFound
	// when there is no such message, messages.ErrNoTrace when it has none.
	Trace(ctx context.Context, accountID, messageID string) ([]byte, time.Time, error)
}

type traceRoutes struct {
	accounts   Accounts
	traces     Traces
	deliveries Deliveries
}

// messageTrace is the wire form of GET .../messages/{messageId}/trace.
type messageTrace struct {
	MessageID string    `json:"messageId"`
	EventID   string    `json:"eventId"`
	StoredAt  time.Time `json:"storedAt"`
	// Trace is the pipeline.Trace as stored.
	Trace json.RawMessage `json:"trace"`
	// Deliveries are the event's outbox jobs with their attempt logs (none
	// once delivered jobs are purged, as the trace then is too).
	Deliveries []*outbox.Job `json:"deliveries"`
}

// get answers GET /v1/accounts/{id}/messages/{messageId}/trace.
func (h *traceRoutes) get(w http.ResponseWriter, r *http.Request) error {
	v := mux.Vars(r)
	if _, err := h.accounts.GetAccount(r.Context(), v["id"]); err != nil {
		return accountError(err)
	}
	raw, at, err := h.traces.Trace(r.Context(), v["id"], v["messageId"])
	switch {
	case errors.Is(err, messages.ErrNotFound):
		return NotFound("message", v["messageId"])
	case errors.Is(err, messages.ErrNoTrace):
		return &Error{Status: http.StatusNotFound, Slug: "no-trace", Title: "No pipeline trace",
			Detail: fmt.Sprintf("message %q has no pipeline trace: it has not been through the pipeline yet, or its trace is older than outbox.retention", v["messageId"])}
	case err != nil:
		return err
	}
	out := messageTrace{MessageID: v["messageId"], EventID: event.MessageEventID(v["id"], v["messageId"]), StoredAt: at,
		Trace: raw, Deliveries: []*outbox.Job{}}
	if h.deliveries != nil {
		page, err := h.deliveries.List(r.Context(), outbox.Filter{EventID: out.EventID, AccountID: v["id"]}, "", outbox.MaxPage)
		if err != nil {
			return err
		}
		out.Deliveries = append(out.Deliveries, page.Jobs...)
	}
	return WriteJSON(w, http.StatusOK, out)
}
