package authstore

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestGetDeviceFresh(t *testing.T) { storetest.Each(t, testGetDeviceFresh) }

func testGetDeviceFresh(t *testing.T, e storetest.Engine) {
	d, ctx := newTestDB(t, e)
	c := d.account("acct")
	dev, err := c.GetDevice(ctx)
	must(t, err)
	if dev.ID != nil {
		t.Fatalf("fresh device has ID %s", dev.ID)
	}
	if dev.NoiseKey == nil || dev.IdentityKey == nil || dev.SignedPreKey == nil || dev.SignedPreKey.Signature == nil {
		t.Fatal("fresh device lacks keys")
	}
	if dev.SignedPreKey.KeyID != 1 || len(dev.AdvSecretKey) != 32 {
		t.Fatalf("signed pre-key id %d, adv secret %d bytes", dev.SignedPreKey.KeyID, len(dev.AdvSecretKey))
	}
	if e == storetest.MongoDB {
		// sqlstore wires a device's stores when it is first saved.
		assertWired(t, c.(*Container), dev)
	}
	if dev.Container != c {
		t.Fatal("a fresh device would not be saved as the account's")
	}

	other, err := c.GetDevice(ctx)
	must(t, err)
	if bytes.Equal(other.IdentityKey.Priv[:], dev.IdentityKey.Priv[:]) {
		t.Fatal("two fresh devices share an identity key")
	}
	if err := c.PutDevice(ctx, dev); !errors.Is(err, ErrDeviceIDMustBeSet) {
		t.Fatalf("PutDevice without ID: %v, want ErrDeviceIDMustBeSet", err)
	}
	// A whatsmeow client builds on it.
	if cli := whatsmeow.NewClient(dev, nil); cli == nil || cli.Store != dev {
		t.Fatal("whatsmeow.NewClient did not take the device")
	}
}

// assertDevice checks that dev is initialised with the account's stores
// and saves to the account.
func assertDevice(t *testing.T, c testAccount, dev *store.Device) {
	t.Helper()
	if mc, ok := c.(*Container); ok {
		assertWired(t, mc, dev)
		return
	}
	if !dev.Initialized || dev.Container != c || dev.LIDs == nil || dev.Log == nil {
		t.Fatal("device not initialised with this account")
	}
	// The pre-keys are Wildcat's, sealable; the rest is sqlstore's.
	sa := c.(*SQLiteAccount)
	if pk, ok := dev.PreKeys.(*sqlitePreKeys); !ok || pk.s != sa.s || pk.jid != dev.ID.String() {
		t.Fatalf("device.PreKeys is %T, not the account's pre-key store", dev.PreKeys)
	}
	assertStores(t, dev, dev.Identities, "PreKeys")
}

func assertWired(t *testing.T, c *Container, dev *store.Device) {
	t.Helper()
	if !dev.Initialized || dev.Container != c || dev.LIDs != c.LIDs() || dev.Log == nil {
		t.Fatal("device not initialised with this container")
	}
	assertStores(t, dev, c.Store())
}

// assertStores checks that every session-specific store of dev but those
// named in except is s.
func assertStores(t *testing.T, dev *store.Device, s any, except ...string) {
	t.Helper()
	for name, got := range map[string]any{
		"Identities": dev.Identities, "Sessions": dev.Sessions, "PreKeys": dev.PreKeys,
		"SenderKeys": dev.SenderKeys, "AppStateKeys": dev.AppStateKeys, "AppState": dev.AppState,
		"Contacts": dev.Contacts, "ChatSettings": dev.ChatSettings, "MsgSecrets": dev.MsgSecrets,
		"PrivacyTokens": dev.PrivacyTokens, "EventBuffer": dev.EventBuffer,
	} {
		if !slices.Contains(except, name) && unsealed(got) != s {
			t.Errorf("device.%s is %T, not this store", name, got)
		}
	}
}

func pairedDevice(t *testing.T, c testAccount) *store.Device {
	t.Helper()
	dev, err := c.GetDevice(t.Context())
	must(t, err)
	jid := types.JID{User: "15550001111", Device: 7, Server: types.DefaultUserServer}
	dev.ID = &jid
	dev.LID = types.JID{User: "99887766", Device: 7, Server: types.HiddenUserServer}
	dev.Account = testAccountIdentity()
	dev.Platform = "android"
	dev.BusinessName = "Acme"
	dev.PushName = "Alice"
	dev.LIDMigrationTimestamp = 1700000000
	dev.FacebookUUID = uuid.MustParse("7c9e6679-7425-40de-944b-e07fc1f90ae7")
	return dev
}

// testAccountIdentity is an ADV identity with fields of the sizes a paired
// device has (sqlstore checks them).
func testAccountIdentity() *waAdv.ADVSignedDeviceIdentity {
	return &waAdv.ADVSignedDeviceIdentity{
		Details:             []byte("details"),
		AccountSignatureKey: bytes.Repeat([]byte{1}, 32),
		AccountSignature:    bytes.Repeat([]byte{2}, 64),
		DeviceSignature:     bytes.Repeat([]byte{3}, 64),
	}
}

func TestDeviceRoundTrip(t *testing.T) { storetest.Each(t, testDeviceRoundTrip) }

func testDeviceRoundTrip(t *testing.T, e storetest.Engine) {
	d, ctx := newTestDB(t, e)
	c := d.account("acct")
	dev := pairedDevice(t, c)
	must(t, dev.Save(ctx))
	if dev.Container != c {
		t.Fatal("a saved device no longer saves to the account")
	}

	// Another daemon (MongoDB), or this one restarted, reads every field
	// back.
	c2 := d.reopen(t).account("acct")
	got, err := c2.GetDevice(ctx)
	must(t, err)
	assertDevice(t, c2, got)
	checks := []struct {
		name string
		ok   bool
	}{
		{"ID", got.ID != nil && *got.ID == *dev.ID},
		{"LID", got.LID == dev.LID},
		{"NoiseKey", *got.NoiseKey.Priv == *dev.NoiseKey.Priv && *got.NoiseKey.Pub == *dev.NoiseKey.Pub},
		{"IdentityKey", *got.IdentityKey.Priv == *dev.IdentityKey.Priv && *got.IdentityKey.Pub == *dev.IdentityKey.Pub},
		{"SignedPreKey", *got.SignedPreKey.Priv == *dev.SignedPreKey.Priv && got.SignedPreKey.KeyID == dev.SignedPreKey.KeyID},
		{"SignedPreKey.Signature", *got.SignedPreKey.Signature == *dev.SignedPreKey.Signature},
		{"RegistrationID", got.RegistrationID == dev.RegistrationID},
		{"AdvSecretKey", bytes.Equal(got.AdvSecretKey, dev.AdvSecretKey)},
		{"Account", proto.Equal(got.Account, dev.Account)},
		{"Platform", got.Platform == dev.Platform},
		{"BusinessName", got.BusinessName == dev.BusinessName},
		{"PushName", got.PushName == dev.PushName},
		{"LIDMigrationTimestamp", got.LIDMigrationTimestamp == dev.LIDMigrationTimestamp},
		{"FacebookUUID", got.FacebookUUID == dev.FacebookUUID},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s did not round-trip", c.name)
		}
	}

	// Overwrite: a changed name and a cleared LID are stored. (So is a
	// cleared Facebook UUID on MongoDB; sqlstore keeps the first one, and
	// only Messenger devices have one.)
	got.PushName = "Alice B"
	got.LID = types.EmptyJID
	got.FacebookUUID = uuid.Nil
	must(t, got.Save(ctx))
	again, err := c.GetDevice(ctx)
	must(t, err)
	if again.PushName != "Alice B" || !again.LID.IsEmpty() {
		t.Fatalf("after overwrite: push name %q, LID %s", again.PushName, again.LID)
	}
	if e == storetest.MongoDB && again.FacebookUUID != uuid.Nil {
		t.Fatalf("after overwrite: uuid %s", again.FacebookUUID)
	}
	if *again.IdentityKey.Priv != *dev.IdentityKey.Priv {
		t.Fatal("identity key changed on overwrite")
	}
}

// TestDeleteDevice checks that deleting removes every kind of state of the
// account, leaves other accounts and the shared LID map alone, and that
// the next GetDevice starts afresh.
func TestDeleteDevice(t *testing.T) { storetest.Each(t, testDeleteDevice) }

func testDeleteDevice(t *testing.T, e storetest.Engine) {
	d, ctx := newTestDB(t, e)
	a, b := d.account("alice"), d.account("bob")
	for i, c := range []testAccount{a, b} {
		dev := pairedDevice(t, c)
		dev.ID.Device = uint16(i + 1) // one device per account
		must(t, dev.Save(ctx))
		fillEveryKind(t, d, c)
	}
	must(t, d.lids().PutLIDMapping(ctx, lidJID("555"), pnJID("111")))

	devA, err := a.GetDevice(ctx)
	must(t, err)
	jidA := *devA.ID
	if n := d.stateCount(t, "alice", jidA); n < 12 {
		t.Fatalf("alice has %d items stored before the delete, want one of every kind", n)
	}
	must(t, devA.Delete(ctx))
	if devA.ID != nil {
		t.Fatal("Device.Delete left the ID")
	}
	if n := d.stateCount(t, "alice", jidA); n != 0 {
		t.Fatalf("alice has %d items left", n)
	}
	fresh, err := a.GetDevice(ctx)
	must(t, err)
	if fresh.ID != nil || *fresh.IdentityKey.Priv == *devA.IdentityKey.Priv {
		t.Fatal("GetDevice after delete did not return a new device")
	}

	devB, err := b.GetDevice(ctx)
	must(t, err)
	if devB.ID == nil {
		t.Fatal("bob's device was deleted")
	}
	bob := d.store(t, "bob")
	if sess, _ := bob.GetSession(ctx, "1:0"); string(sess) != "s" {
		t.Fatalf("bob's session = %q", sess)
	}
	if n := countKind(t, ctx, bob, kindPreKey); n != 2 {
		t.Fatalf("bob has %d pre-keys, want 2", n)
	}
	if n := countKind(t, ctx, bob, kindPrivacy); n != 1 {
		t.Fatalf("bob has %d privacy tokens, want 1", n)
	}
	if lid, _ := d.lids().GetLIDForPN(ctx, pnJID("111")); lid.User != "555" {
		t.Fatal("the shared LID map lost a mapping")
	}
}

// fillEveryKind writes one document of every kind through the public API.
func fillEveryKind(t *testing.T, d *testDB, c testAccount) {
	t.Helper()
	ctx := t.Context()
	dev, err := c.GetDevice(ctx)
	must(t, err)
	s := dev.Identities.(store.AllSessionSpecificStores)
	must(t, s.PutIdentity(ctx, "1:0", key32(1)))
	must(t, s.PutSession(ctx, "1:0", []byte("s")))
	_, err = dev.PreKeys.GetOrGenPreKeys(ctx, 2)
	must(t, err)
	must(t, s.PutSenderKey(ctx, "g@g.us", "1:0", []byte("sk")))
	must(t, s.PutAppStateSyncKey(ctx, []byte{1}, store.AppStateSyncKey{Data: []byte("d"), Fingerprint: []byte("f"), Timestamp: 1}))
	must(t, s.PutAppStateVersion(ctx, "regular", 1, [128]byte{1}))
	must(t, s.PutAppStateMutationMACs(ctx, "regular", 1, []store.AppStateMutationMAC{{IndexMAC: bigMAC(1), ValueMAC: bigMAC(2)}}))
	must(t, s.PutContactName(ctx, pnJID("1"), "A", "A B"))
	must(t, s.PutPinned(ctx, pnJID("1"), true))
	must(t, s.PutMessageSecret(ctx, pnJID("1"), pnJID("1"), "M", []byte("x")))
	must(t, s.PutPrivacyTokens(ctx, store.PrivacyToken{User: pnJID("1"), Token: []byte("t")}))
	must(t, s.PutBufferedEvent(ctx, key32(1), []byte("p"), testTime))
}

// TestGetDeviceClearsLeftovers: MongoDB only; on SQLite no state can exist
// without its device record (whatsmeow's foreign keys).
func TestGetDeviceClearsLeftovers(t *testing.T) {
	d, ctx := newTestDB(t, storetest.MongoDB)
	c := New(d.mongo, "acct", nil)
	// State without a device record: late writes racing a deletion.
	must(t, c.Store().PutSession(ctx, "1:0", []byte("stale")))
	_, err := c.GetDevice(ctx)
	must(t, err)
	if sess, _ := c.Store().GetSession(ctx, "1:0"); sess != nil {
		t.Fatal("leftover session survived GetDevice of a new device")
	}
}

func TestContainerDelete(t *testing.T) { storetest.Each(t, testContainerDelete) }

func testContainerDelete(t *testing.T, e storetest.Engine) {
	d, ctx := newTestDB(t, e)
	c := d.account("acct")
	must(t, pairedDevice(t, c).Save(ctx))
	must(t, c.Delete(ctx))
	must(t, c.Delete(ctx)) // idempotent
	dev, err := c.GetDevice(ctx)
	must(t, err)
	if dev.ID != nil {
		t.Fatal("device survived Delete")
	}
}
