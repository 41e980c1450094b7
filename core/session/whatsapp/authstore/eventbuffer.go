package authstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// bufferRetention is how long buffered hashes are kept: WhatsApp's servers
// buffer events for 14 days, so an older ciphertext cannot come back.
const bufferRetention = 14 * 24 * time.Hour

type bufferedEventDoc struct {
	Plaintext  []byte `bson:"plaintext,omitempty"`
	ServerTime int64  `bson:"serverTime"` // seconds
	InsertTime int64  `bson:"insertTime"` // milliseconds
}

func eventBufID(hash [32]byte) string { return "eventbuf:" + hex.EncodeToString(hash[:]) }

// GetBufferedEvent returns the buffered event of a ciphertext, or nil if
// there is none. A nil Plaintext means the event was already handled.
func (s *Store) GetBufferedEvent(ctx context.Context, ciphertextHash [32]byte) (*store.BufferedEvent, error) {
	var doc bufferedEventDoc
	found, err := s.findOne(ctx, eventBufID(ciphertextHash), &doc)
	if err != nil {
		return nil, fmt.Errorf("get buffered event %x: %w", ciphertextHash, err)
	}
	if !found {
		return nil, nil
	}
	return &store.BufferedEvent{
		Plaintext:  doc.Plaintext,
		ServerTime: time.Unix(doc.ServerTime, 0),
		InsertTime: time.UnixMilli(doc.InsertTime),
	}, nil
}

// PutBufferedEvent buffers the plaintext of a just-decrypted ciphertext.
// sqlstore fails on a second put of the same hash; here the first one is
// kept and the second is a no-op (the plaintext is the same). Inside
// DoDecryptionTxn it is the first write of the commit.
func (s *Store) PutBufferedEvent(ctx context.Context, ciphertextHash [32]byte, plaintext []byte, serverTimestamp time.Time) error {
	doc := bson.D{
		{Key: "_id", Value: eventBufID(ciphertextHash)},
		{Key: "kind", Value: kindEventBuf},
		{Key: "plaintext", Value: plaintext},
		{Key: "serverTime", Value: serverTimestamp.Unix()},
		{Key: "insertTime", Value: time.Now().UnixMilli()},
	}
	if t := s.txnFrom(ctx); t != nil {
		t.bufferEvent(doc)
		return nil
	}
	if err := s.insertBufferedEvent(ctx, doc); err != nil {
		return fmt.Errorf("put buffered event %x: %w", ciphertextHash, err)
	}
	return nil
}

// insertBufferedEvent inserts the event unless its hash is already there.
func (s *Store) insertBufferedEvent(ctx context.Context, doc bson.D) error {
	_, err := s.coll.InsertOne(ctx, doc)
	if err != nil && !onlyDuplicates(err) {
		return err
	}
	return nil
}

// ClearBufferedEventPlaintext drops the plaintext of a handled event and
// keeps its hash, so a redelivery is recognised as already processed.
func (s *Store) ClearBufferedEventPlaintext(ctx context.Context, ciphertextHash [32]byte) error {
	_, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: eventBufID(ciphertextHash)}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "plaintext", Value: ""}}}})
	if err != nil {
		return fmt.Errorf("clear buffered event %x: %w", ciphertextHash, err)
	}
	return nil
}

// DeleteOldBufferedHashes deletes buffered events inserted more than 14
// days ago (a scan of the account's collection; no TTL index is created).
// whatsmeow calls this about twice a day.
func (s *Store) DeleteOldBufferedHashes(ctx context.Context) error {
	cutoff := time.Now().Add(-bufferRetention).UnixMilli()
	_, err := s.coll.DeleteMany(ctx, bson.D{{Key: "kind", Value: kindEventBuf}, {Key: "insertTime", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
	if err != nil {
		return fmt.Errorf("delete old buffered events: %w", err)
	}
	return nil
}
