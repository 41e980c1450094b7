package session

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/store"
)

// The engine-to-engine copy (wildcatd store copy) on MongoDB: every account
// exactly as stored.

// Count counts the accounts.
func (s *MongoAccounts) Count(ctx context.Context) (int64, error) { return store.Count(ctx, s.c, nil) }

// Export hands every account to fn in batches, by id.
func (s *MongoAccounts) Export(ctx context.Context, batch int, fn func([]*AccountInfo) error) error {
	return store.Export(ctx, s.c, nil, bson.D{{Key: "_id", Value: 1}}, batch, fn)
}

// Import stores the accounts with their ids, replacing stored ones.
func (s *MongoAccounts) Import(ctx context.Context, as []*AccountInfo) error {
	ids, docs := make([]any, len(as)), make([]any, len(as))
	for i, a := range as {
		ids[i], docs[i] = a.ID, a
	}
	return store.ReplaceAll(ctx, s.c, ids, docs)
}
