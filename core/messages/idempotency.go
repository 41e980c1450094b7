package messages

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

// IdempotencyRecord is the first answer to a request carrying an
// Idempotency-Key, kept so a retry gets the same answer instead of a second
// send. Its id is {accountId}:{key}, unique on either engine, which is what
// makes claiming a key safe.
type IdempotencyRecord struct {
	ID string `bson:"_id"`
	// RequestHash fingerprints the request, so a key reused for a different
	// request is refused rather than answered with an unrelated response.
	RequestHash string `bson:"requestHash"`
	// Done is false while the first request is still being handled.
	Done        bool      `bson:"done"`
	Status      int       `bson:"status,omitempty"`
	ContentType string    `bson:"contentType,omitempty"`
	Location    string    `bson:"location,omitempty"`
	Body        []byte    `bson:"body,omitempty"`
	CreatedAt   time.Time `bson:"createdAt"`
}

// IdempotencyBackend keeps the records: the idempotency collection on
// MongoDB (idempotency_mongo.go), the idempotency table on SQLite
// (idempotency_sqlite.go).
type IdempotencyBackend interface {
	// Claim stores rec unless a record with its id exists that dead(old)
	// does not declare dead (then it returns that one and stores nothing);
	// a dead one is replaced. nil means rec is stored.
	Claim(ctx context.Context, rec *IdempotencyRecord, dead func(old *IdempotencyRecord) bool) (*IdempotencyRecord, error)
	Complete(ctx context.Context, id string, status int, contentType, location string, body []byte) error
	// Release deletes the record if it is not done.
	Release(ctx context.Context, id string) error
	// Sweep deletes the records created before cutoff.
	Sweep(ctx context.Context, cutoff time.Time) (int64, error)

	// The engine-to-engine copy (copy.go).
	copyIdempotency
}

// Idempotency keeps the first answers per key, for ttl.
type Idempotency struct {
	b   IdempotencyBackend
	ttl time.Duration
	now func() time.Time
}

// abandonAfter: a record still not done this long after it was claimed
// belongs to a request that died with its daemon; a retry takes it over.
const abandonAfter = 2 * time.Minute

// NewIdempotency returns the store on MongoDB; records older than ttl are
// expired.
func NewIdempotency(db *mongo.Database, ttl time.Duration) *Idempotency {
	return &Idempotency{b: newIdempotencyMongo(db), ttl: ttl, now: time.Now}
}

// NewIdempotencySQLite returns the store on the embedded engine
// (SQLiteSchema's idempotency table).
func NewIdempotencySQLite(db *sqlite.DB, ttl time.Duration) *Idempotency {
	return &Idempotency{b: &idempotencySQLite{db: db}, ttl: ttl, now: time.Now}
}

// Claim claims key for a request with the given fingerprint. It returns
// nil when the caller now owns the key and must Complete or Release it, or
// the existing record when another request claimed it first.
func (s *Idempotency) Claim(ctx context.Context, id, requestHash string) (*IdempotencyRecord, error) {
	now := s.now()
	rec := &IdempotencyRecord{ID: id, RequestHash: requestHash, CreatedAt: now.UTC().Truncate(time.Millisecond)}
	old, err := s.b.Claim(ctx, rec, func(old *IdempotencyRecord) bool {
		// Expired, or orphaned.
		age := now.Sub(old.CreatedAt)
		return age > s.ttl || (!old.Done && age > abandonAfter)
	})
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key %s: %w", id, err)
	}
	return old, nil
}

// Complete stores the answer given to the request that claimed id.
func (s *Idempotency) Complete(ctx context.Context, id string, status int, contentType, location string, body []byte) error {
	if err := s.b.Complete(ctx, id, status, contentType, location, body); err != nil {
		return fmt.Errorf("complete idempotency key %s: %w", id, err)
	}
	return nil
}

// Release gives id up (the request failed in a way a retry may fix).
func (s *Idempotency) Release(ctx context.Context, id string) error {
	if err := s.b.Release(ctx, id); err != nil {
		return fmt.Errorf("release idempotency key %s: %w", id, err)
	}
	return nil
}

// Sweep deletes expired records; neither engine expires them by itself
// (no TTL index is relied on), so the daemon calls this periodically.
func (s *Idempotency) Sweep(ctx context.Context) (int64, error) {
	n, err := s.b.Sweep(ctx, s.now().Add(-s.ttl).UTC())
	if err != nil {
		return 0, fmt.Errorf("sweep idempotency keys: %w", err)
	}
	return n, nil
}
