package rules

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/store"
)

// ownDocs are the rules' documents of the kv collection, which the plugins'
// store shares.
var ownDocs = bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + kvPrefix}}}}

// Count counts the stored keys of every rule.
func (k *MongoKV) Count(ctx context.Context) (int64, error) { return store.Count(ctx, k.coll, ownDocs) }

// Export hands every stored key to fn in batches, values as the JSON the
// rule stored.
func (k *MongoKV) Export(ctx context.Context, batch int, fn func([]*KVEntry) error) error {
	return store.Export(ctx, k.coll, ownDocs, bson.D{{Key: "_id", Value: 1}}, batch, func(docs []*kvDoc) error {
		out := make([]*KVEntry, len(docs))
		for i, d := range docs {
			v, err := bsonToJSON(d.Value)
			if err != nil {
				return fmt.Errorf("rule kv entry %s: %w", d.ID, err)
			}
			out[i] = &KVEntry{Rule: d.NS[len(kvPrefix):], Key: d.Key, Value: v, UpdatedAt: d.UpdatedAt, ExpiresAt: d.ExpiresAt}
		}
		return fn(out)
	})
}

// Import stores the entries, replacing stored ones, numbers as Set stores
// them (integral ones as int64, so Incr keeps them integral).
func (k *MongoKV) Import(ctx context.Context, es []*KVEntry) error {
	ids, docs := make([]any, len(es)), make([]any, len(es))
	for i, e := range es {
		v, err := jsonToBSON(e.Value)
		if err != nil {
			return fmt.Errorf("rule %s key %q: %w", e.Rule, e.Key, err)
		}
		id := KVID(e.Rule, e.Key)
		doc := bson.D{{Key: "_id", Value: id}, {Key: "ns", Value: kvPrefix + e.Rule}, {Key: "key", Value: e.Key},
			{Key: "value", Value: v}, {Key: "updatedAt", Value: e.UpdatedAt.UTC()}}
		if e.ExpiresAt != nil {
			doc = append(doc, bson.E{Key: "expiresAt", Value: e.ExpiresAt.UTC()})
		}
		ids[i], docs[i] = id, doc
	}
	return store.ReplaceAll(ctx, k.coll, ids, docs)
}
