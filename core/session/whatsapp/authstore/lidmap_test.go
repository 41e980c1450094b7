package authstore

import (
	"fmt"
	"testing"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestLIDMap(t *testing.T) { storetest.Each(t, testLIDMap) }

func testLIDMap(t *testing.T, e storetest.Engine) {
	d, ctx := newTestDB(t, e)
	m := d.lids()
	// Another account's view (MongoDB), or the map after a restart (SQLite,
	// whose map caches).
	other := d.reopen(t).lids()

	if got, err := m.GetLIDForPN(ctx, pnJID("111")); err != nil || !got.IsEmpty() {
		t.Fatalf("unknown PN = %s, %v", got, err)
	}
	if got, err := m.GetPNForLID(ctx, lidJID("555")); err != nil || !got.IsEmpty() {
		t.Fatalf("unknown LID = %s, %v", got, err)
	}
	if _, err := m.GetLIDForPN(ctx, lidJID("555")); err == nil {
		t.Fatal("GetLIDForPN accepted a LID")
	}
	if _, err := m.GetPNForLID(ctx, pnJID("111")); err == nil {
		t.Fatal("GetPNForLID accepted a PN")
	}
	if err := m.PutLIDMapping(ctx, pnJID("111"), lidJID("555")); err == nil {
		t.Fatal("PutLIDMapping accepted swapped JIDs")
	}

	must(t, m.PutLIDMapping(ctx, lidJID("555"), pnJID("111")))
	must(t, m.PutLIDMapping(ctx, lidJID("555"), pnJID("111"))) // again: no-op

	// Both directions, with the device kept, seen by another account too.
	pnDev := types.JID{User: "111", Device: 4, Server: types.DefaultUserServer}
	lidDev := types.JID{User: "555", Device: 4, Server: types.HiddenUserServer}
	if got, _ := other.GetLIDForPN(ctx, pnDev); got != lidDev {
		t.Fatalf("GetLIDForPN(%s) = %s, want %s", pnDev, got, lidDev)
	}
	if got, _ := other.GetPNForLID(ctx, lidDev); got != pnDev {
		t.Fatalf("GetPNForLID(%s) = %s, want %s", lidDev, got, pnDev)
	}

	// The phone number moves to a new LID: the old LID forgets it. (The
	// stored map does; sqlstore's in-memory cache keeps answering the old
	// reverse mapping until a restart, hence the fresh map.)
	must(t, m.PutLIDMapping(ctx, lidJID("556"), pnJID("111")))
	assertMapping(t, m, "556", "111")
	if got, _ := d.reopen(t).lids().GetPNForLID(ctx, lidJID("555")); !got.IsEmpty() {
		t.Fatalf("old LID 555 still maps to %s", got)
	}
	// The LID moves to a new phone number: the old number forgets it.
	must(t, m.PutLIDMapping(ctx, lidJID("556"), pnJID("112")))
	assertMapping(t, m, "556", "112")
	if got, _ := d.reopen(t).lids().GetLIDForPN(ctx, pnJID("111")); !got.IsEmpty() {
		t.Fatalf("old PN 111 still maps to %s", got)
	}
}

func assertMapping(t *testing.T, m store.LIDStore, lid, pn string) {
	t.Helper()
	ctx := t.Context()
	if got, err := m.GetLIDForPN(ctx, pnJID(pn)); err != nil || got != lidJID(lid) {
		t.Errorf("GetLIDForPN(%s) = %s, %v; want %s", pn, got, err, lid)
	}
	if got, err := m.GetPNForLID(ctx, lidJID(lid)); err != nil || got != pnJID(pn) {
		t.Errorf("GetPNForLID(%s) = %s, %v; want %s", lid, got, err, pn)
	}
}

func TestLIDMapMany(t *testing.T) { storetest.Each(t, testLIDMapMany) }

func testLIDMapMany(t *testing.T, e storetest.Engine) {
	d, ctx := newTestDB(t, e)
	m := d.lids()
	must(t, m.PutLIDMapping(ctx, lidJID("900"), pnJID("300")))

	must(t, m.PutManyLIDMappings(ctx, []store.LIDMapping{
		{LID: lidJID("500"), PN: pnJID("100")},
		{LID: lidJID("501"), PN: pnJID("101")},
		{LID: pnJID("502"), PN: pnJID("102")},   // invalid: skipped
		{LID: lidJID("503"), PN: lidJID("103")}, // invalid: skipped
		{LID: lidJID("500"), PN: pnJID("100")},  // duplicate
		{LID: lidJID("510"), PN: pnJID("101")},  // later entry for 101 wins
		{LID: lidJID("900"), PN: pnJID("301")},  // moves an existing LID
	}))
	must(t, m.PutManyLIDMappings(ctx, nil))
	assertMapping(t, m, "500", "100")
	assertMapping(t, m, "510", "101")
	assertMapping(t, m, "900", "301")
	stored := d.reopen(t).lids() // without sqlstore's cache, as in TestLIDMap
	for _, lid := range []string{"501", "502", "503"} {
		if got, _ := stored.GetPNForLID(ctx, lidJID(lid)); !got.IsEmpty() {
			t.Errorf("LID %s maps to %s, want nothing", lid, got)
		}
	}
	if got, _ := stored.GetLIDForPN(ctx, pnJID("300")); !got.IsEmpty() {
		t.Errorf("PN 300 still maps to %s after its LID moved", got)
	}

	dev := types.JID{User: "100", Device: 9, Server: types.DefaultUserServer}
	got, err := m.GetManyLIDsForPNs(ctx, []types.JID{pnJID("100"), dev, pnJID("101"), pnJID("199"), lidJID("500")})
	must(t, err)
	want := map[types.JID]types.JID{
		pnJID("100"): lidJID("500"),
		dev:          {User: "500", Device: 9, Server: types.HiddenUserServer},
		pnJID("101"): lidJID("510"),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GetManyLIDsForPNs = %v, want %v", got, want)
	}
	if got, err := m.GetManyLIDsForPNs(ctx, nil); err != nil || got != nil {
		t.Fatalf("GetManyLIDsForPNs(nil) = %v, %v", got, err)
	}

	// A history sync's worth in one call.
	bulk := make([]store.LIDMapping, 1000)
	pns := make([]types.JID, len(bulk))
	for i := range bulk {
		pns[i] = pnJID(fmt.Sprint(20000 + i))
		bulk[i] = store.LIDMapping{LID: lidJID(fmt.Sprint(80000 + i)), PN: pns[i]}
	}
	must(t, m.PutManyLIDMappings(ctx, bulk))
	all, err := m.GetManyLIDsForPNs(ctx, pns)
	must(t, err)
	if len(all) != len(bulk) || all[pns[999]] != lidJID("80999") {
		t.Fatalf("bulk: %d mappings, last %s", len(all), all[pns[999]])
	}
}
