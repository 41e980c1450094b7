package authstore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mau.fi/libsignal/protocol"

	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// rawAuth is every byte the engine holds.
func (d *testDB) rawAuth(t *testing.T) []byte {
	t.Helper()
	if d.e == storetest.MongoDB {
		return sealtest.MongoBytes(t, d.mongo)
	}
	if err := d.file.Vacuum(t.Context()); err != nil {
		t.Fatal(err)
	}
	return sealtest.SQLiteBytes(t, d.file.Path())
}

func (d *testDB) copier() AccountEntries {
	if d.e == storetest.MongoDB {
		return NewMongoCopy(d.mongo)
	}
	return d.sql.Copy()
}

// TestSealedAuthState: Signal sessions and the buffered plaintext of
// decrypted messages, written in the clear before encryption was on, still
// work once it is on; new values are sealed; ReencryptAccounts moves
// everything to a new key (the old one can go, Signal keeps working); and
// without the key reads fail naming it.
func TestSealedAuthState(t *testing.T) { storetest.Each(t, testSealedAuthState) }

func testSealedAuthState(t *testing.T, e storetest.Engine) {
	d, ctx := newTestDB(t, e)
	aliceAddr, bobAddr := protocol.NewSignalAddress("111", 0), protocol.NewSignalAddress("222", 0)
	signalRoundTrip(t, ctx, d) // bob buffers "hello bob"
	sealtest.HasPlaintext(t, "before encryption", d.rawAuth(t), "hello bob")

	k1, k2 := sealtest.Key(t, "k1"), sealtest.Key(t, "k2")
	d.keys = sealtest.Ring(t, "", k1)
	on := d.reopen(t)
	alice, err := on.account("alice").GetDevice(ctx)
	must(t, err)
	bob, err := on.account("bob").GetDevice(ctx)
	must(t, err)
	exchange(t, ctx, alice, bobAddr, bob, aliceAddr, "sealed now")
	must(t, bob.EventBuffer.PutBufferedEvent(ctx, key32(2), []byte("BUFMARK-k1"), testTime))
	sealtest.NoPlaintext(t, "after a sealed write", d.rawAuth(t), "BUFMARK-k1")
	// Beneath the sealing the session is sealed under k1.
	stored, err := bob.Identities.(interface {
		GetSession(ctx context.Context, address string) ([]byte, error)
	}).GetSession(ctx, aliceAddr.String())
	must(t, err)
	if id, ok := sealing.KeyOf(stored); !ok || id != "k1" {
		t.Fatalf("stored session is sealed %v under %q", ok, id)
	}

	n, err := ReencryptAccounts(ctx, d.copier(), sealtest.Ring(t, "k2", k1, k2))
	if err != nil || n != 2 {
		t.Fatalf("ReencryptAccounts = %d, %v; want 2", n, err)
	}
	sealtest.NoPlaintext(t, "after reencrypt", d.rawAuth(t), "hello bob", "BUFMARK-k1")

	d.keys = sealtest.Ring(t, "", k2)
	only2 := d.reopen(t)
	alice, err = only2.account("alice").GetDevice(ctx)
	must(t, err)
	bob, err = only2.account("bob").GetDevice(ctx)
	must(t, err)
	exchange(t, ctx, bob, aliceAddr, alice, bobAddr, "k1 is gone")
	if ev, err := bob.EventBuffer.GetBufferedEvent(ctx, key32(2)); err != nil || ev == nil || string(ev.Plaintext) != "BUFMARK-k1" {
		t.Fatalf("buffered event with k2 alone: %+v, %v", ev, err)
	}

	// Without the key the device itself does not load: its private keys
	// are sealed too.
	d.keys = nil
	off := d.reopen(t)
	if _, err := off.account("bob").GetDevice(ctx); !errors.Is(err, sealing.ErrUnknownKey) || !strings.Contains(err.Error(), `"k2"`) {
		t.Fatalf("device without the key: %v", err)
	}
	if _, err := bob.Sessions.(*sealedSessions).SessionStore.GetSession(ctx, aliceAddr.String()); err != nil {
		t.Fatal(err)
	}
	SealDevice(bob, nil)
	if _, err := bob.Sessions.GetSession(ctx, aliceAddr.String()); !errors.Is(err, sealing.ErrUnknownKey) {
		t.Fatalf("session without the key: %v", err)
	}
}

// unsealed is the store beneath a sealing wrapper of SealDevice.
func unsealed(x any) any {
	switch s := x.(type) {
	case *sealedSessions:
		return s.SessionStore
	case *sealedSenderKeys:
		return s.SenderKeyStore
	case *sealedAppStateKeys:
		return s.AppStateSyncKeyStore
	case *sealedMsgSecrets:
		return s.MsgSecretStore
	case *sealedEventBuffer:
		return s.EventBuffer
	}
	return x
}
