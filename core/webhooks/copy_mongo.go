package webhooks

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/store"
)

// The engine-to-engine copy (wildcatd store copy) on MongoDB: every
// endpoint exactly as stored, secrets and health included.

// Count counts the endpoints.
func (m *MongoEndpoints) Count(ctx context.Context) (int64, error) { return store.Count(ctx, m.c, nil) }

// Export hands every endpoint to fn in batches, by id.
func (m *MongoEndpoints) Export(ctx context.Context, batch int, fn func([]*Endpoint) error) error {
	return store.Export(ctx, m.c, nil, bson.D{{Key: "_id", Value: 1}}, batch, fn)
}

// Import stores the endpoints with their ids, replacing stored ones.
func (m *MongoEndpoints) Import(ctx context.Context, es []*Endpoint) error {
	ids, docs := make([]any, len(es)), make([]any, len(es))
	for i, e := range es {
		ids[i], docs[i] = e.ID, e
	}
	return store.ReplaceAll(ctx, m.c, ids, docs)
}
