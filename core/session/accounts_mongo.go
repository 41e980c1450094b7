package session

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

// MongoAccounts keeps the accounts in the accounts collection, one document
// per account by _id (every query is an _id lookup or the whole collection,
// so it needs no secondary index).
type MongoAccounts struct {
	c *mongo.Collection
	// locks serialise this process's writes to one document (FerretDB's
	// conditional updates are not isolated).
	locks stripedLock
}

// NewMongoAccounts returns the store on db's accounts collection.
func NewMongoAccounts(db *mongo.Database) *MongoAccounts {
	return &MongoAccounts{c: db.Collection(store.Accounts)}
}

var _ AccountStore = (*MongoAccounts)(nil)

// Insert implements AccountStore.
func (s *MongoAccounts) Insert(ctx context.Context, a *AccountInfo) error {
	if _, err := s.c.InsertOne(ctx, a); err != nil {
		if store.IsDuplicateKey(err) {
			return fmt.Errorf("account %q: %w", a.ID, ErrAccountExists)
		}
		return fmt.Errorf("create account %q: %w", a.ID, err)
	}
	return nil
}

// Get implements AccountStore.
func (s *MongoAccounts) Get(ctx context.Context, id string) (*AccountInfo, error) {
	var a AccountInfo
	err := s.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&a)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("account %q: %w", id, ErrAccountNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read account %q: %w", id, err)
	}
	return &a, nil
}

// List implements AccountStore.
func (s *MongoAccounts) List(ctx context.Context) ([]*AccountInfo, error) {
	cur, err := s.c.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	out := []*AccountInfo{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// Delete implements AccountStore.
func (s *MongoAccounts) Delete(ctx context.Context, id string) error {
	if _, err := s.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("delete account %q: %w", id, err)
	}
	return nil
}

// Apply implements AccountStore: with a state change, first the update
// that matches only while the state differs (it also sets since and
// reason); when it matched nothing, the same state again, the plain one.
func (s *MongoAccounts) Apply(ctx context.Context, id string, c AccountChange) error {
	defer s.locks.lock(id)()
	set := bson.D{{Key: "updatedAt", Value: time.Now().UTC()}}
	if c.QR != nil {
		set = append(set, bson.E{Key: "qr", Value: QR{Code: c.QR.Code, ExpiresAt: c.QR.ExpiresAt.UTC()}})
	}
	for _, f := range []struct{ key, v string }{
		{"pairingCode", c.PairingCode}, {"jid", c.JID}, {"pushName", c.PushName}, {"lastError", c.LastError},
	} {
		if f.v != "" {
			set = append(set, bson.E{Key: f.key, Value: f.v})
		}
	}
	unset := bson.D{}
	if c.Proxy != nil {
		if *c.Proxy == "" {
			unset = append(unset, bson.E{Key: "proxy", Value: ""})
		} else {
			set = append(set, bson.E{Key: "proxy", Value: *c.Proxy})
		}
	}
	if c.ClearPairing {
		unset = append(unset, bson.E{Key: "qr", Value: ""}, bson.E{Key: "pairingCode", Value: ""})
	}
	if c.ClearLastError {
		unset = append(unset, bson.E{Key: "lastError", Value: ""})
	}
	update := func(filter, set bson.D) (*mongo.UpdateResult, error) {
		u := bson.D{{Key: "$set", Value: set}}
		if len(unset) > 0 {
			u = append(u, bson.E{Key: "$unset", Value: unset})
		}
		return s.c.UpdateOne(ctx, filter, u)
	}
	if c.State != "" {
		res, err := update(
			bson.D{{Key: "_id", Value: id}, {Key: "state", Value: bson.D{{Key: "$ne", Value: c.State}}}},
			append(bson.D{{Key: "state", Value: c.State}, {Key: "since", Value: c.At.UTC()}, {Key: "reason", Value: c.Reason}}, set...))
		if err != nil {
			return fmt.Errorf("update account %q to %s: %w", id, c.State, err)
		}
		if res.MatchedCount > 0 {
			return nil
		}
	}
	if _, err := update(bson.D{{Key: "_id", Value: id}}, set); err != nil {
		return fmt.Errorf("update account %q: %w", id, err)
	}
	return nil
}
