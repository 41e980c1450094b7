package authstore

import (
	"context"
	"fmt"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

type msgSecretDoc struct {
	ID     string `bson:"_id"`
	Sender string `bson:"sender"`
	Secret []byte `bson:"secret"`
}

// msgSecretID is unambiguous because non-AD JIDs never contain ':'.
func msgSecretID(chat, sender types.JID, id types.MessageID) string {
	return "msgsecret:" + chat.String() + ":" + sender.String() + ":" + id
}

func msgSecretDocument(chat, sender types.JID, id types.MessageID, secret []byte) bson.D {
	chat, sender = chat.ToNonAD(), sender.ToNonAD()
	return bson.D{
		{Key: "_id", Value: msgSecretID(chat, sender, id)},
		{Key: "kind", Value: kindMsgSecret},
		{Key: "chat", Value: chat.String()},
		{Key: "sender", Value: sender.String()},
		{Key: "messageId", Value: id},
		{Key: "secret", Value: secret},
	}
}

// PutMessageSecrets stores many message secrets. A secret already stored
// is kept, as in sqlstore (ON CONFLICT DO NOTHING).
func (s *Store) PutMessageSecrets(ctx context.Context, inserts []store.MessageSecretInsert) error {
	if len(inserts) == 0 {
		return nil
	}
	docs := make([]any, len(inserts))
	for i, in := range inserts {
		docs[i] = msgSecretDocument(in.Chat, in.Sender, in.ID, in.Secret)
	}
	_, err := s.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil && !onlyDuplicates(err) {
		return fmt.Errorf("put %d message secrets: %w", len(inserts), err)
	}
	return nil
}

// PutMessageSecret stores one message secret unless it is already stored.
func (s *Store) PutMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID, secret []byte) error {
	_, err := s.coll.InsertOne(ctx, msgSecretDocument(chat, sender, id, secret))
	if err != nil && !onlyDuplicates(err) {
		return fmt.Errorf("put message secret %s in %s: %w", id, chat, err)
	}
	return nil
}

// GetMessageSecret returns the secret of a message and the sender it was
// stored under, or nil if there is none. Like sqlstore it also finds a
// secret stored under the other identity (LID or phone number) of the chat
// or the sender, since a message may be referenced by either.
func (s *Store) GetMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID) ([]byte, types.JID, error) {
	chat, sender = chat.ToNonAD(), sender.ToNonAD()
	alt, err := s.lids.altJIDs(ctx, chat, sender)
	if err != nil {
		return nil, types.EmptyJID, fmt.Errorf("get message secret %s: %w", id, err)
	}
	chats, senders := []types.JID{chat}, []types.JID{sender}
	if a, ok := alt[chat]; ok {
		chats = append(chats, a)
	}
	if a, ok := alt[sender]; ok {
		senders = append(senders, a)
	}
	ids := make([]string, 0, len(chats)*len(senders))
	for _, c := range chats {
		for _, snd := range senders {
			ids = append(ids, msgSecretID(c, snd, id))
		}
	}
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, types.EmptyJID, fmt.Errorf("get message secret %s: %w", id, err)
	}
	var docs []msgSecretDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, types.EmptyJID, fmt.Errorf("get message secret %s: %w", id, err)
	}
	// Prefer the identities asked for over the alternatives.
	for _, want := range ids {
		for _, d := range docs {
			if d.ID != want {
				continue
			}
			realSender, err := types.ParseJID(d.Sender)
			if err != nil {
				return nil, types.EmptyJID, fmt.Errorf("get message secret %s: parse sender %q: %w", id, d.Sender, err)
			}
			return d.Secret, realSender, nil
		}
	}
	return nil, types.EmptyJID, nil
}
