package whatsapp

import (
	"context"
	"time"
)

// MediaRetry is the phone's answer to a media retry request: the new direct
// path arrives as an encrypted notification that only the message's media
// key opens, possibly on another daemon than the one that asked, so it is
// stored as it came.
type MediaRetry struct {
	Ciphertext []byte
	IV         []byte
	// ErrorCode is the phone's error, 0 for none.
	ErrorCode int
	At        time.Time
}

// MediaRetryStore keeps the latest answer per (account, message).
type MediaRetryStore interface {
	// Put stores (or replaces) the answer for the message.
	Put(ctx context.Context, accountID, messageID string, r MediaRetry) error
	// Get returns the stored answer, nil when there is none.
	Get(ctx context.Context, accountID, messageID string) (*MediaRetry, error)
}
