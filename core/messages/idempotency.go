package messages

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/store"
)

// IdempotencyRecord is the first answer to a request carrying an
// Idempotency-Key, kept so a retry gets the same answer instead of a second
// send. Its _id is {accountId}:{key}: the insert of a second request with
// the key fails on the unique _id, on either engine, which is what makes
// claiming a key safe without transactions.
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

// Idempotency stores the records in the idempotency collection.
type Idempotency struct {
	c   *mongo.Collection
	ttl time.Duration
	now func() time.Time
}

// abandonAfter: a record still not done this long after it was claimed
// belongs to a request that died with its daemon; a retry takes it over.
const abandonAfter = 2 * time.Minute

// NewIdempotency returns the store; records older than ttl are expired.
func NewIdempotency(db *mongo.Database, ttl time.Duration) *Idempotency {
	return &Idempotency{c: db.Collection(store.Idempotency), ttl: ttl, now: time.Now}
}

// Claim claims key for a request with the given fingerprint. It returns
// nil when the caller now owns the key and must Complete or Release it, or
// the existing record when another request claimed it first.
func (s *Idempotency) Claim(ctx context.Context, id, requestHash string) (*IdempotencyRecord, error) {
	for range 3 {
		rec := IdempotencyRecord{ID: id, RequestHash: requestHash, CreatedAt: s.now().UTC()}
		_, err := s.c.InsertOne(ctx, rec)
		if err == nil {
			return nil, nil
		}
		if !store.IsDuplicateKey(err) {
			return nil, fmt.Errorf("claim idempotency key %s: %w", id, err)
		}
		var old IdempotencyRecord
		err = s.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&old)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // released meanwhile: claim again
		}
		if err != nil {
			return nil, fmt.Errorf("read idempotency key %s: %w", id, err)
		}
		age := s.now().Sub(old.CreatedAt)
		if age > s.ttl || (!old.Done && age > abandonAfter) {
			// Expired, or orphaned: delete exactly that record and claim again.
			if _, err := s.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "createdAt", Value: old.CreatedAt}}); err != nil {
				return nil, fmt.Errorf("expire idempotency key %s: %w", id, err)
			}
			continue
		}
		return &old, nil
	}
	return nil, fmt.Errorf("claim idempotency key %s: still contended", id)
}

// Complete stores the answer given to the request that claimed id.
func (s *Idempotency) Complete(ctx context.Context, id string, status int, contentType, location string, body []byte) error {
	_, err := s.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "done", Value: true}, {Key: "status", Value: status}, {Key: "contentType", Value: contentType},
		{Key: "location", Value: location}, {Key: "body", Value: body},
	}}})
	if err != nil {
		return fmt.Errorf("complete idempotency key %s: %w", id, err)
	}
	return nil
}

// Release gives id up (the request failed in a way a retry may fix).
func (s *Idempotency) Release(ctx context.Context, id string) error {
	if _, err := s.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "done", Value: false}}); err != nil {
		return fmt.Errorf("release idempotency key %s: %w", id, err)
	}
	return nil
}

// Sweep deletes expired records; the embedded engine has no TTL indexes, so
// the daemon calls this periodically.
func (s *Idempotency) Sweep(ctx context.Context) (int64, error) {
	res, err := s.c.DeleteMany(ctx, bson.D{{Key: "createdAt", Value: bson.D{{Key: "$lt", Value: s.now().Add(-s.ttl).UTC()}}}})
	if err != nil {
		return 0, fmt.Errorf("sweep idempotency keys: %w", err)
	}
	return res.DeletedCount, nil
}
