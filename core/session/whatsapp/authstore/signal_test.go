package authstore

import (
	"context"
	"testing"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestSignalRoundTrip runs a real libsignal session between two devices
// whose state lives in this store: Alice builds a session from Bob's
// pre-key bundle, Bob decrypts her pre-key message inside DoDecryptionTxn
// as whatsmeow does, they exchange replies, and then both are reloaded by
// new containers (another daemon taking over, or a restart) and keep
// talking.
func TestSignalRoundTrip(t *testing.T) { storetest.Each(t, testSignalRoundTrip) }

func testSignalRoundTrip(t *testing.T, e storetest.Engine) {
	d, ctx := newTestDB(t, e)
	signalRoundTrip(t, ctx, d)
}

// signalRoundTrip is TestSignalRoundTrip on d.
func signalRoundTrip(t *testing.T, ctx context.Context, d *testDB) {
	ser := store.SignalProtobufSerializer
	alice, bob := pairedAs(t, d.account("alice"), "111"), pairedAs(t, d.account("bob"), "222")
	aliceAddr := protocol.NewSignalAddress("111", 0)
	bobAddr := protocol.NewSignalAddress("222", 0)

	pks, err := bob.PreKeys.GetOrGenPreKeys(ctx, 1)
	must(t, err)
	must(t, bob.PreKeys.MarkPreKeysAsUploaded(ctx, pks[0].KeyID))
	bundle := prekey.NewBundle(bob.RegistrationID, 0,
		optional.NewOptionalUint32(pks[0].KeyID), bob.SignedPreKey.KeyID,
		ecc.NewDjbECPublicKey(*pks[0].Pub), ecc.NewDjbECPublicKey(*bob.SignedPreKey.Pub), *bob.SignedPreKey.Signature,
		identity.NewKey(ecc.NewDjbECPublicKey(*bob.IdentityKey.Pub)))

	aliceBuilder := session.NewBuilderFromSignal(alice, bobAddr, ser)
	must(t, aliceBuilder.ProcessBundle(ctx, bundle))
	aliceCipher := session.NewCipher(aliceBuilder, bobAddr)
	first, err := aliceCipher.Encrypt(ctx, []byte("hello bob"))
	must(t, err)
	if first.Type() != protocol.PREKEY_TYPE {
		t.Fatalf("first message type %d, want pre-key message", first.Type())
	}

	pkMsg, err := protocol.NewPreKeySignalMessageFromBytes(first.Serialize(), ser.PreKeySignalMessage, ser.SignalMessage)
	must(t, err)
	bobCipher := session.NewCipher(session.NewBuilderFromSignal(bob, aliceAddr, ser), aliceAddr)
	var plain []byte
	must(t, bob.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
		var err error
		if plain, err = bobCipher.DecryptMessage(ctx, pkMsg); err != nil {
			return err
		}
		return bob.EventBuffer.PutBufferedEvent(ctx, key32(1), plain, testTime)
	}))
	if string(plain) != "hello bob" {
		t.Fatalf("bob decrypted %q", plain)
	}
	if k, _ := bob.PreKeys.GetPreKey(ctx, pks[0].KeyID); k != nil {
		t.Fatal("the used one-time pre-key was not removed")
	}
	if has, _ := bob.Sessions.HasSession(ctx, aliceAddr.String()); !has {
		t.Fatal("bob has no stored session with alice")
	}

	exchange(t, ctx, bob, aliceAddr, alice, bobAddr, "hi alice")
	exchange(t, ctx, alice, bobAddr, bob, aliceAddr, "how are you")

	// Another daemon takes over both accounts.
	d2 := d.reopen(t)
	alice2, err := d2.account("alice").GetDevice(ctx)
	must(t, err)
	bob2, err := d2.account("bob").GetDevice(ctx)
	must(t, err)
	exchange(t, ctx, alice2, bobAddr, bob2, aliceAddr, "still here")
	exchange(t, ctx, bob2, aliceAddr, alice2, bobAddr, "me too")
}

// pairedAs stores a device of c as if it had paired as user.
func pairedAs(t *testing.T, c testAccount, user string) *store.Device {
	t.Helper()
	dev, err := c.GetDevice(t.Context())
	must(t, err)
	jid := types.NewJID(user, types.DefaultUserServer)
	dev.ID = &jid
	dev.Account = testAccountIdentity()
	must(t, dev.Save(t.Context()))
	return dev
}

// exchange sends text from one device to the other over their established
// session (a normal Signal message) and checks it decrypts.
func exchange(t *testing.T, ctx context.Context, from *store.Device, toAddr *protocol.SignalAddress, to *store.Device, fromAddr *protocol.SignalAddress, text string) {
	t.Helper()
	ser := store.SignalProtobufSerializer
	msg, err := session.NewCipher(session.NewBuilderFromSignal(from, toAddr, ser), toAddr).Encrypt(ctx, []byte(text))
	must(t, err)
	var plain []byte
	cipher := session.NewCipher(session.NewBuilderFromSignal(to, fromAddr, ser), fromAddr)
	switch msg.Type() {
	case protocol.WHISPER_TYPE:
		sm, err := protocol.NewSignalMessageFromBytes(msg.Serialize(), ser.SignalMessage)
		must(t, err)
		plain, err = cipher.Decrypt(ctx, sm)
		must(t, err)
	case protocol.PREKEY_TYPE:
		// The initiator keeps sending pre-key messages until it hears back.
		pm, err := protocol.NewPreKeySignalMessageFromBytes(msg.Serialize(), ser.PreKeySignalMessage, ser.SignalMessage)
		must(t, err)
		plain, err = cipher.DecryptMessage(ctx, pm)
		must(t, err)
	}
	if string(plain) != text {
		t.Fatalf("decrypted %q, want %q", plain, text)
	}
}
