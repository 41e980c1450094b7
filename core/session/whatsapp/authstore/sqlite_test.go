package authstore

import (
	"testing"

	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

// What the embedded engine adds to sqlstore: the account ↔ device rows.

// TestSQLiteRepairReplacesDevice: an account that pairs again under a new
// device JID (its old device was not deleted) keeps only the new one.
func TestSQLiteRepairReplacesDevice(t *testing.T) {
	d, ctx := newTestDB(t, storetest.SQLite)
	acct := d.account("acct")
	old := pairedAs(t, acct, "111")
	oldJID := *old.ID
	fillEveryKind(t, d, acct)

	// A new pairing: a new device (as GetDevice gives an unpaired
	// account) under the same phone's next device number.
	fresh := d.sql.container.NewDevice()
	fresh.Container = acct
	jid := oldJID
	jid.Device++
	fresh.ID, fresh.Account = &jid, testAccountIdentity()
	must(t, fresh.Save(ctx))

	if n := d.stateCount(t, "nobody", oldJID); n != 0 {
		t.Fatalf("the replaced device left %d items", n)
	}
	got, err := acct.GetDevice(ctx)
	must(t, err)
	if got.ID == nil || *got.ID != *fresh.ID || *got.IdentityKey.Priv != *fresh.IdentityKey.Priv {
		t.Fatalf("account's device is %v, want the new pairing %v", got.ID, fresh.ID)
	}
}

// TestSQLiteDeviceOfAnotherAccount: a device JID one account holds cannot
// become another's, and the attempt changes neither (the device record and
// its account row commit together).
func TestSQLiteDeviceOfAnotherAccount(t *testing.T) {
	d, ctx := newTestDB(t, storetest.SQLite)
	alice := pairedAs(t, d.account("alice"), "111")
	alice.PushName = "Alice"
	must(t, alice.Save(ctx))

	bob, err := d.account("bob").GetDevice(ctx)
	must(t, err)
	bob.ID, bob.Account, bob.PushName = alice.ID, testAccountIdentity(), "Bob"
	if err := bob.Save(ctx); err == nil {
		t.Fatal("bob's device was saved under alice's JID")
	}
	got, err := d.account("alice").GetDevice(ctx)
	must(t, err)
	if got.PushName != "Alice" || *got.IdentityKey.Priv != *alice.IdentityKey.Priv {
		t.Fatalf("alice's device changed: push name %q", got.PushName)
	}
	if b, _ := d.account("bob").GetDevice(ctx); b.ID != nil {
		t.Fatalf("bob has device %s", b.ID)
	}
}

// TestSQLiteLostDevice: a row pointing at a device that is gone (deleted by
// hand) means unpaired; the row goes, and the next pairing is stored.
func TestSQLiteLostDevice(t *testing.T) {
	d, ctx := newTestDB(t, storetest.SQLite)
	acct := d.account("acct")
	dev := pairedAs(t, acct, "111")
	_, err := d.sql.db.RawDB.ExecContext(ctx, `DELETE FROM whatsmeow_device WHERE jid = ?`, dev.ID.String())
	must(t, err)

	got, err := acct.GetDevice(ctx)
	must(t, err)
	if got.ID != nil {
		t.Fatalf("lost device came back as %s", got.ID)
	}
	if n := d.stateCount(t, "acct", *dev.ID); n != 0 {
		t.Fatalf("%d items left of the lost device", n)
	}
	again := pairedAs(t, acct, "222")
	if got, _ := acct.GetDevice(ctx); got.ID == nil || *got.ID != *again.ID {
		t.Fatal("the new pairing was not stored")
	}
	// Deleting an unpaired account, and deleting twice, are no-ops.
	must(t, d.account("unpaired").Delete(ctx))
	must(t, acct.Delete(ctx))
	must(t, acct.Delete(ctx))
	if n := d.stateCount(t, "acct", types.NewJID("222", types.DefaultUserServer)); n != 0 {
		t.Fatalf("%d items left after Delete", n)
	}
}
