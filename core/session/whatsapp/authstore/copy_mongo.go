package authstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	wcstore "github.com/wildcathub/wildcat/core/store"
)

// The MongoDB side of the copy (copy.go): each account's auth_{accountId}
// collection, documents as this package's stores write them.

// MongoCopy exports and imports every account's auth state.
type MongoCopy struct{ db *mongo.Database }

// NewMongoCopy returns the accounts' auth state in db for a copy.
func NewMongoCopy(db *mongo.Database) *MongoCopy { return &MongoCopy{db: db} }

// accounts lists the accounts whose collection holds a device record.
func (c *MongoCopy) accounts(ctx context.Context) ([]string, error) {
	prefix := wcstore.AuthCollection("")
	names, err := c.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list auth collections: %w", err)
	}
	var out []string
	for _, n := range names {
		id, ok := strings.CutPrefix(n, prefix)
		if !ok || n == LIDMapCollection {
			continue
		}
		have, err := c.db.Collection(n).CountDocuments(ctx, bson.D{{Key: "_id", Value: deviceID}})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
		if have > 0 {
			out = append(out, id)
		}
	}
	return out, nil
}

// Count counts the paired accounts.
func (c *MongoCopy) Count(ctx context.Context) (int64, error) {
	ids, err := c.accounts(ctx)
	return int64(len(ids)), err
}

// Export hands each paired account's auth state to fn, one account per
// call.
func (c *MongoCopy) Export(ctx context.Context, _ int, fn func([]*Account) error) error {
	ids, err := c.accounts(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		a, err := c.read(ctx, id)
		if err != nil {
			return fmt.Errorf("export whatsapp auth state of %s: %w", id, err)
		}
		if a == nil {
			continue
		}
		if err := fn([]*Account{a}); err != nil {
			return err
		}
	}
	return nil
}

// Per-kind shapes of the documents, as their stores write them.
type (
	copyIdentity struct {
		Address string
		Key     []byte
	}
	copySession struct {
		Address string
		Session []byte
	}
	copyPreKey struct {
		KeyID    int64 `bson:"keyId"`
		Key      []byte
		Uploaded bool
	}
	copySenderKey struct {
		Group, Sender string
		Key           []byte
	}
	copyAppStateKey struct {
		KeyID       []byte `bson:"keyId"`
		Data        []byte
		Fingerprint []byte
		Timestamp   int64
	}
	copyAppState struct {
		Name    string
		Version int64
		Hash    []byte
	}
	copyAppStateMAC struct {
		Name     string
		Version  int64
		IndexMAC []byte `bson:"indexMac"`
		ValueMAC []byte `bson:"valueMac"`
	}
	copyChat struct {
		JID              string `bson:"jid"`
		MutedUntil       int64  `bson:"mutedUntil"`
		Pinned, Archived bool
	}
	copyMsgSecret struct {
		Chat, Sender string
		MessageID    string `bson:"messageId"`
		Secret       []byte
	}
	copyPrivacy struct {
		JID       string `bson:"jid"`
		Token     []byte
		Timestamp int64
	}
	copyEventBuf struct {
		ID         string `bson:"_id"`
		Plaintext  []byte `bson:"plaintext"`
		ServerTime int64  `bson:"serverTime"`
		InsertTime int64  `bson:"insertTime"`
	}
)

func (c *MongoCopy) read(ctx context.Context, accountID string) (*Account, error) {
	coll := c.db.Collection(wcstore.AuthCollection(accountID))
	cur, err := coll.Find(ctx, bson.D{{Key: "kind", Value: bson.D{{Key: "$exists", Value: true}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	a := &Account{AccountID: accountID}
	for cur.Next(ctx) {
		raw := cur.Current
		kind, _ := raw.Lookup("kind").StringValueOK()
		var err error
		switch kind {
		case kindDevice:
			var d deviceDoc
			if err = bson.Unmarshal(raw, &d); err == nil {
				a.Device, err = d.device()
				a.DeviceKeys = d.storedKeys()
			}
		case kindIdentity:
			var d copyIdentity
			err = bson.Unmarshal(raw, &d)
			a.Identities = append(a.Identities, Identity{Address: d.Address, Key: d.Key})
		case kindSession:
			var d copySession
			err = bson.Unmarshal(raw, &d)
			a.Sessions = append(a.Sessions, Session{Address: d.Address, Record: d.Session})
		case kindPreKey:
			var d copyPreKey
			err = bson.Unmarshal(raw, &d)
			a.PreKeys = append(a.PreKeys, PreKey{ID: uint32(d.KeyID), Key: d.Key, Uploaded: d.Uploaded})
		case kindSenderKey:
			var d copySenderKey
			err = bson.Unmarshal(raw, &d)
			a.SenderKeys = append(a.SenderKeys, SenderKey{Group: d.Group, Sender: d.Sender, Record: d.Key})
		case kindAppStateKey:
			var d copyAppStateKey
			err = bson.Unmarshal(raw, &d)
			a.AppStateKeys = append(a.AppStateKeys, AppStateKey{ID: d.KeyID, Data: d.Data, Fingerprint: d.Fingerprint, Timestamp: d.Timestamp})
		case kindAppState:
			var d copyAppState
			err = bson.Unmarshal(raw, &d)
			a.AppStates = append(a.AppStates, AppStateVersion{Name: d.Name, Version: uint64(d.Version), Hash: d.Hash})
		case kindAppStateMAC:
			var d copyAppStateMAC
			err = bson.Unmarshal(raw, &d)
			a.AppStateMACs = append(a.AppStateMACs, AppStateMAC{Name: d.Name, Version: uint64(d.Version), IndexMAC: d.IndexMAC, ValueMAC: d.ValueMAC})
		case kindContact:
			var d contactDoc
			err = bson.Unmarshal(raw, &d)
			a.Contacts = append(a.Contacts, Contact{JID: d.JID, FirstName: d.FirstName, FullName: d.FullName,
				PushName: d.PushName, BusinessName: d.BusinessName, RedactedPhone: d.RedactedPhone})
		case kindChat:
			var d copyChat
			err = bson.Unmarshal(raw, &d)
			a.ChatSettings = append(a.ChatSettings, ChatSetting{JID: d.JID, MutedUntil: d.MutedUntil, Pinned: d.Pinned, Archived: d.Archived})
		case kindMsgSecret:
			var d copyMsgSecret
			err = bson.Unmarshal(raw, &d)
			a.MsgSecrets = append(a.MsgSecrets, MessageSecret{Chat: d.Chat, Sender: d.Sender, ID: d.MessageID, Secret: d.Secret})
		case kindPrivacy:
			var d copyPrivacy
			err = bson.Unmarshal(raw, &d)
			a.PrivacyTokens = append(a.PrivacyTokens, PrivacyToken{JID: d.JID, Token: d.Token, Timestamp: d.Timestamp})
		case kindEventBuf:
			var d copyEventBuf
			if err = bson.Unmarshal(raw, &d); err == nil {
				var hash []byte
				hash, err = hex.DecodeString(strings.TrimPrefix(d.ID, "eventbuf:"))
				a.EventBuffer = append(a.EventBuffer, BufferedEvent{Hash: hash, Plaintext: d.Plaintext, ServerTime: d.ServerTime, InsertTime: d.InsertTime})
			}
		case kindCounter:
			// The pre-key counter is rebuilt from the pre-keys.
		default:
			err = fmt.Errorf("unknown kind %q", kind)
		}
		if err != nil {
			id, _ := raw.Lookup("_id").StringValueOK()
			return nil, fmt.Errorf("document %s: %w", id, err)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, err
	}
	if a.Device == nil {
		return nil, nil // deleted meanwhile
	}
	return a, nil
}

// Import stores each account's auth state: every document, replacing those
// with the same _id, the device record last (a collection without one is
// cleared as leftovers when the account next starts, so an interrupted
// import never passes for a paired device). State of another device the
// account had is deleted first.
func (c *MongoCopy) Import(ctx context.Context, as []*Account) error {
	for _, a := range as {
		if err := c.write(ctx, a); err != nil {
			return fmt.Errorf("import whatsapp auth state of %s: %w", a.AccountID, err)
		}
	}
	return nil
}

func (c *MongoCopy) write(ctx context.Context, a *Account) error {
	if a.Device == nil || a.Device.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	dev, err := newDeviceDoc(a.Device, a.DeviceKeys)
	if err != nil {
		return err
	}
	coll := c.db.Collection(wcstore.AuthCollection(a.AccountID))
	var cur deviceDoc
	found, err := findByID(ctx, coll, deviceID, &cur)
	if err != nil {
		return err
	}
	if found && cur.JID != dev.JID {
		if _, err := coll.DeleteMany(ctx, bson.D{{Key: "kind", Value: bson.D{{Key: "$exists", Value: true}}}}); err != nil {
			return fmt.Errorf("delete the state of device %s: %w", cur.JID, err)
		}
	}
	var ids, docs []any
	add := func(id string, d bson.D) {
		ids = append(ids, id)
		docs = append(docs, append(bson.D{{Key: "_id", Value: id}}, d...))
	}
	for _, x := range a.Identities {
		add(identityID(x.Address), bson.D{{Key: "kind", Value: kindIdentity}, {Key: "address", Value: x.Address},
			{Key: "user", Value: signalUser(x.Address)}, {Key: "key", Value: x.Key}})
	}
	for _, x := range a.Sessions {
		add(sessionID(x.Address), sessionSet(x.Address, x.Record))
	}
	var lastPreKey uint32
	for _, x := range a.PreKeys {
		add(preKeyID(x.ID), bson.D{{Key: "kind", Value: kindPreKey}, {Key: "keyId", Value: int64(x.ID)},
			{Key: "key", Value: x.Key}, {Key: "uploaded", Value: x.Uploaded}})
		lastPreKey = max(lastPreKey, x.ID)
	}
	for _, x := range a.SenderKeys {
		add(senderKeyID(x.Group, x.Sender), bson.D{{Key: "kind", Value: kindSenderKey}, {Key: "group", Value: x.Group},
			{Key: "sender", Value: x.Sender}, {Key: "user", Value: signalUser(x.Sender)}, {Key: "key", Value: x.Record}})
	}
	for _, x := range a.AppStateKeys {
		add(appStateKeyID(x.ID), bson.D{{Key: "kind", Value: kindAppStateKey}, {Key: "keyId", Value: x.ID},
			{Key: "data", Value: x.Data}, {Key: "fingerprint", Value: x.Fingerprint}, {Key: "timestamp", Value: x.Timestamp}})
	}
	for _, x := range a.AppStates {
		add(appStateVersionID(x.Name), bson.D{{Key: "kind", Value: kindAppState}, {Key: "name", Value: x.Name},
			{Key: "version", Value: int64(x.Version)}, {Key: "hash", Value: x.Hash}})
	}
	for _, x := range keepHighestMACs(a.AppStateMACs) {
		add(appStateMACID(x.Name, x.IndexMAC), bson.D{{Key: "kind", Value: kindAppStateMAC}, {Key: "name", Value: x.Name},
			{Key: "version", Value: int64(x.Version)}, {Key: "indexMac", Value: x.IndexMAC}, {Key: "valueMac", Value: x.ValueMAC}})
	}
	for _, x := range a.Contacts {
		add("contact:"+x.JID, bson.D{{Key: "kind", Value: kindContact}, {Key: "jid", Value: x.JID},
			{Key: "firstName", Value: x.FirstName}, {Key: "fullName", Value: x.FullName}, {Key: "pushName", Value: x.PushName},
			{Key: "businessName", Value: x.BusinessName}, {Key: "redactedPhone", Value: x.RedactedPhone}})
	}
	for _, x := range a.ChatSettings {
		add("chat:"+x.JID, bson.D{{Key: "kind", Value: kindChat}, {Key: "jid", Value: x.JID},
			{Key: "mutedUntil", Value: x.MutedUntil}, {Key: "pinned", Value: x.Pinned}, {Key: "archived", Value: x.Archived}})
	}
	for _, x := range a.MsgSecrets {
		add("msgsecret:"+x.Chat+":"+x.Sender+":"+x.ID, bson.D{{Key: "kind", Value: kindMsgSecret}, {Key: "chat", Value: x.Chat},
			{Key: "sender", Value: x.Sender}, {Key: "messageId", Value: x.ID}, {Key: "secret", Value: x.Secret}})
	}
	for _, x := range a.PrivacyTokens {
		add("privacytoken:"+x.JID, bson.D{{Key: "kind", Value: kindPrivacy}, {Key: "jid", Value: x.JID},
			{Key: "token", Value: x.Token}, {Key: "timestamp", Value: x.Timestamp}})
	}
	for _, x := range a.EventBuffer {
		d := bson.D{{Key: "kind", Value: kindEventBuf}}
		if x.Plaintext != nil {
			d = append(d, bson.E{Key: "plaintext", Value: x.Plaintext})
		}
		add("eventbuf:"+hex.EncodeToString(x.Hash), append(d, bson.E{Key: "serverTime", Value: x.ServerTime},
			bson.E{Key: "insertTime", Value: x.InsertTime}))
	}
	if err := wcstore.ReplaceAll(ctx, coll, ids, docs); err != nil {
		return err
	}
	if lastPreKey > 0 {
		// Never lower the counter: ids it handed out may be in use.
		for range 2 {
			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: preKeySeqID}},
				bson.D{{Key: "$max", Value: bson.D{{Key: "last", Value: int64(lastPreKey)}}},
					{Key: "$set", Value: bson.D{{Key: "kind", Value: kindCounter}}}},
				options.UpdateOne().SetUpsert(true))
			if !wcstore.IsDuplicateKey(err) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("pre-key counter: %w", err)
		}
	}
	_, err = coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: deviceID}}, dev, options.Replace().SetUpsert(true))
	return err
}

// MongoLIDCopy exports and imports the LID map.
type MongoLIDCopy struct{ m *LIDMap }

// NewMongoLIDCopy returns the LID map in db for a copy.
func NewMongoLIDCopy(db *mongo.Database) *MongoLIDCopy { return &MongoLIDCopy{m: NewLIDMap(db)} }

var lidDocs = bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^lid:"}}}}

// Count counts the mappings.
func (c *MongoLIDCopy) Count(ctx context.Context) (int64, error) {
	return wcstore.Count(ctx, c.m.coll, lidDocs)
}

// Export hands every mapping to fn in batches, by LID.
func (c *MongoLIDCopy) Export(ctx context.Context, batch int, fn func([]*LIDMapping) error) error {
	return wcstore.Export(ctx, c.m.coll, lidDocs, bson.D{{Key: "_id", Value: 1}}, batch, func(docs []*lidMapDoc) error {
		out := make([]*LIDMapping, 0, len(docs))
		for _, d := range docs {
			if d.PN == "" {
				continue
			}
			out = append(out, &LIDMapping{LID: strings.TrimPrefix(d.ID, "lid:"), PN: d.PN})
		}
		if len(out) == 0 {
			return nil
		}
		return fn(out)
	})
}

// Import stores the mappings as PutManyLIDMappings does (a phone number
// mapped to another LID before is re-mapped).
func (c *MongoLIDCopy) Import(ctx context.Context, ms []*LIDMapping) error {
	if err := c.m.PutManyLIDMappings(ctx, storeMappings(ms)); err != nil {
		return fmt.Errorf("import LID mappings: %w", err)
	}
	return nil
}

// Devices maps each stored device's JID to the account it is linked as
// (wildcatd accounts import: is a device already here?).
func (c *MongoCopy) Devices(ctx context.Context) (map[string]string, error) {
	ids, err := c.accounts(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, id := range ids {
		var d struct {
			JID string `bson:"jid"`
		}
		found, err := findByID(ctx, c.db.Collection(wcstore.AuthCollection(id)), deviceID, &d)
		if err != nil {
			return nil, fmt.Errorf("read the device of %s: %w", id, err)
		}
		if found {
			out[d.JID] = id
		}
	}
	return out, nil
}
