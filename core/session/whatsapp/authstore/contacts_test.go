package authstore

import (
	"context"
	"testing"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestPushAndBusinessNames(t *testing.T) { storetest.Each(t, testPushAndBusinessNames) }

func testPushAndBusinessNames(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	alice := pnJID("111")

	type result struct {
		changed bool
		prev    string
	}
	steps := []struct {
		name     string
		put      func(types.JID, string) (bool, string, error)
		value    string
		want     result
		wantPush string
	}{
		{"push on unknown contact", s.putPush(ctx), "Alice", result{true, ""}, "Alice"},
		{"same push again", s.putPush(ctx), "Alice", result{false, ""}, "Alice"},
		{"push changes", s.putPush(ctx), "Ally", result{true, "Alice"}, "Ally"},
		{"push cleared", s.putPush(ctx), "", result{true, "Ally"}, ""},
		{"push cleared again", s.putPush(ctx), "", result{false, ""}, ""},
		{"business on contact without one", s.putBusiness(ctx), "Acme", result{true, ""}, ""},
		{"business same", s.putBusiness(ctx), "Acme", result{false, ""}, ""},
		{"business changes", s.putBusiness(ctx), "Acme Ltd", result{true, "Acme"}, ""},
	}
	for _, st := range steps {
		changed, prev, err := st.put(alice, st.value)
		must(t, err)
		if (result{changed, prev}) != st.want {
			t.Errorf("%s: got (%v, %q), want (%v, %q)", st.name, changed, prev, st.want.changed, st.want.prev)
		}
		info, err := s.GetContact(ctx, alice)
		must(t, err)
		if info.PushName != st.wantPush {
			t.Errorf("%s: push name %q, want %q", st.name, info.PushName, st.wantPush)
		}
	}
	info, _ := s.GetContact(ctx, alice)
	if !info.Found || info.BusinessName != "Acme Ltd" {
		t.Fatalf("contact = %+v", info)
	}

	// An empty name for an unknown contact is no change and creates nothing.
	changed, prev, err := s.PutPushName(ctx, pnJID("999"), "")
	must(t, err)
	if changed || prev != "" {
		t.Fatalf("empty push on unknown contact = (%v, %q)", changed, prev)
	}
	if info, _ := s.GetContact(ctx, pnJID("999")); info.Found {
		t.Fatal("empty push name created a contact")
	}
	// A contact known only by its address-book name gets a first push name.
	must(t, s.PutContactName(ctx, pnJID("222"), "Bob", "Bob Builder"))
	if changed, prev, _ := s.PutPushName(ctx, pnJID("222"), "bobby"); !changed || prev != "" {
		t.Fatalf("first push on named contact = (%v, %q)", changed, prev)
	}
}

func (s *testStore) putPush(ctx context.Context) func(types.JID, string) (bool, string, error) {
	return func(j types.JID, v string) (bool, string, error) { return s.PutPushName(ctx, j, v) }
}

func (s *testStore) putBusiness(ctx context.Context) func(types.JID, string) (bool, string, error) {
	return func(j types.JID, v string) (bool, string, error) { return s.PutBusinessName(ctx, j, v) }
}

func TestContacts(t *testing.T) { storetest.Each(t, testContacts) }

func testContacts(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	if info, err := s.GetContact(ctx, pnJID("111")); err != nil || info != (types.ContactInfo{}) {
		t.Fatalf("unknown contact = %+v, %v", info, err)
	}
	if all, err := s.GetAllContacts(ctx); err != nil || len(all) != 0 {
		t.Fatalf("GetAllContacts of none = %v, %v", all, err)
	}

	must(t, s.PutContactName(ctx, pnJID("111"), "Alice", "Alice Smith"))
	_, _, err := s.PutPushName(ctx, pnJID("111"), "ally")
	must(t, err)
	must(t, s.PutContactName(ctx, pnJID("111"), "Alicia", "Alicia Smith")) // overwrite keeps the push name

	must(t, s.PutAllContactNames(ctx, []store.ContactEntry{
		{JID: pnJID("222"), FirstName: "Bob", FullName: "Bob B"},
		{JID: pnJID("333"), FirstName: "Carol", FullName: "Carol C"},
		{JID: pnJID("222"), FirstName: "Robert", FullName: "Robert B"}, // a duplicate: see below
	}))
	must(t, s.PutAllContactNames(ctx, nil))
	must(t, s.PutManyRedactedPhones(ctx, []store.RedactedPhoneEntry{
		{JID: lidJID("555"), RedactedPhone: "+1 ••• 11"},
		{JID: pnJID("333"), RedactedPhone: "+1 ••• 33"},
	}))
	must(t, s.PutManyRedactedPhones(ctx, nil))

	want := map[types.JID]types.ContactInfo{
		pnJID("111"):  {Found: true, FirstName: "Alicia", FullName: "Alicia Smith", PushName: "ally"},
		pnJID("222"):  {Found: true, FirstName: "Robert", FullName: "Robert B"}, // the later duplicate wins…
		pnJID("333"):  {Found: true, FirstName: "Carol", FullName: "Carol C", RedactedPhone: "+1 ••• 33"},
		lidJID("555"): {Found: true, RedactedPhone: "+1 ••• 11"},
	}
	if e == storetest.SQLite {
		// …but sqlstore keeps the first (whatsmeow never sends both).
		want[pnJID("222")] = types.ContactInfo{Found: true, FirstName: "Bob", FullName: "Bob B"}
	}
	for jid, w := range want {
		got, err := s.GetContact(ctx, jid)
		must(t, err)
		if got != w {
			t.Errorf("GetContact(%s) = %+v, want %+v", jid, got, w)
		}
	}
	all, err := s.GetAllContacts(ctx)
	must(t, err)
	if len(all) != len(want) {
		t.Fatalf("GetAllContacts has %d contacts, want %d", len(all), len(want))
	}
	for jid, w := range want {
		if all[jid] != w {
			t.Errorf("GetAllContacts[%s] = %+v, want %+v", jid, all[jid], w)
		}
	}
}
