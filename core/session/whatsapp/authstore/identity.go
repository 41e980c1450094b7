package authstore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

type identityDoc struct {
	Address string `bson:"address"`
	User    string `bson:"user"`
	Key     []byte `bson:"key"`
}

func identityID(address string) string { return "identity:" + address }

// PutIdentity stores the identity key of a remote Signal address.
func (s *Store) PutIdentity(ctx context.Context, address string, key [32]byte) error {
	err := s.upsert(ctx, identityID(address), bson.D{
		{Key: "kind", Value: kindIdentity},
		{Key: "address", Value: address},
		{Key: "user", Value: signalUser(address)},
		{Key: "key", Value: key[:]},
	})
	if err != nil {
		return fmt.Errorf("put identity %s: %w", address, err)
	}
	return nil
}

// DeleteAllIdentities deletes the identities of every device of phone (a
// Signal address user).
func (s *Store) DeleteAllIdentities(ctx context.Context, phone string) error {
	if _, err := s.coll.DeleteMany(ctx, bson.D{{Key: "kind", Value: kindIdentity}, {Key: "user", Value: phone}}); err != nil {
		return fmt.Errorf("delete identities of %s: %w", phone, err)
	}
	return nil
}

// DeleteIdentity deletes the identity of one address.
func (s *Store) DeleteIdentity(ctx context.Context, address string) error {
	if err := s.deleteByID(ctx, identityID(address)); err != nil {
		return fmt.Errorf("delete identity %s: %w", address, err)
	}
	return nil
}

// IsTrustedIdentity reports whether key matches the stored identity of
// address. An unknown address is trusted, as in sqlstore: its key is stored
// once the session is built.
func (s *Store) IsTrustedIdentity(ctx context.Context, address string, key [32]byte) (bool, error) {
	var doc identityDoc
	found, err := s.findOne(ctx, identityID(address), &doc)
	if err != nil {
		return false, fmt.Errorf("get identity %s: %w", address, err)
	}
	if !found {
		return true, nil
	}
	if len(doc.Key) != 32 {
		return false, fmt.Errorf("identity %s: %w", address, ErrInvalidLength)
	}
	return [32]byte(doc.Key) == key, nil
}
