package authstore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

type senderKeyDoc struct {
	Key []byte `bson:"key"`
}

// senderKeyID is unambiguous because a group JID never contains ':'.
func senderKeyID(group, sender string) string { return "senderkey:" + group + ":" + sender }

// PutSenderKey stores the sender key record of sender (a Signal address) in
// group.
func (s *Store) PutSenderKey(ctx context.Context, group, sender string, session []byte) error {
	err := s.upsert(ctx, senderKeyID(group, sender), bson.D{
		{Key: "kind", Value: kindSenderKey},
		{Key: "group", Value: group},
		{Key: "sender", Value: sender},
		{Key: "user", Value: signalUser(sender)},
		{Key: "key", Value: session},
	})
	if err != nil {
		return fmt.Errorf("put sender key %s in %s: %w", sender, group, err)
	}
	return nil
}

// GetSenderKey returns the sender key record, or nil if there is none.
func (s *Store) GetSenderKey(ctx context.Context, group, sender string) ([]byte, error) {
	var doc senderKeyDoc
	if _, err := s.findOne(ctx, senderKeyID(group, sender), &doc); err != nil {
		return nil, fmt.Errorf("get sender key %s in %s: %w", sender, group, err)
	}
	return doc.Key, nil
}
