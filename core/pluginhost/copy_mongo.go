package pluginhost

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/store"
)

// ownDocs are the plugins' documents of the kv collection, which the rules'
// store shares.
var ownDocs = bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + kvPrefix}}}}

// Count counts the stored keys of every plugin.
func (k *MongoKV) Count(ctx context.Context) (int64, error) { return store.Count(ctx, k.coll, ownDocs) }

// Export hands every stored key to fn in batches.
func (k *MongoKV) Export(ctx context.Context, batch int, fn func([]*KVEntry) error) error {
	return store.Export(ctx, k.coll, ownDocs, bson.D{{Key: "_id", Value: 1}}, batch, func(docs []*kvDoc) error {
		out := make([]*KVEntry, len(docs))
		for i, d := range docs {
			v := d.Value
			if v == nil {
				v = []byte{}
			}
			out[i] = &KVEntry{Plugin: d.NS[len(kvPrefix):], Key: d.Key, Value: v, UpdatedAt: d.UpdatedAt, ExpiresAt: d.ExpiresAt}
		}
		return fn(out)
	})
}

// Import stores the entries, replacing stored ones.
func (k *MongoKV) Import(ctx context.Context, es []*KVEntry) error {
	ids, docs := make([]any, len(es)), make([]any, len(es))
	for i, e := range es {
		d := kvDoc{ID: KVID(e.Plugin, e.Key), NS: kvPrefix + e.Plugin, Key: e.Key, Value: e.Value, UpdatedAt: e.UpdatedAt.UTC()}
		if d.Value == nil {
			d.Value = []byte{}
		}
		if e.ExpiresAt != nil {
			t := e.ExpiresAt.UTC()
			d.ExpiresAt = &t
		}
		ids[i], docs[i] = d.ID, d
	}
	return store.ReplaceAll(ctx, k.coll, ids, docs)
}
