package authstore

import (
	"go.mau.fi/whatsmeow/store"
)

// The engine-to-engine copy (wildcatd store copy) moves each account's
// whatsmeow auth state between whatsmeow's sqlstore (copy_sqlite.go) and
// the MongoDB collections (copy_mongo.go) as an Account: the device record
// and the rows of every store, as each engine keeps them, so that the
// account's linked phone goes on talking to the copy without pairing
// again. The device's private keys and its pre-keys move as they are
// stored (sealed, when encryption is on): the copy needs no key. The LID
// map, shared by all accounts, is copied as LIDMappings.

// Account is one account's whole auth state, engine-neutral.
type Account struct {
	AccountID string
	// Device is the device record (JIDs, ADV identity, names, the signed
	// pre-key's id and signature) without its private keys: its key pairs
	// and ADV secret are nil.
	Device *store.Device
	// DeviceKeys are the device's private keys as stored.
	DeviceKeys DeviceKeys

	Identities    []Identity
	Sessions      []Session
	PreKeys       []PreKey
	SenderKeys    []SenderKey
	AppStateKeys  []AppStateKey
	AppStates     []AppStateVersion
	AppStateMACs  []AppStateMAC
	Contacts      []Contact
	ChatSettings  []ChatSetting
	MsgSecrets    []MessageSecret
	PrivacyTokens []PrivacyToken
	EventBuffer   []BufferedEvent
}

// Identity is the Signal identity key of a remote address.
type Identity struct {
	Address string
	Key     []byte
}

// Session is the Signal session record with a remote address.
type Session struct {
	Address string
	Record  []byte
}

// PreKey is a one-time pre-key: its private half as stored.
type PreKey struct {
	ID       uint32
	Key      []byte
	Uploaded bool
}

// SenderKey is the sender key record of a sender (a Signal address) in a
// group.
type SenderKey struct {
	Group, Sender string
	Record        []byte
}

// AppStateKey is an app-state sync key.
type AppStateKey struct {
	ID, Data, Fingerprint []byte
	Timestamp             int64
}

// AppStateVersion is the version and hash of an app-state collection.
type AppStateVersion struct {
	Name    string
	Version uint64
	Hash    []byte
}

// AppStateMAC is the value MAC of an index MAC of an app-state collection
// at a version.
type AppStateMAC struct {
	Name               string
	Version            uint64
	IndexMAC, ValueMAC []byte
}

// Contact is what is known of a contact's names.
type Contact struct {
	JID                                                        string
	FirstName, FullName, PushName, BusinessName, RedactedPhone string
}

// ChatSetting is a chat's mute, pin and archive state.
type ChatSetting struct {
	JID        string
	MutedUntil int64
	Pinned     bool
	Archived   bool
}

// MessageSecret is the secret of a message (polls, reactions, edits).
type MessageSecret struct {
	Chat, Sender, ID string
	Secret           []byte
}

// PrivacyToken is a user's privacy token; Timestamp in Unix seconds.
type PrivacyToken struct {
	JID       string
	Token     []byte
	Timestamp int64
}

// BufferedEvent is a decrypted event kept until handled (Plaintext nil
// once it was); ServerTime in Unix seconds, InsertTime in milliseconds.
type BufferedEvent struct {
	Hash       []byte
	Plaintext  []byte
	ServerTime int64
	InsertTime int64
}

// LIDMapping maps a LID user to a phone-number user (the JIDs' user parts).
type LIDMapping struct {
	LID, PN string
}

// rows counts the account's items besides the device.
func (a *Account) rows() int {
	return len(a.Identities) + len(a.Sessions) + len(a.PreKeys) + len(a.SenderKeys) + len(a.AppStateKeys) +
		len(a.AppStates) + len(a.AppStateMACs) + len(a.Contacts) + len(a.ChatSettings) + len(a.MsgSecrets) +
		len(a.PrivacyTokens) + len(a.EventBuffer)
}

// keepHighestMACs keeps, per (collection, index MAC), the highest version:
// what GetAppStateMutationMAC reads, and all the MongoDB store keeps.
func keepHighestMACs(macs []AppStateMAC) []AppStateMAC {
	best := map[string]int{}
	var out []AppStateMAC
	for _, m := range macs {
		k := m.Name + "\x00" + string(m.IndexMAC)
		if i, ok := best[k]; ok {
			if m.Version > out[i].Version {
				out[i] = m
			}
			continue
		}
		best[k] = len(out)
		out = append(out, m)
	}
	return out
}
