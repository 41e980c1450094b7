package authstore

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// mutedForever is how store.MutedForever is stored, as in sqlstore.
const mutedForever = -1

type chatDoc struct {
	MutedUntil int64 `bson:"mutedUntil"`
	Pinned     bool  `bson:"pinned"`
	Archived   bool  `bson:"archived"`
}

func chatID(chat types.JID) string { return "chat:" + chat.String() }

func (s *Store) putChatSetting(ctx context.Context, chat types.JID, field string, value any) error {
	s.chatMu.Lock()
	defer s.chatMu.Unlock()
	err := s.upsert(ctx, chatID(chat), bson.D{
		{Key: "kind", Value: kindChat},
		{Key: "jid", Value: chat.String()},
		{Key: field, Value: value},
	})
	if err != nil {
		return fmt.Errorf("put %s of chat %s: %w", field, chat, err)
	}
	return nil
}

// PutMutedUntil stores until when a chat is muted; the zero time unmutes,
// store.MutedForever mutes for good. Precision is one second.
func (s *Store) PutMutedUntil(ctx context.Context, chat types.JID, mutedUntil time.Time) error {
	var v int64
	switch {
	case mutedUntil.Equal(store.MutedForever):
		v = mutedForever
	case !mutedUntil.IsZero():
		v = mutedUntil.Unix()
	}
	return s.putChatSetting(ctx, chat, "mutedUntil", v)
}

// PutPinned stores whether a chat is pinned.
func (s *Store) PutPinned(ctx context.Context, chat types.JID, pinned bool) error {
	return s.putChatSetting(ctx, chat, "pinned", pinned)
}

// PutArchived stores whether a chat is archived.
func (s *Store) PutArchived(ctx context.Context, chat types.JID, archived bool) error {
	return s.putChatSetting(ctx, chat, "archived", archived)
}

// GetChatSettings returns a chat's settings; Found is false and every
// setting off for a chat never set.
func (s *Store) GetChatSettings(ctx context.Context, chat types.JID) (types.LocalChatSettings, error) {
	var doc chatDoc
	found, err := s.findOne(ctx, chatID(chat), &doc)
	if err != nil {
		return types.LocalChatSettings{}, fmt.Errorf("get settings of chat %s: %w", chat, err)
	}
	settings := types.LocalChatSettings{Found: found, Pinned: doc.Pinned, Archived: doc.Archived}
	switch {
	case doc.MutedUntil == mutedForever:
		settings.MutedUntil = store.MutedForever
	case doc.MutedUntil > 0:
		settings.MutedUntil = time.Unix(doc.MutedUntil, 0)
	}
	return settings, nil
}
