package authstore

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"go.mau.fi/whatsmeow/util/keys"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	wcstore "github.com/wildcathub/wildcat/core/store"
)

// preKeySeqID is the counter of pre-key ids. sqlstore takes MAX(key_id)+1,
// which here would be a scan of the account's collection (keyId has no
// index); a counter is one point read, and ids are not reused after a
// removal.
const preKeySeqID = "prekey-seq"

type preKeyDoc struct {
	KeyID    int64  `bson:"keyId"`
	Key      []byte `bson:"key"`
	Uploaded bool   `bson:"uploaded"`
}

func preKeyID(id uint32) string { return "prekey:" + strconv.FormatUint(uint64(id), 10) }

func (s *Store) preKey(d *preKeyDoc) (*keys.PreKey, error) {
	return openPreKey(s.keys, uint32(d.KeyID), d.Key)
}

// genPreKeys generates and stores n new pre-keys.
//
// The counter alone cannot hand out ids safely: FerretDB v1 applies $inc as
// an unisolated read-modify-write, so concurrent writers can read the same
// value. The unique _id of each pre-key is the real arbiter: a
// duplicate-key error means another writer took an id, and generation
// resumes past the batch. Which keys of a failed batch were stored is read
// back rather than inferred from the error.
func (s *Store) genPreKeys(ctx context.Context, n uint32, uploaded bool) ([]*keys.PreKey, error) {
	var seq struct {
		Last int64 `bson:"last"`
	}
	if _, err := findByID(ctx, s.coll, preKeySeqID, &seq); err != nil {
		return nil, fmt.Errorf("read pre-key counter: %w", err)
	}
	next := uint32(seq.Last) + 1
	out := make([]*keys.PreKey, 0, n)
	for attempt := 0; uint32(len(out)) < n; attempt++ {
		if attempt == 20 {
			return nil, fmt.Errorf("generate pre-keys: ids keep colliding near %d", next)
		}
		batch := make([]*keys.PreKey, n-uint32(len(out)))
		sealed := make(map[uint32][]byte, len(batch))
		docs := make([]any, len(batch))
		for i := range batch {
			batch[i] = keys.NewPreKey(next + uint32(i))
			b, err := sealPreKey(s.keys, batch[i])
			if err != nil {
				return nil, err
			}
			sealed[batch[i].KeyID] = b
			docs[i] = bson.D{
				{Key: "_id", Value: preKeyID(batch[i].KeyID)},
				{Key: "kind", Value: kindPreKey},
				{Key: "keyId", Value: int64(batch[i].KeyID)},
				{Key: "key", Value: b},
				{Key: "uploaded", Value: uploaded},
			}
		}
		next += uint32(len(batch))
		_, err := s.coll.InsertMany(ctx, docs)
		switch {
		case err == nil:
			out = append(out, batch...)
		case onlyDuplicates(err):
			stored, err := s.storedPreKeys(ctx, batch, sealed)
			if err != nil {
				return nil, err
			}
			out = append(out, stored...)
			// Another process is generating too: skip to its counter.
			if _, err := findByID(ctx, s.coll, preKeySeqID, &seq); err != nil {
				return nil, fmt.Errorf("read pre-key counter: %w", err)
			}
			next = max(next, uint32(seq.Last)+1)
		default:
			return nil, fmt.Errorf("insert %d pre-keys: %w", len(batch), err)
		}
	}
	// Best effort: a stale counter only costs a collision and a retry. Two
	// upserts racing to create the counter make one fail with a duplicate
	// key (on MongoDB too); the document then exists, so try again.
	var err error
	for range 3 {
		_, err = s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: preKeySeqID}},
			bson.D{
				{Key: "$max", Value: bson.D{{Key: "last", Value: int64(next - 1)}}},
				{Key: "$set", Value: bson.D{{Key: "kind", Value: kindCounter}}},
			},
			options.UpdateOne().SetUpsert(true))
		if !wcstore.IsDuplicateKey(err) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("advance pre-key counter: %w", err)
	}
	return out, nil
}

// storedPreKeys returns the keys of batch that are stored as generated,
// sealed as in sealed (the others lost their id to another writer).
func (s *Store) storedPreKeys(ctx context.Context, batch []*keys.PreKey, sealed map[uint32][]byte) ([]*keys.PreKey, error) {
	ids := make([]string, len(batch))
	for i, k := range batch {
		ids[i] = preKeyID(k.KeyID)
	}
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, fmt.Errorf("read back pre-keys: %w", err)
	}
	var docs []preKeyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("read back pre-keys: %w", err)
	}
	byID := make(map[uint32][]byte, len(docs))
	for _, d := range docs {
		byID[uint32(d.KeyID)] = d.Key
	}
	var out []*keys.PreKey
	for _, k := range batch {
		if bytes.Equal(byID[k.KeyID], sealed[k.KeyID]) {
			out = append(out, k)
		}
	}
	return out, nil
}

// GetOrGenPreKeys returns count pre-keys not yet uploaded, lowest ids
// first, generating (and storing, as not uploaded) as many as are missing.
func (s *Store) GetOrGenPreKeys(ctx context.Context, count uint32) ([]*keys.PreKey, error) {
	if count == 0 {
		return nil, nil
	}
	s.preKeyMu.Lock()
	defer s.preKeyMu.Unlock()

	cur, err := s.coll.Find(ctx,
		bson.D{{Key: "kind", Value: kindPreKey}, {Key: "uploaded", Value: false}},
		options.Find().SetSort(bson.D{{Key: "keyId", Value: 1}}).SetLimit(int64(count)))
	if err != nil {
		return nil, fmt.Errorf("get pre-keys not uploaded: %w", err)
	}
	var docs []preKeyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("get pre-keys not uploaded: %w", err)
	}
	out := make([]*keys.PreKey, 0, count)
	for i := range docs {
		k, err := s.preKey(&docs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if missing := count - uint32(len(out)); missing > 0 {
		gen, err := s.genPreKeys(ctx, missing, false)
		if err != nil {
			return nil, err
		}
		out = append(out, gen...)
	}
	return out, nil
}

// GenOnePreKey generates one pre-key that counts as uploaded (whatsmeow
// sends it along in a retry receipt).
func (s *Store) GenOnePreKey(ctx context.Context) (*keys.PreKey, error) {
	s.preKeyMu.Lock()
	defer s.preKeyMu.Unlock()
	ks, err := s.genPreKeys(ctx, 1, true)
	if err != nil {
		return nil, err
	}
	return ks[0], nil
}

// GetPreKey returns the pre-key with id, or nil if there is none.
func (s *Store) GetPreKey(ctx context.Context, id uint32) (*keys.PreKey, error) {
	var doc preKeyDoc
	found, err := s.findOne(ctx, preKeyID(id), &doc)
	if err != nil {
		return nil, fmt.Errorf("get pre-key %d: %w", id, err)
	}
	if !found {
		return nil, nil
	}
	return s.preKey(&doc)
}

// RemovePreKey deletes a pre-key (it was used to build a session).
func (s *Store) RemovePreKey(ctx context.Context, id uint32) error {
	if err := s.deleteByID(ctx, preKeyID(id)); err != nil {
		return fmt.Errorf("remove pre-key %d: %w", id, err)
	}
	return nil
}

// MarkPreKeysAsUploaded marks every pre-key with an id up to upToID as
// uploaded.
func (s *Store) MarkPreKeysAsUploaded(ctx context.Context, upToID uint32) error {
	_, err := s.coll.UpdateMany(ctx,
		bson.D{{Key: "kind", Value: kindPreKey}, {Key: "keyId", Value: bson.D{{Key: "$lte", Value: int64(upToID)}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "uploaded", Value: true}}}})
	if err != nil {
		return fmt.Errorf("mark pre-keys up to %d uploaded: %w", upToID, err)
	}
	return nil
}

// UploadedPreKeyCount counts the stored pre-keys marked as uploaded.
func (s *Store) UploadedPreKeyCount(ctx context.Context) (int, error) {
	n, err := s.coll.CountDocuments(ctx, bson.D{{Key: "kind", Value: kindPreKey}, {Key: "uploaded", Value: true}})
	if err != nil {
		return 0, fmt.Errorf("count uploaded pre-keys: %w", err)
	}
	return int(n), nil
}
