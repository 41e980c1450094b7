// Package authstore keeps whatsmeow's auth state on either engine. On the
// embedded engine (SQLite, sqlite.go) that is whatsmeow's own sqlstore on
// the daemon's database file plus a table saying which device is whose
// account's, and tables of the device's private keys and pre-keys, which
// are sealed (sqlite_keys.go, devicekeys.go). The rest of this package is the MongoDB implementation: every
// whatsmeow store interface on MongoDB, so that any daemon sharing the
// database can run an account: nothing lives on local disk and nothing is
// cached in memory that another daemon could change.
//
// One account has one WhatsApp device. Its session-specific state (device
// record, Signal identities, sessions, pre-keys and sender keys, app-state
// keys, versions and mutation MACs, contacts, chat settings, message secrets,
// privacy tokens, the decrypted-event buffer) lives in the account's
// auth_{accountId} collection, one document per item, told apart by a kind
// field and addressed by a deterministic _id:
//
//	device                               kind=device      the device record (sealed keys, JIDs, ADV identity, names)
//	identity:{address}                   kind=identity    Signal identity key of a remote address
//	session:{address}                    kind=session     Signal session record
//	prekey:{id}                          kind=prekey      one-time pre-key (sealed) and whether it was uploaded
//	prekey-seq                           kind=counter     last pre-key id handed out
//	senderkey:{group}:{address}          kind=senderkey   group sender key record
//	appstatekey:{hex key id}             kind=appstatekey app-state sync key
//	appstate:{name}                      kind=appstate    app-state collection version and hash
//	appstatemac:{name}:{hex index MAC}   kind=appstatemac value MAC of the highest version seen
//	contact:{jid}                        kind=contact     first/full/push/business name, redacted phone
//	chat:{jid}                           kind=chat        muted-until, pinned, archived
//	msgsecret:{chat}:{sender}:{id}       kind=msgsecret   message secret (polls, reactions, edits)
//	privacytoken:{jid}                   kind=privacytoken
//	eventbuf:{hex ciphertext hash}       kind=eventbuf    decrypted plaintext until handled
//
// {address} is a Signal address "user:device"; documents keyed by one also
// carry user (the part before the last ':') so that everything of one phone
// is found by equality on kind and user. LID↔phone-number mappings are
// global in whatsmeow and live in one shared collection (see LIDMap).
//
// No index is created on these collections but MongoDB's own on _id:
// point reads go by _id (findOne, or $in over a batch of ids), and the few
// other queries — pre-keys by id range or upload state, everything of one
// phone, the latest app-state key, the app-state MACs of one collection,
// all contacts, buffered events past their retention — scan the account's
// collection, which is small. Nothing uses MongoDB transactions (a standalone server
// has none), so every write is an idempotent upsert or an insert whose
// duplicate-key error means "already there", and the one place whatsmeow
// asks for a transaction is stood in for by deferred writes (see
// DoDecryptionTxn). Old buffered events are deleted by insert time when
// whatsmeow asks (DeleteOldBufferedHashes); there is no TTL index.
//
// The code also runs on FerretDB v1 (the in-process server of the tests,
// or one given by WILDCAT_TEST_MONGODB_URI), which applies an update as an
// unisolated read-modify-write of the whole document (so $inc is not
// atomic and concurrent updates of one document can be lost) and hangs on
// update commands of about a hundred statements: ids are arbitrated by
// unique _ids, field-wise updates are serialised in-process, and bulk
// writes insert new documents and update existing ones in small batches.
package authstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.mau.fi/whatsmeow/store"
	waLog "go.mau.fi/whatsmeow/util/log"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/sealing"
	wcstore "github.com/wildcathub/wildcat/core/store"
)

// Document kinds in an account's collection.
const (
	kindDevice      = "device"
	kindIdentity    = "identity"
	kindSession     = "session"
	kindPreKey      = "prekey"
	kindCounter     = "counter"
	kindSenderKey   = "senderkey"
	kindAppStateKey = "appstatekey"
	kindAppState    = "appstate"
	kindAppStateMAC = "appstatemac"
	kindContact     = "contact"
	kindChat        = "chat"
	kindMsgSecret   = "msgsecret"
	kindPrivacy     = "privacytoken"
	kindEventBuf    = "eventbuf"
)

var (
	_ store.AllSessionSpecificStores = (*Store)(nil)
	_ store.LIDStore                 = (*LIDMap)(nil)
	_ store.DeviceContainer          = (*Container)(nil)
)

// Container holds the auth state of one account: its single device and the
// stores behind it. It implements store.DeviceContainer.
type Container struct {
	accountID string
	coll      *mongo.Collection
	log       waLog.Logger
	store     *Store
	lids      *LIDMap
	keys      *sealing.Keyring // see Seal
}

// Seal makes the account's devices seal their secrets with keys
// (sealed.go) and returns c.
func (c *Container) Seal(keys *sealing.Keyring) *Container {
	c.keys = keys
	c.store.keys = keys
	return c
}

// New returns the container of accountID's auth state in db: the
// auth_{accountID} collection plus the shared LID map. log may be nil.
// Nothing is read or written until a method is called.
func New(db *mongo.Database, accountID string, log waLog.Logger) *Container {
	if log == nil {
		log = waLog.Noop
	}
	coll := db.Collection(wcstore.AuthCollection(accountID))
	lids := NewLIDMap(db)
	return &Container{
		accountID: accountID,
		coll:      coll,
		log:       log,
		lids:      lids,
		store: &Store{
			coll: coll,
			lids: lids,
			log:  log,
		},
	}
}

// Store returns the session-specific stores of the account.
func (c *Container) Store() *Store { return c.store }

// LIDs returns the shared LID↔phone-number map.
func (c *Container) LIDs() *LIDMap { return c.lids }

// Delete removes all auth state of the account (for account removal). The
// shared LID map is kept: its mappings are facts about other users.
func (c *Container) Delete(ctx context.Context) error {
	if err := c.coll.Drop(ctx); err != nil {
		return fmt.Errorf("drop auth state of account %s: %w", c.accountID, err)
	}
	c.store.forgetMigrations()
	return nil
}

// Store implements every session-specific store of whatsmeow on one
// account's collection. Its methods are safe for concurrent use.
type Store struct {
	coll *mongo.Collection
	lids *LIDMap
	log  waLog.Logger
	keys *sealing.Keyring // seals the pre-keys (Container.Seal)

	// preKeyMu serialises this process's pre-key generation, as in
	// sqlstore: concurrent GetOrGenPreKeys calls must not both fill the same
	// shortfall, and generators must not race for the same ids (which stay
	// unique across processes anyway; see genPreKeys).
	preKeyMu sync.Mutex

	// migrated remembers phone numbers whose Signal state this process has
	// already moved to their LID, as sqlstore does: whatsmeow calls
	// MigratePNToLID for every send to a migrated contact, and each call
	// would otherwise scan the collection. Forgetting (a restart, another
	// daemon) only costs one more scan that finds nothing.
	migratedMu sync.Mutex
	migrated   map[string]struct{}

	// contactMu and chatMu serialise this process's writes to contacts and
	// chat settings. Their documents are updated field by field, and
	// FerretDB v1 applies an update as read-modify-write of the whole
	// document without isolation: two concurrent updates of different
	// fields of one document can lose one. (sqlstore holds a lock here too.)
	contactMu sync.Mutex
	chatMu    sync.Mutex
}

// signalUser is the user part of a Signal address "user:device".
func signalUser(address string) string {
	if i := strings.LastIndexByte(address, ':'); i >= 0 {
		return address[:i]
	}
	return address
}

// findOne decodes the document with _id id into out; found is false when
// there is none.
// Inside DoDecryptionTxn it sees the transaction's pending writes first.
func (s *Store) findOne(ctx context.Context, id string, out any) (found bool, err error) {
	if t := s.txnFrom(ctx); t != nil {
		if found, ok, err := t.read(id, out); ok {
			return found, err
		}
	}
	return findByID(ctx, s.coll, id, out)
}

func findByID(ctx context.Context, coll *mongo.Collection, id string, out any) (bool, error) {
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(out)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}

// upsert sets fields on the document with _id id, creating it if missing.
// Inside DoDecryptionTxn the write is deferred to the commit.
func (s *Store) upsert(ctx context.Context, id string, set bson.D) error {
	if t := s.txnFrom(ctx); t != nil {
		t.put(id, set)
		return nil
	}
	var err error
	// Two upserts racing to create one document make one fail with a
	// duplicate key; the document exists then, so the retry updates it.
	for range 2 {
		_, err = s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}},
			options.UpdateOne().SetUpsert(true))
		if !wcstore.IsDuplicateKey(err) {
			break
		}
	}
	return err
}

// upsertModel is the bulk form of upsert.
func upsertModel(id string, set bson.D) mongo.WriteModel {
	return mongo.NewUpdateOneModel().
		SetFilter(bson.D{{Key: "_id", Value: id}}).
		SetUpdate(bson.D{{Key: "$set", Value: set}}).
		SetUpsert(true)
}

// maxUpdatesPerCommand bounds the statements of one update or delete
// command. FerretDB v1 keeps every statement's cursor open until the whole
// command ends, and a command of about a hundred statements exhausts its
// SQLite connections and hangs.
const maxUpdatesPerCommand = 25

// bulkWrite runs models unordered (each is an idempotent write on its own
// _id, so their order does not matter) in commands of bounded size.
func bulkWrite(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel) error {
	for chunk := range slices.Chunk(models, maxUpdatesPerCommand) {
		if _, err := coll.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false)); err != nil {
			return err
		}
	}
	return nil
}

// upsertItem is one document for putMany: its _id, the fields to set and,
// optionally, a condition an existing document must meet to be replaced.
type upsertItem struct {
	id    string
	set   bson.D
	guard bson.D
}

// putMany upserts many documents. On FerretDB v1 an update costs
// milliseconds and an insert microseconds, and bulk writes (history sync,
// app-state snapshots) are mostly of new documents: so it looks up which
// exist (one read by _id), inserts the rest in one command and updates only
// the existing ones. A document inserted concurrently in between shows up
// as a duplicate key; then every insert is redone as an update.
func putMany(ctx context.Context, coll *mongo.Collection, items []upsertItem) error {
	if len(items) == 0 {
		return nil
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.id
	}
	existing, err := existingIDs(ctx, coll, ids)
	if err != nil {
		return err
	}
	var inserts []any
	var fresh, updates []mongo.WriteModel
	for _, it := range items {
		if existing[it.id] {
			updates = append(updates, updateModel(it))
			continue
		}
		inserts = append(inserts, append(bson.D{{Key: "_id", Value: it.id}}, it.set...))
		fresh = append(fresh, updateModel(it))
	}
	if len(inserts) > 0 {
		_, err := coll.InsertMany(ctx, inserts, options.InsertMany().SetOrdered(false))
		if err != nil && !onlyDuplicates(err) {
			return err
		}
		if err != nil {
			updates = append(updates, fresh...)
		}
	}
	return bulkWrite(ctx, coll, updates)
}

func updateModel(it upsertItem) mongo.WriteModel {
	m := mongo.NewUpdateOneModel().SetUpdate(bson.D{{Key: "$set", Value: it.set}})
	if it.guard == nil {
		return m.SetFilter(bson.D{{Key: "_id", Value: it.id}}).SetUpsert(true)
	}
	// A guarded write does not upsert: a document that fails the guard
	// would make the upsert insert a duplicate _id.
	return m.SetFilter(append(bson.D{{Key: "_id", Value: it.id}}, it.guard...))
}

// existingIDs returns which of ids exist in coll.
func existingIDs(ctx context.Context, coll *mongo.Collection, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	for chunk := range slices.Chunk(ids, 1000) {
		cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: chunk}}}},
			options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return nil, err
		}
		var docs []struct {
			ID string `bson:"_id"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return nil, err
		}
		for _, d := range docs {
			out[d.ID] = true
		}
	}
	return out, nil
}

// deleteByID deletes the document with _id id; inside DoDecryptionTxn the
// delete is deferred to the commit.
func (s *Store) deleteByID(ctx context.Context, id string) error {
	if t := s.txnFrom(ctx); t != nil {
		t.delete(id)
		return nil
	}
	_, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	return err
}

// onlyDuplicates reports whether err consists of duplicate-key errors only.
// Conditional upserts ("write only if newer") and insert-if-absent writes
// use them to mean "a document that wins is already there".
func onlyDuplicates(err error) bool {
	if err == nil {
		return false
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) {
		if bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
			return false
		}
		for _, we := range bwe.WriteErrors {
			if !mongo.IsDuplicateKeyError(mongo.WriteException{WriteErrors: []mongo.WriteError{we.WriteError}}) {
				return false
			}
		}
		return true
	}
	return wcstore.IsDuplicateKey(err)
}
