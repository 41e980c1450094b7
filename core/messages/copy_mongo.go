package messages

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

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
