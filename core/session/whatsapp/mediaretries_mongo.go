package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MediaRetriesCollection holds the answers on MongoDB, one document per
// message keyed {accountId}:{messageId} (every access is by _id).
const MediaRetriesCollection = "wa_media_retries"

// MongoMediaRetries keeps the answers in MediaRetriesCollection.
type MongoMediaRetries struct {
	c *mongo.Collection
}

// NewMongoMediaRetries returns the store on db.
func NewMongoMediaRetries(db *mongo.Database) *MongoMediaRetries {
	return &MongoMediaRetries{c: db.Collection(MediaRetriesCollection)}
}

var _ MediaRetryStore = (*MongoMediaRetries)(nil)

type mediaRetryDoc struct {
	ID         string    `bson:"_id"`
	Ciphertext []byte    `bson:"ciphertext,omitempty"`
	IV         []byte    `bson:"iv,omitempty"`
	ErrorCode  int       `bson:"errorCode,omitempty"`
	At         time.Time `bson:"at"`
}

func mediaRetryID(accountID, messageID string) string { return accountID + ":" + messageID }

// Put implements MediaRetryStore.
func (m *MongoMediaRetries) Put(ctx context.Context, accountID, messageID string, r MediaRetry) error {
	doc := mediaRetryDoc{ID: mediaRetryID(accountID, messageID), Ciphertext: r.Ciphertext, IV: r.IV, ErrorCode: r.ErrorCode, At: r.At.UTC()}
	if _, err := m.c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: doc.ID}}, doc, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("store media retry answer for %s: %w", messageID, err)
	}
	return nil
}

// Get implements MediaRetryStore.
func (m *MongoMediaRetries) Get(ctx context.Context, accountID, messageID string) (*MediaRetry, error) {
	var doc mediaRetryDoc
	err := m.c.FindOne(ctx, bson.D{{Key: "_id", Value: mediaRetryID(accountID, messageID)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read media retry answer for %s: %w", messageID, err)
	}
	return &MediaRetry{Ciphertext: doc.Ciphertext, IV: doc.IV, ErrorCode: doc.ErrorCode, At: doc.At}, nil
}
