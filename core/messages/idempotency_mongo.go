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

// idempotencyMongo keeps the records in the idempotency collection. A
// claim is an insert on the unique _id; without transactions, taking over
// a dead record deletes exactly that record (by its createdAt) and claims
// again.
type idempotencyMongo struct{ c *mongo.Collection }

func newIdempotencyMongo(db *mongo.Database) *idempotencyMongo {
	return &idempotencyMongo{c: db.Collection(store.Idempotency)}
}

func (s *idempotencyMongo) Claim(ctx context.Context, rec *IdempotencyRecord, dead func(old *IdempotencyRecord) bool) (*IdempotencyRecord, error) {
	for range 3 {
		_, err := s.c.InsertOne(ctx, rec)
		if err == nil {
			return nil, nil
		}
		if !store.IsDuplicateKey(err) {
			return nil, err
		}
		var old IdempotencyRecord
		err = s.c.FindOne(ctx, bson.D{{Key: "_id", Value: rec.ID}}).Decode(&old)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // released meanwhile: claim again
		}
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		if dead(&old) {
			if _, err := s.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: rec.ID}, {Key: "createdAt", Value: old.CreatedAt}}); err != nil {
				return nil, fmt.Errorf("expire: %w", err)
			}
			continue
		}
		return &old, nil
	}
	return nil, errors.New("still contended")
}

func (s *idempotencyMongo) Complete(ctx context.Context, id string, status int, contentType, location string, body []byte) error {
	_, err := s.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "done", Value: true}, {Key: "status", Value: status}, {Key: "contentType", Value: contentType},
		{Key: "location", Value: location}, {Key: "body", Value: body},
	}}})
	return err
}

func (s *idempotencyMongo) Release(ctx context.Context, id string) error {
	_, err := s.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "done", Value: false}})
	return err
}

func (s *idempotencyMongo) Sweep(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.c.DeleteMany(ctx, bson.D{{Key: "createdAt", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
	if err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}
