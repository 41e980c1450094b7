package store

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Helpers for the engine-to-engine copy (wildcatd store copy): each domain
// package exports and imports its own documents with them.

// Export streams the documents of coll matching filter, sorted, to fn in
// batches of up to batch, decoded as T.
func Export[T any](ctx context.Context, coll *mongo.Collection, filter, sort bson.D, batch int, fn func([]*T) error) error {
	if filter == nil {
		filter = bson.D{}
	}
	cur, err := coll.Find(ctx, filter, options.Find().SetSort(sort).SetBatchSize(int32(batch)))
	if err != nil {
		return fmt.Errorf("export %s: %w", coll.Name(), err)
	}
	defer cur.Close(ctx)
	out := make([]*T, 0, batch)
	for cur.Next(ctx) {
		var d T
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("export %s: %w", coll.Name(), err)
		}
		out = append(out, &d)
		if len(out) == batch {
			if err := fn(out); err != nil {
				return err
			}
			out = make([]*T, 0, batch)
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("export %s: %w", coll.Name(), err)
	}
	if len(out) > 0 {
		return fn(out)
	}
	return nil
}

// maxWritesPerCommand bounds the statements of one bulk write: FerretDB v1
// hangs on update commands of about a hundred statements.
const maxWritesPerCommand = 25

// ReplaceAll writes docs whole, each under its _id in ids, replacing any
// document with that _id: importing the same documents again changes
// nothing.
func ReplaceAll(ctx context.Context, coll *mongo.Collection, ids []any, docs []any) error {
	models := make([]mongo.WriteModel, len(docs))
	for i := range docs {
		models[i] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: ids[i]}}).SetReplacement(docs[i]).SetUpsert(true)
	}
	for chunk := range slices.Chunk(models, maxWritesPerCommand) {
		if _, err := coll.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false)); err != nil {
			return fmt.Errorf("import into %s: %w", coll.Name(), err)
		}
	}
	return nil
}

// Count counts the documents of coll matching filter (nil: all).
func Count(ctx context.Context, coll *mongo.Collection, filter bson.D) (int64, error) {
	if filter == nil {
		filter = bson.D{}
	}
	n, err := coll.CountDocuments(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", coll.Name(), err)
	}
	return n, nil
}
