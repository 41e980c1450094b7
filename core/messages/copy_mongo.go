package messages

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store"
)

// The MongoDB side of the engine-to-engine copy (copy.go).

func (b *mongoBackend) CountMessages(ctx context.Context) (int64, error) {
	return store.Count(ctx, b.c, nil)
}

// ExportMessages reads in stored order, (storedAt, _id).
func (b *mongoBackend) ExportMessages(ctx context.Context, batch int, fn func([]*Message) error) error {
	return store.Export(ctx, b.c, nil, bson.D{{Key: "storedAt", Value: 1}, {Key: "_id", Value: 1}}, batch, fn)
}

func (b *mongoBackend) ImportMessages(ctx context.Context, ms []*Message) error {
	ids, docs := make([]any, len(ms)), make([]any, len(ms))
	for i, m := range ms {
		ids[i], docs[i] = m.ID, m
	}
	return store.ReplaceAll(ctx, b.c, ids, docs)
}

// hasTrace selects the messages with a trace: $gt "" matches only
// strings, and of them only the ones not empty.
var hasTrace = bson.D{{Key: "trace", Value: bson.D{{Key: "$gt", Value: ""}}}}

func (b *mongoBackend) CountTraces(ctx context.Context) (int64, error) {
	return store.Count(ctx, b.c, hasTrace)
}

// ExportTraces reads by _id, only the trace fields.
func (b *mongoBackend) ExportTraces(ctx context.Context, batch int, fn func([]*TraceRecord) error) error {
	cur, err := b.c.Find(ctx, hasTrace, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetProjection(bson.D{{Key: "trace", Value: 1}, {Key: "traceAt", Value: 1}}).SetBatchSize(int32(batch)))
	if err != nil {
		return fmt.Errorf("export traces: %w", err)
	}
	defer cur.Close(ctx)
	ts := make([]*TraceRecord, 0, batch)
	for cur.Next(ctx) {
		var t TraceRecord
		if err := cur.Decode(&t); err != nil {
			return fmt.Errorf("export traces: %w", err)
		}
		t.At = t.At.UTC()
		if ts = append(ts, &t); len(ts) == batch {
			if err := fn(ts); err != nil {
				return err
			}
			ts = make([]*TraceRecord, 0, batch)
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("export traces: %w", err)
	}
	if len(ts) > 0 {
		return fn(ts)
	}
	return nil
}

// writesPerCommand bounds the statements of one bulk write: FerretDB v1
// hangs on update commands of about a hundred statements.
const writesPerCommand = 25

// ImportTraces $sets the trace fields only, without upsert: a trace never
// makes a message document of its own.
func (b *mongoBackend) ImportTraces(ctx context.Context, ts []*TraceRecord) (int64, error) {
	models := make([]mongo.WriteModel, len(ts))
	for i, t := range ts {
		models[i] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: t.ID}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "trace", Value: t.Trace}, {Key: "traceAt", Value: t.At}}}})
	}
	return b.bulkUpdate(ctx, models, "import traces")
}

// bulkUpdate runs update models in chunks and reports how many matched.
func (b *mongoBackend) bulkUpdate(ctx context.Context, models []mongo.WriteModel, what string) (int64, error) {
	var matched int64
	for chunk := range slices.Chunk(models, writesPerCommand) {
		res, err := b.c.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false))
		if err != nil {
			return matched, fmt.Errorf("%s: %w", what, err)
		}
		matched += res.MatchedCount
	}
	return matched, nil
}

// rewriteMessages writes ms over their stored documents field by field
// ($set) rather than whole, so what a Message does not hold — the
// pipeline trace — stays. It is Reencrypt's write: re-sealing changes
// values, never which fields a document has.
func (b *mongoBackend) rewriteMessages(ctx context.Context, ms []*Message) error {
	models := make([]mongo.WriteModel, len(ms))
	for i, m := range ms {
		raw, err := bson.Marshal(m)
		if err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		elems, err := bson.Raw(raw).Elements()
		if err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		set := make(bson.D, 0, len(elems))
		for _, e := range elems {
			if e.Key() != "_id" {
				set = append(set, bson.E{Key: e.Key(), Value: e.Value()})
			}
		}
		models[i] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: m.ID}}).
			SetUpdate(bson.D{{Key: "$set", Value: set}})
	}
	_, err := b.bulkUpdate(ctx, models, "rewrite messages")
	return err
}

func (b *mongoBackend) CountChats(ctx context.Context) (int64, error) {
	return store.Count(ctx, b.chats, nil)
}

func (b *mongoBackend) ExportChats(ctx context.Context, batch int, fn func([]*Chat) error) error {
	return store.Export(ctx, b.chats, nil, bson.D{{Key: "_id", Value: 1}}, batch, fn)
}

func (b *mongoBackend) ImportChats(ctx context.Context, cs []*Chat) error {
	ids, docs := make([]any, len(cs)), make([]any, len(cs))
	for i, c := range cs {
		if c.ID == "" {
			c.ID = ChatDocID(c.AccountID, c.ChatID)
		}
		ids[i], docs[i] = c.ID, c
	}
	return store.ReplaceAll(ctx, b.chats, ids, docs)
}

func (s *idempotencyMongo) Count(ctx context.Context) (int64, error) {
	return store.Count(ctx, s.c, nil)
}

func (s *idempotencyMongo) Export(ctx context.Context, batch int, fn func([]*IdempotencyRecord) error) error {
	return store.Export(ctx, s.c, nil, bson.D{{Key: "_id", Value: 1}}, batch, fn)
}

func (s *idempotencyMongo) Import(ctx context.Context, recs []*IdempotencyRecord) error {
	ids, docs := make([]any, len(recs)), make([]any, len(recs))
	for i, r := range recs {
		ids[i], docs[i] = r.ID, r
	}
	return store.ReplaceAll(ctx, s.c, ids, docs)
}
