package authstore

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mongodb.org/mongo-driver/v2/bson"
)

type privacyTokenDoc struct {
	Token     []byte `bson:"token"`
	Timestamp int64  `bson:"timestamp"`
}

func privacyTokenID(user types.JID) string { return "privacytoken:" + user.String() }

// PutPrivacyTokens stores the privacy tokens of users, replacing older ones.
// Timestamps are kept to the second, as in sqlstore.
func (s *Store) PutPrivacyTokens(ctx context.Context, tokens ...store.PrivacyToken) error {
	items := make([]upsertItem, 0, len(tokens))
	seen := make(map[string]bool, len(tokens))
	// Unordered writes must not race on one _id: walk backwards so the
	// last token of a user wins.
	for i := len(tokens) - 1; i >= 0; i-- {
		user := tokens[i].User.ToNonAD()
		id := privacyTokenID(user)
		if seen[id] {
			continue
		}
		seen[id] = true
		items = append(items, upsertItem{id: id, set: bson.D{
			{Key: "kind", Value: kindPrivacy},
			{Key: "jid", Value: user.String()},
			{Key: "token", Value: tokens[i].Token},
			{Key: "timestamp", Value: tokens[i].Timestamp.Unix()},
		}})
	}
	if err := putMany(ctx, s.coll, items); err != nil {
		return fmt.Errorf("put %d privacy tokens: %w", len(items), err)
	}
	return nil
}

// GetPrivacyToken returns the newest privacy token of user, stored under
// its LID or its phone number, or nil if there is none.
func (s *Store) GetPrivacyToken(ctx context.Context, user types.JID) (*store.PrivacyToken, error) {
	user = user.ToNonAD()
	ids := []string{privacyTokenID(user)}
	alt, err := s.lids.altJIDs(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("get privacy token of %s: %w", user, err)
	}
	if a, ok := alt[user]; ok {
		ids = append(ids, privacyTokenID(a))
	}
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, fmt.Errorf("get privacy token of %s: %w", user, err)
	}
	var docs []privacyTokenDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("get privacy token of %s: %w", user, err)
	}
	var newest *privacyTokenDoc
	for i := range docs {
		if newest == nil || docs[i].Timestamp > newest.Timestamp {
			newest = &docs[i]
		}
	}
	if newest == nil {
		return nil, nil
	}
	return &store.PrivacyToken{User: user, Token: newest.Token, Timestamp: time.Unix(newest.Timestamp, 0)}, nil
}
