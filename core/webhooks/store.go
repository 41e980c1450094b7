package webhooks

import (
	"context"
	"time"
)

// EndpointStore keeps the endpoints, secrets and health included. The
// Registry decides what an endpoint becomes; the store writes it whole, or
// (for health) one field, atomically.
type EndpointStore interface {
	// Insert stores a new endpoint; ErrExists when the id is taken.
	Insert(ctx context.Context, e *Endpoint) error
	// Get reads one endpoint; ErrNotFound when there is none.
	Get(ctx context.Context, id string) (*Endpoint, error)
	// List reads every endpoint, by id.
	List(ctx context.Context) ([]*Endpoint, error)
	// Replace overwrites a stored endpoint; ErrNotFound when there is none.
	Replace(ctx context.Context, e *Endpoint) error
	// Delete removes an endpoint; ErrNotFound when there is none.
	Delete(ctx context.Context, id string) error
	// SetFailingSince records the start of a failure streak, or its end
	// (nil), leaving the rest of the endpoint as it is.
	SetFailingSince(ctx context.Context, id string, t *time.Time) error
	// Disable turns an enabled endpoint off with the reason, at at (also its
	// updatedAt), and reports whether this call did it: false when it was
	// already disabled (or is gone), so only one writer announces it.
	Disable(ctx context.Context, id, reason string, at time.Time) (bool, error)
}
