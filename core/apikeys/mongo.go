package apikeys

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/store"
)

// Collection holds the keys on MongoDB, one document per key by _id; every
// query is an _id lookup or the whole (small) collection.
const Collection = "api_keys"

// Mongo keeps the keys in Collection.
type Mongo struct{ c *mongo.Collection }

// NewMongo returns the store on db.
func NewMongo(db *mongo.Database) *Mongo { return &Mongo{c: db.Collection(Collection)} }

var _ Store = (*Mongo)(nil)

func byID(id string) bson.D { return bson.D{{Key: "_id", Value: id}} }

// Insert implements Store.
func (m *Mongo) Insert(ctx context.Context, k *Key) error {
	if _, err := m.c.InsertOne(ctx, k); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("%w: %q", ErrExists, k.ID)
		}
		return fmt.Errorf("store api key %q: %w", k.ID, err)
	}
	return nil
}

// Get implements Store.
func (m *Mongo) Get(ctx context.Context, id string) (*Key, error) {
	var k Key
	err := m.c.FindOne(ctx, byID(id)).Decode(&k)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read api key %q: %w", id, err)
	}
	return normalize(&k), nil
}

// normalize gives times the UTC location SQLite reads them with.
func normalize(k *Key) *Key {
	k.CreatedAt = k.CreatedAt.UTC()
	for _, t := range []*time.Time{k.ExpiresAt, k.RotatedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	if len(k.Accounts) == 0 {
		k.Accounts = nil
	}
	return k
}

// List implements Store.
func (m *Mongo) List(ctx context.Context) ([]*Key, error) {
	cur, err := m.c.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	var out []*Key
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	for _, k := range out {
		normalize(k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// SetHash implements Store.
func (m *Mongo) SetHash(ctx context.Context, id string, hash []byte, rotatedAt time.Time) error {
	res, err := m.c.UpdateOne(ctx, byID(id), bson.D{{Key: "$set", Value: bson.D{{Key: "hash", Value: hash}, {Key: "rotatedAt", Value: rotatedAt}}}})
	if err != nil {
		return fmt.Errorf("rotate api key %q: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return nil
}

// Delete implements Store.
func (m *Mongo) Delete(ctx context.Context, id string) error {
	res, err := m.c.DeleteOne(ctx, byID(id))
	if err != nil {
		return fmt.Errorf("delete api key %q: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return nil
}

// Count implements Store (and the copy's counting).
func (m *Mongo) Count(ctx context.Context) (int64, error) { return store.Count(ctx, m.c, nil) }

// Export hands every key to fn in batches, by id (wildcatd store copy).
func (m *Mongo) Export(ctx context.Context, batch int, fn func([]*Key) error) error {
	return store.Export(ctx, m.c, nil, bson.D{{Key: "_id", Value: 1}}, batch, func(ks []*Key) error {
		for _, k := range ks {
			normalize(k)
		}
		return fn(ks)
	})
}

// Import stores the keys with their ids, replacing stored ones.
func (m *Mongo) Import(ctx context.Context, ks []*Key) error {
	ids, docs := make([]any, len(ks)), make([]any, len(ks))
	for i, k := range ks {
		ids[i], docs[i] = k.ID, k
	}
	return store.ReplaceAll(ctx, m.c, ids, docs)
}
