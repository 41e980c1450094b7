package sim

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/store"
)

// authAccounts lists the accounts whose auth_{accountId} collection holds a
// sim auth document, by account id.
func (m *MongoAuth) authAccounts(ctx context.Context) ([]string, error) {
	prefix := store.AuthCollection("")
	names, err := m.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list auth collections: %w", err)
	}
	var out []string
	for _, n := range names {
		id, ok := strings.CutPrefix(n, prefix)
		if !ok {
			continue
		}
		have, err := m.db.Collection(n).CountDocuments(ctx, bson.D{{Key: "_id", Value: authDocID}})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
		if have > 0 {
			out = append(out, id)
		}
	}
	return out, nil
}

// Count counts the paired sim accounts.
func (m *MongoAuth) Count(ctx context.Context) (int64, error) {
	ids, err := m.authAccounts(ctx)
	return int64(len(ids)), err
}

// Export hands every sim account's auth state to fn in batches.
func (m *MongoAuth) Export(ctx context.Context, batch int, fn func([]*AuthRecord) error) error {
	ids, err := m.authAccounts(ctx)
	if err != nil {
		return err
	}
	var out []*AuthRecord
	for _, id := range ids {
		a, err := m.Load(ctx, id)
		if err != nil {
			return err
		}
		if a == nil {
			continue // deleted meanwhile
		}
		out = append(out, &AuthRecord{AccountID: id, Auth: *a})
		if len(out) == batch {
			if err := fn(out); err != nil {
				return err
			}
			out = nil
		}
	}
	if len(out) > 0 {
		return fn(out)
	}
	return nil
}

// Import stores the auth states, replacing stored ones.
func (m *MongoAuth) Import(ctx context.Context, recs []*AuthRecord) error {
	for _, r := range recs {
		if err := m.Save(ctx, r.AccountID, r.Auth); err != nil {
			return err
		}
	}
	return nil
}
