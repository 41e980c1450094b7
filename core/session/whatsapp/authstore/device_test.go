package authstore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/uuid"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestGetDeviceFresh(t *testing.T) {
	c, ctx := newTestContainer(t, storetest.NewDatabase(t), "acct")
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
	assertWired(t, c, dev)

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

func assertWired(t *testing.T, c *Container, dev *store.Device) {
	t.Helper()
	s := c.Store()
	if !dev.Initialized || dev.Container != c || dev.LIDs != c.LIDs() || dev.Log == nil {
		t.Fatal("device not initialised with this container")
	}
	for name, got := range map[string]any{
		"Identities": dev.Identities, "Sessions": dev.Sessions, "PreKeys": dev.PreKeys,
		"SenderKeys": dev.SenderKeys, "AppStateKeys": dev.AppStateKeys, "AppState": dev.AppState,
		"Contacts": dev.Contacts, "ChatSettings": dev.ChatSettings, "MsgSecrets": dev.MsgSecrets,
		"PrivacyTokens": dev.PrivacyTokens, "EventBuffer": dev.EventBuffer,
	} {
		if got != any(s) {
			t.Errorf("device.%s is %T, not this store", name, got)
		}
	}
}

func pairedDevice(t *testing.T, c *Container) *store.Device {
	t.Helper()
	dev, err := c.GetDevice(t.Context())
	must(t, err)
	jid := types.JID{User: "15550001111", Device: 7, Server: types.DefaultUserServer}
	dev.ID = &jid
	dev.LID = types.JID{User: "99887766", Device: 7, Server: types.HiddenUserServer}
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             []byte("details"),
		AccountSignatureKey: bytes.Repeat([]byte{1}, 32),
		AccountSignature:    bytes.Repeat([]byte{2}, 64),
		DeviceSignature:     bytes.Repeat([]byte{3}, 64),
	}
	dev.Platform = "android"
	dev.BusinessName = "Acme"
	dev.PushName = "Alice"
	dev.LIDMigrationTimestamp = 1700000000
	dev.FacebookUUID = uuid.MustParse("7c9e6679-7425-40de-944b-e07fc1f90ae7")
	return dev
}

func TestDeviceRoundTrip(t *testing.T) {
	db := storetest.NewDatabase(t)
	c, ctx := newTestContainer(t, db, "acct")
	dev := pairedDevice(t, c)
	must(t, dev.Save(ctx))

	// A new container (another daemon) reads every field back.
	c2, _ := newTestContainer(t, db, "acct")
	got, err := c2.GetDevice(ctx)
	must(t, err)
	assertWired(t, c2, got)
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

	// Overwrite: a changed name and a cleared LID and UUID are stored.
	got.PushName = "Alice B"
	got.LID = types.EmptyJID
	got.FacebookUUID = uuid.Nil
	must(t, got.Save(ctx))
	again, err := c.GetDevice(ctx)
	must(t, err)
	if again.PushName != "Alice B" || !again.LID.IsEmpty() || again.FacebookUUID != uuid.Nil {
		t.Fatalf("after overwrite: push name %q, LID %s, uuid %s", again.PushName, again.LID, again.FacebookUUID)
	}
	if *again.IdentityKey.Priv != *dev.IdentityKey.Priv {
		t.Fatal("identity key changed on overwrite")
	}
}

// TestDeleteDevice checks that deleting removes every kind of state of the
// account, leaves other accounts and the shared LID map alone, and that
// the next GetDevice starts afresh.
func TestDeleteDevice(t *testing.T) {
	db := storetest.NewDatabase(t)
	a, ctx := newTestContainer(t, db, "alice")
	b, _ := newTestContainer(t, db, "bob")
	for _, c := range []*Container{a, b} {
		dev := pairedDevice(t, c)
		must(t, dev.Save(ctx))
		fillEveryKind(t, c)
	}
	must(t, a.LIDs().PutLIDMapping(ctx, lidJID("555"), pnJID("111")))

	devA, err := a.GetDevice(ctx)
	must(t, err)
	must(t, devA.Delete(ctx))
	if devA.ID != nil {
		t.Fatal("Device.Delete left the ID")
	}
	if n, err := a.coll.CountDocuments(ctx, map[string]any{}); err != nil || n != 0 {
		t.Fatalf("alice has %d documents left (%v)", n, err)
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
	if sess, _ := b.Store().GetSession(ctx, "1:0"); string(sess) != "s" {
		t.Fatalf("bob's session = %q", sess)
	}
	if n := countKind(t, ctx, b.Store(), kindPreKey); n != 2 {
		t.Fatalf("bob has %d pre-keys, want 2", n)
	}
	if lid, _ := b.LIDs().GetLIDForPN(ctx, pnJID("111")); lid.User != "555" {
		t.Fatal("the shared LID map lost a mapping")
	}
}

// fillEveryKind writes one document of every kind through the public API.
func fillEveryKind(t *testing.T, c *Container) {
	t.Helper()
	ctx, s := t.Context(), c.Store()
	must(t, s.PutIdentity(ctx, "1:0", key32(1)))
	must(t, s.PutSession(ctx, "1:0", []byte("s")))
	_, err := s.GetOrGenPreKeys(ctx, 2)
	must(t, err)
	must(t, s.PutSenderKey(ctx, "g@g.us", "1:0", []byte("sk")))
	must(t, s.PutAppStateSyncKey(ctx, []byte{1}, store.AppStateSyncKey{Data: []byte("d"), Timestamp: 1}))
	must(t, s.PutAppStateVersion(ctx, "regular", 1, [128]byte{1}))
	must(t, s.PutAppStateMutationMACs(ctx, "regular", 1, []store.AppStateMutationMAC{{IndexMAC: []byte{1}, ValueMAC: []byte{2}}}))
	must(t, s.PutContactName(ctx, pnJID("1"), "A", "A B"))
	must(t, s.PutPinned(ctx, pnJID("1"), true))
	must(t, s.PutMessageSecret(ctx, pnJID("1"), pnJID("1"), "M", []byte("x")))
	must(t, s.PutPrivacyTokens(ctx, store.PrivacyToken{User: pnJID("1"), Token: []byte("t")}))
	must(t, s.PutBufferedEvent(ctx, key32(1), []byte("p"), testTime))
}

func TestGetDeviceClearsLeftovers(t *testing.T) {
	c, ctx := newTestContainer(t, storetest.NewDatabase(t), "acct")
	// State without a device record: late writes racing a deletion.
	must(t, c.Store().PutSession(ctx, "1:0", []byte("stale")))
	_, err := c.GetDevice(ctx)
	must(t, err)
	if sess, _ := c.Store().GetSession(ctx, "1:0"); sess != nil {
		t.Fatal("leftover session survived GetDevice of a new device")
	}
}

func TestContainerDelete(t *testing.T) {
	c, ctx := newTestContainer(t, storetest.NewDatabase(t), "acct")
	must(t, pairedDevice(t, c).Save(ctx))
	must(t, c.Delete(ctx))
	must(t, c.Delete(ctx)) // idempotent
	dev, err := c.GetDevice(ctx)
	must(t, err)
	if dev.ID != nil {
		t.Fatal("device survived Delete")
	}
}
