package authstore

import (
	"context"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/types"
	"go.mongodb.org/mongo-driver/v2/bson"
)

type sessionDoc struct {
	Address string `bson:"address"`
	Session []byte `bson:"session"`
}

func sessionID(address string) string { return "session:" + address }

func sessionSet(address string, session []byte) bson.D {
	return bson.D{
		{Key: "kind", Value: kindSession},
		{Key: "address", Value: address},
		{Key: "user", Value: signalUser(address)},
		{Key: "session", Value: session},
	}
}

// GetSession returns the session record of address, or nil if there is none.
func (s *Store) GetSession(ctx context.Context, address string) ([]byte, error) {
	var doc sessionDoc
	if _, err := s.findOne(ctx, sessionID(address), &doc); err != nil {
		return nil, fmt.Errorf("get session %s: %w", address, err)
	}
	return doc.Session, nil
}

// HasSession reports whether a session record of address exists.
func (s *Store) HasSession(ctx context.Context, address string) (bool, error) {
	var doc struct{}
	found, err := s.findOne(ctx, sessionID(address), &doc)
	if err != nil {
		return false, fmt.Errorf("has session %s: %w", address, err)
	}
	return found, nil
}

// GetManySessions returns a map with every requested address as a key: the
// stored record or nil.
func (s *Store) GetManySessions(ctx context.Context, addresses []string) (map[string][]byte, error) {
	if len(addresses) == 0 {
		return nil, nil
	}
	ids := make([]string, len(addresses))
	out := make(map[string][]byte, len(addresses))
	for i, a := range addresses {
		ids[i] = sessionID(a)
		out[a] = nil
	}
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, fmt.Errorf("get %d sessions: %w", len(addresses), err)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("get %d sessions: %w", len(addresses), err)
	}
	for _, d := range docs {
		out[d.Address] = d.Session
	}
	return out, nil
}

// PutSession stores the session record of address.
func (s *Store) PutSession(ctx context.Context, address string, session []byte) error {
	if err := s.upsert(ctx, sessionID(address), sessionSet(address, session)); err != nil {
		return fmt.Errorf("put session %s: %w", address, err)
	}
	return nil
}

// PutManySessions stores several session records in one round trip. sqlstore
// wraps them in a transaction; here each is an independent idempotent
// upsert, and whatsmeow keeps the records it failed to store dirty in its
// per-send cache.
func (s *Store) PutManySessions(ctx context.Context, sessions map[string][]byte) error {
	items := make([]upsertItem, 0, len(sessions))
	for addr, sess := range sessions {
		items = append(items, upsertItem{id: sessionID(addr), set: sessionSet(addr, sess)})
	}
	if err := putMany(ctx, s.coll, items); err != nil {
		return fmt.Errorf("put %d sessions: %w", len(sessions), err)
	}
	return nil
}

// DeleteAllSessions deletes the sessions of every device of phone (a Signal
// address user).
func (s *Store) DeleteAllSessions(ctx context.Context, phone string) error {
	if _, err := s.coll.DeleteMany(ctx, bson.D{{Key: "kind", Value: kindSession}, {Key: "user", Value: phone}}); err != nil {
		return fmt.Errorf("delete sessions of %s: %w", phone, err)
	}
	return nil
}

// DeleteSession deletes the session of one address.
func (s *Store) DeleteSession(ctx context.Context, address string) error {
	if err := s.deleteByID(ctx, sessionID(address)); err != nil {
		return fmt.Errorf("delete session %s: %w", address, err)
	}
	return nil
}

// MigratePNToLID moves the sessions, identity keys and sender keys of every
// device of a phone number to the same devices of its LID, overwriting what
// the LID already has (as sqlstore does).
//
// sqlstore runs this in a transaction. Here each kind is copied with
// idempotent upserts and then exactly the copied phone-number documents are
// deleted; after a crash in between, the next call copies again. What this
// cannot rule out is a crash between copy and delete followed by the LID
// session advancing before the retry: the retry then puts the older record
// back, and the Signal session recovers through whatsmeow's retry receipts,
// as after any lost session.
func (s *Store) MigratePNToLID(ctx context.Context, pn, lid types.JID) error {
	pnUser, lidUser := pn.SignalAddressUser(), lid.SignalAddressUser()
	if s.isMigrated(pnUser) {
		return nil
	}
	var moved [3]int
	for i, kind := range []string{kindSession, kindIdentity, kindSenderKey} {
		n, err := s.migrateKind(ctx, kind, pnUser, lidUser)
		if err != nil {
			return fmt.Errorf("migrate %s state of %s to %s: %w", kind, pnUser, lidUser, err)
		}
		moved[i] = n
	}
	s.markMigrated(pnUser)
	if moved != [3]int{} {
		s.log.Infof("Migrated %d sessions, %d identity keys and %d sender keys from %s to %s", moved[0], moved[1], moved[2], pnUser, lidUser)
	} else {
		s.log.Debugf("No sessions or sender keys found to migrate from %s to %s", pnUser, lidUser)
	}
	return nil
}

// migrateKind copies the documents of one kind from pnUser's addresses to
// lidUser's and deletes the originals; it returns how many it moved.
func (s *Store) migrateKind(ctx context.Context, kind, pnUser, lidUser string) (int, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "kind", Value: kind}, {Key: "user", Value: pnUser}})
	if err != nil {
		return 0, err
	}
	var docs []bson.D
	if err := cur.All(ctx, &docs); err != nil {
		return 0, err
	}
	if len(docs) == 0 {
		return 0, nil
	}
	items := make([]upsertItem, 0, len(docs))
	oldIDs := make([]string, 0, len(docs))
	for _, d := range docs {
		id, set, ok := readdress(d, pnUser, lidUser)
		if !ok {
			continue
		}
		items = append(items, upsertItem{id: id, set: set})
		oldIDs = append(oldIDs, lookup(d, "_id").(string))
	}
	if err := putMany(ctx, s.coll, items); err != nil {
		return 0, err
	}
	if _, err := s.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: oldIDs}}}}); err != nil {
		return 0, err
	}
	return len(oldIDs), nil
}

// readdress rewrites a session, identity or sender-key document from
// pnUser's address to the same device of lidUser: the new _id and its
// fields without _id.
func readdress(d bson.D, pnUser, lidUser string) (id string, set bson.D, ok bool) {
	oldID, _ := lookup(d, "_id").(string)
	addrKey := "address"
	if lookup(d, "kind") == kindSenderKey {
		addrKey = "sender"
	}
	addr, _ := lookup(d, addrKey).(string)
	if oldID == "" || !strings.HasPrefix(addr, pnUser+":") || !strings.HasSuffix(oldID, addr) {
		return "", nil, false
	}
	newAddr := lidUser + addr[len(pnUser):]
	id = strings.TrimSuffix(oldID, addr) + newAddr
	for _, e := range d {
		switch e.Key {
		case "_id":
		case addrKey:
			set = append(set, bson.E{Key: e.Key, Value: newAddr})
		case "user":
			set = append(set, bson.E{Key: e.Key, Value: lidUser})
		default:
			set = append(set, e)
		}
	}
	return id, set, true
}

func lookup(d bson.D, key string) any {
	for _, e := range d {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

func (s *Store) isMigrated(pnUser string) bool {
	s.migratedMu.Lock()
	defer s.migratedMu.Unlock()
	_, ok := s.migrated[pnUser]
	return ok
}

func (s *Store) markMigrated(pnUser string) {
	s.migratedMu.Lock()
	defer s.migratedMu.Unlock()
	if s.migrated == nil {
		s.migrated = make(map[string]struct{})
	}
	s.migrated[pnUser] = struct{}{}
}

// forgetMigrations is called when the account's state is deleted: a new
// device may have phone-number sessions to migrate again.
func (s *Store) forgetMigrations() {
	s.migratedMu.Lock()
	defer s.migratedMu.Unlock()
	s.migrated = nil
}
