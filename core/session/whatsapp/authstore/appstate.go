package authstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow/store"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// App-state sync keys.

type appStateKeyDoc struct {
	KeyID       []byte `bson:"keyId"`
	Data        []byte `bson:"data"`
	Fingerprint []byte `bson:"fingerprint"`
	Timestamp   int64  `bson:"timestamp"`
}

func appStateKeyID(id []byte) string { return "appstatekey:" + hex.EncodeToString(id) }

// PutAppStateSyncKey stores a key unless the stored key with the same id is
// at least as new, as in sqlstore.
func (s *Store) PutAppStateSyncKey(ctx context.Context, id []byte, key store.AppStateSyncKey) error {
	// The filter matches only an older document; for a newer one the upsert
	// tries to insert a second document with the same _id and gets a
	// duplicate-key error, which means "keep the stored key".
	_, err := s.coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: appStateKeyID(id)}, {Key: "timestamp", Value: bson.D{{Key: "$lt", Value: key.Timestamp}}}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "kind", Value: kindAppStateKey},
			{Key: "keyId", Value: id},
			{Key: "data", Value: key.Data},
			{Key: "fingerprint", Value: key.Fingerprint},
			{Key: "timestamp", Value: key.Timestamp},
		}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil && !onlyDuplicates(err) {
		return fmt.Errorf("put app-state sync key %x: %w", id, err)
	}
	return nil
}

// GetAppStateSyncKey returns the key with id, or nil if there is none.
func (s *Store) GetAppStateSyncKey(ctx context.Context, id []byte) (*store.AppStateSyncKey, error) {
	var doc appStateKeyDoc
	found, err := s.findOne(ctx, appStateKeyID(id), &doc)
	if err != nil {
		return nil, fmt.Errorf("get app-state sync key %x: %w", id, err)
	}
	if !found {
		return nil, nil
	}
	return &store.AppStateSyncKey{Data: doc.Data, Fingerprint: doc.Fingerprint, Timestamp: doc.Timestamp}, nil
}

// GetLatestAppStateSyncKeyID returns the id of the newest key, or nil if
// there is none. It scans the account's keys; whatsmeow asks only when it
// sends an app-state patch.
func (s *Store) GetLatestAppStateSyncKeyID(ctx context.Context) ([]byte, error) {
	var doc appStateKeyDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "kind", Value: kindAppStateKey}},
		options.FindOne().SetSort(bson.D{{Key: "timestamp", Value: -1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get latest app-state sync key: %w", err)
	}
	return doc.KeyID, nil
}

// App-state versions and mutation MACs.

type appStateVersionDoc struct {
	Version int64  `bson:"version"`
	Hash    []byte `bson:"hash"`
}

type appStateMACDoc struct {
	ValueMAC []byte `bson:"valueMac"`
}

func appStateVersionID(name string) string { return "appstate:" + name }

func appStateMACID(name string, indexMAC []byte) string {
	return "appstatemac:" + name + ":" + hex.EncodeToString(indexMAC)
}

// PutAppStateVersion stores the version and hash of the collection name.
func (s *Store) PutAppStateVersion(ctx context.Context, name string, version uint64, hash [128]byte) error {
	err := s.upsert(ctx, appStateVersionID(name), bson.D{
		{Key: "kind", Value: kindAppState},
		{Key: "name", Value: name},
		{Key: "version", Value: int64(version)},
		{Key: "hash", Value: hash[:]},
	})
	if err != nil {
		return fmt.Errorf("put app-state version %s: %w", name, err)
	}
	return nil
}

// GetAppStateVersion returns the version and hash of name: zero values for
// a collection never synced, which is whatsmeow's initial state.
func (s *Store) GetAppStateVersion(ctx context.Context, name string) (uint64, [128]byte, error) {
	var doc appStateVersionDoc
	found, err := s.findOne(ctx, appStateVersionID(name), &doc)
	if err != nil {
		return 0, [128]byte{}, fmt.Errorf("get app-state version %s: %w", name, err)
	}
	if !found {
		return 0, [128]byte{}, nil
	}
	if len(doc.Hash) != 128 {
		return 0, [128]byte{}, fmt.Errorf("app-state version %s: %w", name, ErrInvalidLength)
	}
	return uint64(doc.Version), [128]byte(doc.Hash), nil
}

// DeleteAppStateVersion forgets the collection name: its version and, as
// sqlstore's cascading foreign key does, all its mutation MACs.
func (s *Store) DeleteAppStateVersion(ctx context.Context, name string) error {
	// MACs first: if this fails half-way, the version still exists and the
	// caller's retry deletes the rest.
	if _, err := s.coll.DeleteMany(ctx, bson.D{{Key: "kind", Value: kindAppStateMAC}, {Key: "name", Value: name}}); err != nil {
		return fmt.Errorf("delete app-state mutation MACs of %s: %w", name, err)
	}
	if err := s.deleteByID(ctx, appStateVersionID(name)); err != nil {
		return fmt.Errorf("delete app-state version %s: %w", name, err)
	}
	return nil
}

// PutAppStateMutationMACs stores the value MACs of a patch of name at
// version.
//
// sqlstore keeps one row per (index MAC, version) and reads the highest
// version; deletes remove all versions of an index MAC. Keeping only the
// highest version is indistinguishable through the interface and makes the
// read a point read: each document is written only if the stored one is not
// newer.
func (s *Store) PutAppStateMutationMACs(ctx context.Context, name string, version uint64, mutations []store.AppStateMutationMAC) error {
	if len(mutations) == 0 {
		return nil
	}
	// Unordered writes must not race on one _id: the last mutation of an
	// index MAC wins, as the patch order says.
	latest := make(map[string]int, len(mutations))
	for i, m := range mutations {
		latest[appStateMACID(name, m.IndexMAC)] = i
	}
	guard := bson.D{{Key: "version", Value: bson.D{{Key: "$lte", Value: int64(version)}}}}
	items := make([]upsertItem, 0, len(latest))
	for id, i := range latest {
		m := mutations[i]
		items = append(items, upsertItem{id: id, guard: guard, set: bson.D{
			{Key: "kind", Value: kindAppStateMAC},
			{Key: "name", Value: name},
			{Key: "version", Value: int64(version)},
			{Key: "indexMac", Value: m.IndexMAC},
			{Key: "valueMac", Value: m.ValueMAC},
		}})
	}
	if err := putMany(ctx, s.coll, items); err != nil {
		return fmt.Errorf("put %d app-state mutation MACs of %s v%d: %w", len(items), name, version, err)
	}
	return nil
}

// DeleteAppStateMutationMACs deletes the value MACs of the given index MACs
// of name.
func (s *Store) DeleteAppStateMutationMACs(ctx context.Context, name string, indexMACs [][]byte) error {
	if len(indexMACs) == 0 {
		return nil
	}
	ids := make([]string, len(indexMACs))
	for i, m := range indexMACs {
		ids[i] = appStateMACID(name, m)
	}
	if _, err := s.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
		return fmt.Errorf("delete %d app-state mutation MACs of %s: %w", len(ids), name, err)
	}
	return nil
}

// GetAppStateMutationMAC returns the value MAC of indexMAC in name, or nil
// if there is none.
func (s *Store) GetAppStateMutationMAC(ctx context.Context, name string, indexMAC []byte) ([]byte, error) {
	var doc appStateMACDoc
	if _, err := s.findOne(ctx, appStateMACID(name, indexMAC), &doc); err != nil {
		return nil, fmt.Errorf("get app-state mutation MAC of %s: %w", name, err)
	}
	return doc.ValueMAC, nil
}
