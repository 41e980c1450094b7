package webhooks

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// MongoEndpoints keeps the endpoints in a collection (Collection unless
// named otherwise), one document per endpoint by _id; every query is an _id
// lookup or the whole (small) collection, so it needs no other index.
type MongoEndpoints struct {
	c *mongo.Collection
}

// NewMongoEndpoints returns the store on db's collection; "" means
// Collection.
func NewMongoEndpoints(db *mongo.Database, collection string) *MongoEndpoints {
	if collection == "" {
		collection = Collection
	}
	return &MongoEndpoints{c: db.Collection(collection)}
}

var _ EndpointStore = (*MongoEndpoints)(nil)

// Insert implements EndpointStore.
func (m *MongoEndpoints) Insert(ctx context.Context, e *Endpoint) error {
	if _, err := m.c.InsertOne(ctx, e); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("%w: %q", ErrExists, e.ID)
		}
		return fmt.Errorf("store webhook endpoint: %w", err)
	}
	return nil
}

// Get implements EndpointStore.
func (m *MongoEndpoints) Get(ctx context.Context, id string) (*Endpoint, error) {
	var e Endpoint
	err := m.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read webhook endpoint %q: %w", id, err)
	}
	return &e, nil
}

// List implements EndpointStore.
func (m *MongoEndpoints) List(ctx context.Context) ([]*Endpoint, error) {
	cur, err := m.c.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	var out []*Endpoint
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Replace implements EndpointStore.
func (m *MongoEndpoints) Replace(ctx context.Context, e *Endpoint) error {
	res, err := m.c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: e.ID}}, e)
	if err != nil {
		return fmt.Errorf("store webhook endpoint %q: %w", e.ID, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, e.ID)
	}
	return nil
}

// Delete implements EndpointStore.
func (m *MongoEndpoints) Delete(ctx context.Context, id string) error {
	res, err := m.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("delete webhook endpoint %q: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return nil
}

// SetFailingSince implements EndpointStore.
func (m *MongoEndpoints) SetFailingSince(ctx context.Context, id string, t *time.Time) error {
	var update bson.D
	if t == nil {
		update = bson.D{{Key: "$unset", Value: bson.D{{Key: "failingSince", Value: ""}}}}
	} else {
		update = bson.D{{Key: "$set", Value: bson.D{{Key: "failingSince", Value: t.UTC()}}}}
	}
	if _, err := m.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, update); err != nil {
		return fmt.Errorf("record health of webhook endpoint %q: %w", id, err)
	}
	return nil
}

// Disable implements EndpointStore: the update matches only while enabled.
func (m *MongoEndpoints) Disable(ctx context.Context, id, reason string, at time.Time) (bool, error) {
	res, err := m.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "enabled", Value: true}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "enabled", Value: false}, {Key: "disabledReason", Value: reason},
			{Key: "disabledAt", Value: at.UTC()}, {Key: "updatedAt", Value: at.UTC()},
		}}})
	if err != nil {
		return false, fmt.Errorf("disable webhook endpoint %q: %w", id, err)
	}
	return res.ModifiedCount > 0, nil
}
