package webhooks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// Envelope is the JSON body of every webhook request:
//
//	{"type":"message.received","timestamp":"2026-11-25T12:00:00Z","data":{…the event…}}
//
// Data is the event in its public JSON shape (core/event), the same one
// rules and plugins see. Webhook-only kinds (webhook.test, webhook.disabled)
// carry their details in data.annotations.
type Envelope struct {
	Type      string       `json:"type"`
	Timestamp time.Time    `json:"timestamp"`
	Data      *event.Event `json:"data"`
}

// Render is the body Wildcat sends for ev.
func Render(ev *event.Event) ([]byte, error) {
	return json.Marshal(Envelope{Type: string(ev.Kind), Timestamp: ev.Timestamp.UTC(), Data: ev})
}

// RenderBatch is the body of a batch request (an endpoint with batch on):
// a JSON array of the events' envelopes, in order,
//
//	[{"type":"message.received",…,"data":{…}},{"type":"message.status",…}]
//
// signed as one body: webhook-id is BatchID of the events' ids, and the
// signature is the usual one over "{webhook-id}.{timestamp}.{the whole
// array}", so Verify (and any Standard Webhooks library) checks it
// unchanged. Receivers drop repeats per element, by data.id.
func RenderBatch(evs []*event.Event) ([]byte, error) {
	envs := make([]Envelope, len(evs))
	for i, ev := range evs {
		envs[i] = Envelope{Type: string(ev.Kind), Timestamp: ev.Timestamp.UTC(), Data: ev}
	}
	return json.Marshal(envs)
}

// BatchID is the webhook-id of a batch request: "batch_" and the first 16
// bytes, in hex, of the SHA-256 of the events' ids joined by newlines — the
// same for a retry of the same events in the same order.
func BatchID(eventIDs []string) string {
	sum := sha256.Sum256([]byte(strings.Join(eventIDs, "\n")))
	return "batch_" + hex.EncodeToString(sum[:16])
}

// Target is what the daemon hands the webhook plugin with every attempt
// (the job's target config, JSON): one endpoint's delivery settings.
type Target struct {
	// EndpointID names the endpoint in logs.
	EndpointID string `json:"endpointId"`
	URL        string `json:"url"`
	// Secrets sign the request, newest first: two while a rotated secret
	// is still valid.
	Secrets []string          `json:"secrets"`
	Headers map[string]string `json:"headers,omitempty"`
	// TimeoutMS bounds one attempt (connect, send, answer), in milliseconds.
	TimeoutMS int64 `json:"timeoutMs"`
	// AllowPrivate lets the request reach loopback, private and link-local
	// addresses (webhooks.allow_private_targets).
	AllowPrivate bool `json:"allowPrivate,omitempty"`
	// Batch: the endpoint takes several deliveries in one request, a JSON
	// array of envelopes (RenderBatch) signed as one body.
	Batch bool `json:"batch,omitempty"`
}
