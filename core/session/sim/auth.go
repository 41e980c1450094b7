package sim

import (
	"context"
	"time"
)

// Auth is a sim account's auth state: proof that it was paired.
type Auth struct {
	JID      string
	LID      string
	PairedAt time.Time
}

// AuthStore keeps the sim accounts' auth state.
type AuthStore interface {
	// Load returns the account's auth state, nil when it is not paired.
	Load(ctx context.Context, accountID string) (*Auth, error)
	// Save stores (or replaces) the account's auth state.
	Save(ctx context.Context, accountID string, a Auth) error
	// Delete forgets the account's auth state; none is not an error.
	Delete(ctx context.Context, accountID string) error
}
