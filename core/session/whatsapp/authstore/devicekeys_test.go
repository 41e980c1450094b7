package authstore

import (
	"bytes"
	"fmt"
	"testing"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/util/keys"

	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// secrets are a paired device's private keys and its pre-keys, as
// whatsmeow holds them.
type secrets struct {
	noise, identity, signedPre [32]byte
	adv                        []byte
	preKeys                    map[uint32][32]byte
}

// pairWithPreKeys pairs accountID's device as whatsmeow does (Device.Save),
// then has it generate pre-keys as after pairing (a batch, some marked
// uploaded, and one for a retry receipt); it returns the device's secrets.
func pairWithPreKeys(t *testing.T, d *testDB, accountID, user string) secrets {
	t.Helper()
	ctx := t.Context()
	dev := pairedAs(t, d.account(accountID), user)
	batch, err := dev.PreKeys.GetOrGenPreKeys(ctx, 8)
	must(t, err)
	must(t, dev.PreKeys.MarkPreKeysAsUploaded(ctx, batch[4].KeyID))
	one, err := dev.PreKeys.GenOnePreKey(ctx)
	must(t, err)
	s := secrets{noise: *dev.NoiseKey.Priv, identity: *dev.IdentityKey.Priv, signedPre: *dev.SignedPreKey.Priv,
		adv: bytes.Clone(dev.AdvSecretKey), preKeys: map[uint32][32]byte{}}
	for _, k := range append(batch, one) {
		s.preKeys[k.KeyID] = *k.Priv
	}
	return s
}

// markers are the secrets as strings for sealtest's raw-byte checks.
func (s secrets) markers() []string {
	out := []string{string(s.noise[:]), string(s.identity[:]), string(s.signedPre[:]), string(s.adv)}
	for _, k := range s.preKeys {
		out = append(out, string(k[:]))
	}
	return out
}

// check fails unless accountID's device, read afresh, has exactly these
// secrets (public keys derived to match) and its pre-keys read back.
func (s secrets) check(t *testing.T, d *testDB, accountID, when string) {
	t.Helper()
	ctx := t.Context()
	dev, err := d.account(accountID).GetDevice(ctx)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	if dev.ID == nil {
		t.Fatalf("%s: the device is gone", when)
	}
	same := func(what string, got *keys.KeyPair, want [32]byte) {
		if *got.Priv != want || *got.Pub != *keys.NewKeyPairFromPrivateKey(want).Pub {
			t.Errorf("%s: %s differs", when, what)
		}
	}
	same("noise key", dev.NoiseKey, s.noise)
	same("identity key", dev.IdentityKey, s.identity)
	same("signed pre-key", &dev.SignedPreKey.KeyPair, s.signedPre)
	if !bytes.Equal(dev.AdvSecretKey, s.adv) {
		t.Errorf("%s: adv secret differs", when)
	}
	for id, want := range s.preKeys {
		k, err := dev.PreKeys.GetPreKey(ctx, id)
		if err != nil || k == nil || *k.Priv != want || *k.Pub != *keys.NewKeyPairFromPrivateKey(want).Pub {
			t.Errorf("%s: pre-key %d reads %v, %v", when, id, k, err)
		}
	}
	if n, err := dev.PreKeys.UploadedPreKeyCount(ctx); err != nil || n != 6 {
		t.Errorf("%s: %d uploaded pre-keys, %v; want 6", when, n, err)
	}
}

// TestDeviceKeysSealedAtRest: with encryption on, a paired device's
// private keys and its pre-keys are nowhere in the raw database (file or
// collections), yet the device stored, closed and reopened has them all;
// with encryption off the same check finds them (so it can see them).
func TestDeviceKeysSealedAtRest(t *testing.T) { storetest.Each(t, testDeviceKeysSealedAtRest) }

func testDeviceKeysSealedAtRest(t *testing.T, e storetest.Engine) {
	for _, tc := range []struct {
		name string
		on   bool
	}{{"off", false}, {"on", true}} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newTestDB(t, e)
			if tc.on {
				d.keys = sealtest.Ring(t, "", sealtest.Key(t, "k1"))
			}
			s := pairWithPreKeys(t, d, "acct", "15550001111")
			raw := d.rawAuth(t)
			if tc.on {
				sealtest.NoPlaintext(t, "sealed auth state", raw, s.markers()...)
			} else {
				sealtest.HasPlaintext(t, "auth state in the clear", raw, s.markers()...)
			}
			s.check(t, d.reopen(t), "acct", "reopened")
		})
	}
}

// TestDeviceKeysRotation: keys sealed under k1 read once k2 is active (k1
// still configured); ReencryptAccounts moves them, and every pre-key, to
// k2, after which k1 can go.
func TestDeviceKeysRotation(t *testing.T) { storetest.Each(t, testDeviceKeysRotation) }

func testDeviceKeysRotation(t *testing.T, e storetest.Engine) {
	d, ctx := newTestDB(t, e)
	k1, k2 := sealtest.Key(t, "k1"), sealtest.Key(t, "k2")
	d.keys = sealtest.Ring(t, "", k1)
	s := pairWithPreKeys(t, d, "acct", "15550001111")
	storedUnder(t, d, "k1")

	d.keys = sealtest.Ring(t, "k2", k1, k2)
	both := d.reopen(t)
	s.check(t, both, "acct", "k2 active, k1 kept")
	n, err := ReencryptAccounts(ctx, both.copier(), d.keys)
	if err != nil || n != 1 {
		t.Fatalf("ReencryptAccounts = %d, %v; want 1", n, err)
	}
	storedUnder(t, both, "k2")
	if n, err := ReencryptAccounts(ctx, both.copier(), d.keys); err != nil || n != 0 {
		t.Fatalf("second ReencryptAccounts = %d, %v; want 0", n, err)
	}
	d.keys = sealtest.Ring(t, "", k2)
	s.check(t, d.reopen(t), "acct", "k2 alone")
}

// storedUnder fails unless every stored key of every account is sealed
// under the key named id.
func storedUnder(t *testing.T, d *testDB, id string) {
	t.Helper()
	var accounts int
	must(t, d.copier().Export(t.Context(), 1, func(as []*Account) error {
		for _, a := range as {
			accounts++
			k := a.DeviceKeys
			vals := map[string][]byte{"noise": k.Noise, "identity": k.Identity, "signed pre-key": k.SignedPreKey, "adv": k.AdvSecret}
			for _, p := range a.PreKeys {
				vals[fmt.Sprintf("pre-key %d", p.ID)] = p.Key
			}
			if len(a.PreKeys) != 9 {
				t.Errorf("%s: %d pre-keys exported, want 9", a.AccountID, len(a.PreKeys))
			}
			for what, b := range vals {
				if got, sealed := sealing.KeyOf(b); !sealed || got != id {
					t.Errorf("%s: %s stored sealed %v under %q, want %q", a.AccountID, what, sealed, got, id)
				}
			}
		}
		return nil
	}))
	if accounts == 0 {
		t.Fatal("no account exported")
	}
}

// TestReencryptSealsPlaintextKeys: keys stored before encryption was on
// are sealed by ReencryptAccounts (the README's "one config change plus a
// command") and the device loads with them.
func TestReencryptSealsPlaintextKeys(t *testing.T) {
	storetest.Each(t, testReencryptSealsPlaintextKeys)
}

func testReencryptSealsPlaintextKeys(t *testing.T, e storetest.Engine) {
	d, ctx := newTestDB(t, e)
	s := pairWithPreKeys(t, d, "acct", "15550001111")
	sealtest.HasPlaintext(t, "before encryption", d.rawAuth(t), s.markers()...)

	d.keys = sealtest.Ring(t, "", sealtest.Key(t, "k1"))
	on := d.reopen(t)
	// Readable before the command runs.
	s.check(t, on, "acct", "encryption on, not re-encrypted")
	n, err := ReencryptAccounts(ctx, on.copier(), d.keys)
	if err != nil || n != 1 {
		t.Fatalf("ReencryptAccounts = %d, %v; want 1", n, err)
	}
	sealtest.NoPlaintext(t, "after reencrypt", d.rawAuth(t), s.markers()...)
	storedUnder(t, on, "k1")
	s.check(t, d.reopen(t), "acct", "after reencrypt")
}

// TestSQLiteKeysOfAnOlderBuild: a database whose device keys and pre-keys
// an older build left in sqlstore's own tables keeps working: opening it
// moves them to Wildcat's tables (zeros stay in whatsmeow_device,
// whatsmeow_pre_keys empties), the device loads with its keys, and
// re-encryption then seals them.
func TestSQLiteKeysOfAnOlderBuild(t *testing.T) {
	d, ctx := newTestDB(t, storetest.SQLite)
	// As an older build stored a pairing: through sqlstore alone.
	dev := d.sql.container.NewDevice()
	jid := pnJID("15550002222")
	jid.Device = 3
	dev.ID, dev.Account = &jid, testAccountIdentity()
	must(t, d.sql.container.PutDevice(ctx, dev))
	batch, err := dev.PreKeys.GetOrGenPreKeys(ctx, 8)
	must(t, err)
	must(t, dev.PreKeys.MarkPreKeysAsUploaded(ctx, batch[4].KeyID))
	one, err := dev.PreKeys.GenOnePreKey(ctx)
	must(t, err)
	_, err = d.sql.db.RawDB.ExecContext(ctx, `INSERT INTO whatsapp_devices (account_id, jid) VALUES ('old', ?)`, jid.String())
	must(t, err)
	s := secrets{noise: *dev.NoiseKey.Priv, identity: *dev.IdentityKey.Priv, signedPre: *dev.SignedPreKey.Priv,
		adv: bytes.Clone(dev.AdvSecretKey), preKeys: map[uint32][32]byte{}}
	for _, k := range append(batch, one) {
		s.preKeys[k.KeyID] = *k.Priv
	}

	opened := d.reopen(t)
	s.check(t, opened, "old", "after the move")
	var keysLeft, preKeysLeft int
	must(t, d.file.Reader().QueryRowContext(ctx, `SELECT count(*) FROM whatsmeow_device WHERE NOT (`+zeroKeys+`)`).Scan(&keysLeft))
	must(t, d.file.Reader().QueryRowContext(ctx, `SELECT count(*) FROM whatsmeow_pre_keys`).Scan(&preKeysLeft))
	if keysLeft != 0 || preKeysLeft != 0 {
		t.Fatalf("sqlstore's tables keep %d devices' keys and %d pre-keys", keysLeft, preKeysLeft)
	}
	// Opening again moves nothing twice.
	s.check(t, d.reopen(t), "old", "opened again")

	d.keys = sealtest.Ring(t, "", sealtest.Key(t, "k1"))
	on := d.reopen(t)
	n, err := ReencryptAccounts(ctx, on.copier(), d.keys)
	if err != nil || n != 1 {
		t.Fatalf("ReencryptAccounts = %d, %v; want 1", n, err)
	}
	sealtest.NoPlaintext(t, "after reencrypt", d.rawAuth(t), s.markers()...)
	s.check(t, d.reopen(t), "old", "after reencrypt")
}

// TestStoredKeyForms: a stored key reads back whatever form it was
// written in: as it is (32 bytes, an older build or encryption off),
// escaped (encryption off, a key that begins like a sealed value) or
// sealed; a sealed key cannot pass for another kind of key.
func TestStoredKeyForms(t *testing.T) {
	ring := sealtest.Ring(t, "", sealtest.Key(t, "k1"))
	marked := [32]byte{0, 'w', 'c', 1, 5}
	for _, tc := range []struct {
		name string
		keys *sealing.Keyring
		key  [32]byte
	}{
		{"clear", nil, key32(7)},
		{"clear, begins like a sealed value", nil, marked},
		{"sealed", ring, key32(7)},
		{"sealed, begins like a sealed value", ring, marked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pk := &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey(tc.key), KeyID: 42}
			b, err := sealPreKey(tc.keys, pk)
			must(t, err)
			got, err := openPreKey(tc.keys, 42, b)
			if err != nil || *got.Priv != tc.key || got.KeyID != 42 {
				t.Fatalf("read back %v, %v", got, err)
			}
			if staleKey(ring, b) == (tc.keys == ring) {
				t.Fatalf("stale under the ring: %v", staleKey(ring, b))
			}
			if tc.keys != nil {
				if _, err := openPreKey(tc.keys, 43, b); err == nil {
					t.Fatal("pre-key 42 read as pre-key 43")
				}
				dev := &store.Device{}
				if err := openDeviceKeys(tc.keys, DeviceKeys{Noise: b, Identity: b, SignedPreKey: b, AdvSecret: b}, dev); err == nil {
					t.Fatal("a pre-key read as the device's keys")
				}
			}
		})
	}
}
