package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection names shared by the daemon's packages. Auth state lives in one
// auth_{accountId} collection per account (see AuthCollection).
const (
	Accounts = "accounts"
	Messages = "messages"
	Webhooks = "webhooks"
	Outbox   = "outbox"
	KV       = "kv"
	// Chats holds one document per (account, chat): last message, unread
	// count, activity order — maintained as messages are stored.
	Chats = "chats"
	// Idempotency keeps the first answer to requests with an Idempotency-Key.
	Idempotency = "idempotency"
	// MediaBucket is the GridFS bucket: media.files and media.chunks.
	MediaBucket = "media"
	// MediaFiles and MediaChunks are the bucket's two collections.
	MediaFiles  = MediaBucket + ".files"
	MediaChunks = MediaBucket + ".chunks"
)

// AuthCollection names the collection holding one account's WhatsApp auth state.
func AuthCollection(accountID string) string { return "auth_" + accountID }

// collectionSpec declares a collection and its secondary indexes. On the
// tests' in-process FerretDB the indexes are accepted but only _id lookups
// use one;
// on MongoDB they carry the queries named in their comments.
type collectionSpec struct {
	name    string
	indexes []mongo.IndexModel
}

func idx(name string, keys bson.D, unique bool) mongo.IndexModel {
	o := options.Index().SetName(name)
	if unique {
		o.SetUnique(true)
	}
	return mongo.IndexModel{Keys: keys, Options: o}
}

var schema = []collectionSpec{
	{name: Accounts},
	{name: Messages, indexes: []mongo.IndexModel{
		// history of one chat, newest first: a page is one range on sortKey
		idx("account_chat_order", bson.D{{Key: "accountId", Value: 1}, {Key: "chatId", Value: 1}, {Key: "sortKey", Value: -1}}, false),
		// history of one account, newest first
		idx("account_order", bson.D{{Key: "accountId", Value: 1}, {Key: "sortKey", Value: -1}}, false),
		// the event stream's resume (GET /v1/events with Last-Event-ID):
		// every account, in storing order
		idx("stored_order", bson.D{{Key: "storedAt", Value: 1}, {Key: "_id", Value: 1}}, false),
		// pipeline recovery: an account's unfinished events, in storing order
		idx("account_unprocessed", bson.D{{Key: "accountId", Value: 1}, {Key: "pipelineDone", Value: 1}, {Key: "storedAt", Value: 1}, {Key: "_id", Value: 1}}, false),
		// the sweep of sends left pending by a dead daemon
		idx("pending_stored", bson.D{{Key: "status", Value: 1}, {Key: "storedAt", Value: 1}}, false),
		// media retention: the messages that link a stored file
		idx("media_id", bson.D{{Key: "mediaId", Value: 1}}, false),
		// the pipeline trace sweep (messages.PurgeTraces)
		idx("trace_at", bson.D{{Key: "traceAt", Value: 1}}, false),
	}},
	{name: Chats, indexes: []mongo.IndexModel{
		// chats of one account by last activity
		idx("account_activity", bson.D{{Key: "accountId", Value: 1}, {Key: "activityKey", Value: -1}}, false),
	}},
	{name: Idempotency, indexes: []mongo.IndexModel{
		// the explicit expiry sweep
		idx("created_at", bson.D{{Key: "createdAt", Value: 1}}, false),
	}},
	// The GridFS indexes every GridFS client expects (the spec's names), so
	// drivers and tools read the bucket as their own.
	{name: MediaFiles, indexes: []mongo.IndexModel{
		idx("filename_1_uploadDate_1", bson.D{{Key: "filename", Value: 1}, {Key: "uploadDate", Value: 1}}, false),
	}},
	{name: MediaChunks, indexes: []mongo.IndexModel{
		idx("files_id_1_n_1", bson.D{{Key: "files_id", Value: 1}, {Key: "n", Value: 1}}, true),
	}},
	{name: Webhooks},
	// The outbox creates its own indexes (outbox.EnsureIndexes).
	{name: Outbox},
	{name: KV, indexes: []mongo.IndexModel{
		// the explicit expiry sweep (an expired key is also ignored by reads)
		idx("expires_at", bson.D{{Key: "expiresAt", Value: 1}}, false),
	}},
}

// EnsureSchema creates the collections and indexes the design names. It is
// idempotent, so every daemon runs it at start.
func (s *Store) EnsureSchema(ctx context.Context) error {
	for _, c := range schema {
		if err := s.db.CreateCollection(ctx, c.name); err != nil && !isNamespaceExists(err) {
			return fmt.Errorf("create collection %s: %w", c.name, err)
		}
		// One index per command: FerretDB v1.24 panics on a createIndexes
		// command that carries more than one new index.
		for _, ix := range c.indexes {
			if _, err := s.db.Collection(c.name).Indexes().CreateOne(ctx, ix); err != nil {
				return fmt.Errorf("create index on %s: %w", c.name, err)
			}
		}
	}
	return nil
}

// isNamespaceExists matches MongoDB's NamespaceExists (48), which both
// MongoDB and FerretDB answer when a collection is already there.
func isNamespaceExists(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == 48
}

// IsDuplicateKey reports a unique-index violation: for idempotent inserts
// with deterministic _id it means "already stored", not a failure.
func IsDuplicateKey(err error) bool { return mongo.IsDuplicateKeyError(err) }
