package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store"
)

// MongoAuth keeps a sim account's auth state as the document {_id: "sim"}
// of its auth_{accountId} collection, beside where a real account's
// whatsmeow state would be, so deleting an account's auth collection
// forgets either.
type MongoAuth struct {
	db *mongo.Database
}

// NewMongoAuth returns the store on db.
func NewMongoAuth(db *mongo.Database) *MongoAuth { return &MongoAuth{db: db} }

var _ AuthStore = (*MongoAuth)(nil)

const authDocID = "sim"

type authDoc struct {
	ID       string    `bson:"_id"`
	JID      string    `bson:"jid"`
	LID      string    `bson:"lid"`
	PairedAt time.Time `bson:"pairedAt"`
}

func (m *MongoAuth) coll(accountID string) *mongo.Collection {
	return m.db.Collection(store.AuthCollection(accountID))
}

// Load implements AuthStore.
func (m *MongoAuth) Load(ctx context.Context, accountID string) (*Auth, error) {
	var d authDoc
	err := m.coll(accountID).FindOne(ctx, bson.D{{Key: "_id", Value: authDocID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sim auth state of %q: %w", accountID, err)
	}
	return &Auth{JID: d.JID, LID: d.LID, PairedAt: d.PairedAt}, nil
}

// Save implements AuthStore.
func (m *MongoAuth) Save(ctx context.Context, accountID string, a Auth) error {
	d := authDoc{ID: authDocID, JID: a.JID, LID: a.LID, PairedAt: a.PairedAt.UTC()}
	if _, err := m.coll(accountID).ReplaceOne(ctx, bson.D{{Key: "_id", Value: authDocID}}, d, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("store sim auth state of %q: %w", accountID, err)
	}
	return nil
}

// Delete implements AuthStore.
func (m *MongoAuth) Delete(ctx context.Context, accountID string) error {
	if _, err := m.coll(accountID).DeleteOne(ctx, bson.D{{Key: "_id", Value: authDocID}}); err != nil {
		return fmt.Errorf("delete sim auth state of %q: %w", accountID, err)
	}
	return nil
}
