package whatsapp

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/store"
)

// Count counts the stored answers.
func (m *MongoMediaRetries) Count(ctx context.Context) (int64, error) {
	return store.Count(ctx, m.c, nil)
}

// Export hands every stored answer to fn in batches.
func (m *MongoMediaRetries) Export(ctx context.Context, batch int, fn func([]*MediaRetryRecord) error) error {
	return store.Export(ctx, m.c, nil, bson.D{{Key: "_id", Value: 1}}, batch, func(docs []*mediaRetryDoc) error {
		out := make([]*MediaRetryRecord, len(docs))
		for i, d := range docs {
			// An account id has no ':' (accountid.Check); a message id may.
			account, message, ok := strings.Cut(d.ID, ":")
			if !ok {
				return fmt.Errorf("media retry answer %q: malformed id", d.ID)
			}
			out[i] = &MediaRetryRecord{AccountID: account, MessageID: message,
				MediaRetry: MediaRetry{Ciphertext: d.Ciphertext, IV: d.IV, ErrorCode: d.ErrorCode, At: d.At}}
		}
		return fn(out)
	})
}

// Import stores the answers, replacing stored ones.
func (m *MongoMediaRetries) Import(ctx context.Context, recs []*MediaRetryRecord) error {
	ids, docs := make([]any, len(recs)), make([]any, len(recs))
	for i, r := range recs {
		d := mediaRetryDoc{ID: mediaRetryID(r.AccountID, r.MessageID), Ciphertext: r.Ciphertext, IV: r.IV, ErrorCode: r.ErrorCode, At: r.At.UTC()}
		ids[i], docs[i] = d.ID, d
	}
	return store.ReplaceAll(ctx, m.c, ids, docs)
}
