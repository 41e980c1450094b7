package authstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/protobuf/proto"
)

const deviceID = "device"

// ErrDeviceIDMustBeSet is returned by PutDevice for a device that has not
// paired yet: there is nothing worth storing before it has a JID.
var ErrDeviceIDMustBeSet = errors.New("device JID must be known before it is stored")

// ErrInvalidLength means a stored key has the wrong size: the document was
// damaged or written by something else.
var ErrInvalidLength = errors.New("stored key has an invalid length")

// deviceDoc is the device record: every field sqlstore persists. The
// private keys are stored sealed (devicekeys.go).
type deviceDoc struct {
	ID              string `bson:"_id"`
	Kind            string `bson:"kind"`
	JID             string `bson:"jid"`
	LID             string `bson:"lid,omitempty"`
	RegistrationID  int64  `bson:"registrationId"`
	NoiseKey        []byte `bson:"noiseKey"`
	IdentityKey     []byte `bson:"identityKey"`
	SignedPreKey    []byte `bson:"signedPreKey"`
	SignedPreKeyID  int64  `bson:"signedPreKeyId"`
	SignedPreKeySig []byte `bson:"signedPreKeySig"`
	AdvSecretKey    []byte `bson:"advSecretKey"`
	// Account is the marshalled waAdv.ADVSignedDeviceIdentity.
	Account               []byte `bson:"account,omitempty"`
	Platform              string `bson:"platform"`
	BusinessName          string `bson:"businessName"`
	PushName              string `bson:"pushName"`
	FacebookUUID          string `bson:"facebookUuid,omitempty"`
	LIDMigrationTimestamp int64  `bson:"lidMigrationTs"`
}

// GetDevice returns the account's stored device, or a new unpaired one with
// freshly generated keys (not stored until whatsmeow saves it after
// pairing). Either way every store of the device points at this container.
//
// Auth state found without a device record is a leftover of a deletion that
// raced with late writes; it belongs to keys that no longer exist, so it is
// cleared before a new device starts.
func (c *Container) GetDevice(ctx context.Context) (*store.Device, error) {
	var doc deviceDoc
	found, err := findByID(ctx, c.coll, deviceID, &doc)
	if err != nil {
		return nil, fmt.Errorf("get device of account %s: %w", c.accountID, err)
	}
	if !found {
		if _, err := c.coll.DeleteMany(ctx, bson.D{}); err != nil {
			return nil, fmt.Errorf("clear leftover auth state of account %s: %w", c.accountID, err)
		}
		return c.newDevice()
	}
	dev, err := doc.device()
	if err == nil {
		err = openDeviceKeys(c.keys, doc.storedKeys(), dev)
	}
	if err != nil {
		return nil, fmt.Errorf("decode device of account %s: %w", c.accountID, err)
	}
	c.initDevice(dev)
	return dev, nil
}

// newDevice generates a device's keys as whatsmeow's sqlstore does.
func (c *Container) newDevice() (*store.Device, error) {
	var buf [4 + 32]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return nil, fmt.Errorf("generate device secrets: %w", err)
	}
	dev := &store.Device{
		NoiseKey:       keys.NewKeyPair(),
		IdentityKey:    keys.NewKeyPair(),
		RegistrationID: binary.BigEndian.Uint32(buf[:4]),
		AdvSecretKey:   buf[4:],
	}
	dev.SignedPreKey = dev.IdentityKey.CreateSignedPreKey(1)
	c.initDevice(dev)
	return dev, nil
}

// initDevice points every store of dev at this container.
func (c *Container) initDevice(dev *store.Device) {
	dev.Log = c.log
	dev.Identities = c.store
	dev.Sessions = c.store
	dev.PreKeys = c.store
	dev.SenderKeys = c.store
	dev.AppStateKeys = c.store
	dev.AppState = c.store
	dev.Contacts = c.store
	dev.ChatSettings = c.store
	dev.MsgSecrets = c.store
	dev.PrivacyTokens = c.store
	dev.EventBuffer = c.store
	dev.LIDs = c.lids
	dev.Container = c
	dev.Initialized = true
	SealDevice(dev, c.keys)
}

// PutDevice stores the device record; whatsmeow calls it (through
// Device.Save) after pairing and whenever a device field changes. The whole
// record is replaced each time, so the last save wins.
func (c *Container) PutDevice(ctx context.Context, dev *store.Device) error {
	if dev.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	stored, err := sealDeviceKeys(c.keys, dev)
	if err != nil {
		return fmt.Errorf("put device %s: %w", dev.ID, err)
	}
	doc, err := newDeviceDoc(dev, stored)
	if err != nil {
		return fmt.Errorf("put device %s: %w", dev.ID, err)
	}
	// A whole-document replace, so a field cleared on the device (say its
	// LID) is cleared in the record too.
	_, err = c.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: deviceID}}, doc, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("put device %s: %w", dev.ID, err)
	}
	if !dev.Initialized || dev.Container != c {
		c.initDevice(dev)
	}
	return nil
}

// DeleteDevice removes all auth state of the account; whatsmeow calls it
// (through Device.Delete) when the device is logged out. dev is not
// consulted: the container holds the account's only device.
func (c *Container) DeleteDevice(ctx context.Context, _ *store.Device) error {
	return c.Delete(ctx)
}

// newDeviceDoc is the record of dev with its private keys as stored.
func newDeviceDoc(dev *store.Device, stored DeviceKeys) (*deviceDoc, error) {
	if stored.Noise == nil || stored.Identity == nil || stored.SignedPreKey == nil || dev.SignedPreKey == nil || dev.SignedPreKey.Signature == nil {
		return nil, errors.New("device keys are missing")
	}
	doc := &deviceDoc{
		ID:                    deviceID,
		Kind:                  kindDevice,
		JID:                   dev.ID.String(),
		RegistrationID:        int64(dev.RegistrationID),
		NoiseKey:              stored.Noise,
		IdentityKey:           stored.Identity,
		SignedPreKey:          stored.SignedPreKey,
		SignedPreKeyID:        int64(dev.SignedPreKey.KeyID),
		SignedPreKeySig:       dev.SignedPreKey.Signature[:],
		AdvSecretKey:          stored.AdvSecret,
		Platform:              dev.Platform,
		BusinessName:          dev.BusinessName,
		PushName:              dev.PushName,
		LIDMigrationTimestamp: dev.LIDMigrationTimestamp,
	}
	if !dev.LID.IsEmpty() {
		doc.LID = dev.LID.String()
	}
	if dev.Account != nil {
		acc, err := proto.Marshal(dev.Account)
		if err != nil {
			return nil, fmt.Errorf("marshal account identity: %w", err)
		}
		doc.Account = acc
	}
	if dev.FacebookUUID != uuid.Nil {
		doc.FacebookUUID = dev.FacebookUUID.String()
	}
	return doc, nil
}

// storedKeys are the record's private keys as stored.
func (doc *deviceDoc) storedKeys() DeviceKeys {
	return DeviceKeys{Noise: doc.NoiseKey, Identity: doc.IdentityKey, SignedPreKey: doc.SignedPreKey, AdvSecret: doc.AdvSecretKey}
}

// device is the record's device without its private keys (openDeviceKeys
// adds them).
func (doc *deviceDoc) device() (*store.Device, error) {
	if len(doc.SignedPreKeySig) != 64 {
		return nil, ErrInvalidLength
	}
	jid, err := types.ParseJID(doc.JID)
	if err != nil {
		return nil, fmt.Errorf("parse jid %q: %w", doc.JID, err)
	}
	dev := &store.Device{
		ID:                    &jid,
		SignedPreKey:          &keys.PreKey{KeyID: uint32(doc.SignedPreKeyID), Signature: (*[64]byte)(doc.SignedPreKeySig)},
		RegistrationID:        uint32(doc.RegistrationID),
		Account:               &waAdv.ADVSignedDeviceIdentity{},
		Platform:              doc.Platform,
		BusinessName:          doc.BusinessName,
		PushName:              doc.PushName,
		LIDMigrationTimestamp: doc.LIDMigrationTimestamp,
	}
	if doc.LID != "" {
		if dev.LID, err = types.ParseJID(doc.LID); err != nil {
			return nil, fmt.Errorf("parse lid %q: %w", doc.LID, err)
		}
	}
	if err := proto.Unmarshal(doc.Account, dev.Account); err != nil {
		return nil, fmt.Errorf("unmarshal account identity: %w", err)
	}
	if doc.FacebookUUID != "" {
		if dev.FacebookUUID, err = uuid.Parse(doc.FacebookUUID); err != nil {
			return nil, fmt.Errorf("parse facebook uuid: %w", err)
		}
	}
	return dev, nil
}
