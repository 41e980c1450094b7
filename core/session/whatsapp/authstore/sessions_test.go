package authstore

import (
	"maps"
	"slices"
	"testing"

	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestSessions(t *testing.T) { storetest.Each(t, testSessions) }

func testSessions(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)

	got, err := s.GetSession(ctx, "111:0")
	must(t, err)
	if got != nil {
		t.Fatalf("missing session = %q, want nil", got)
	}
	has, err := s.HasSession(ctx, "111:0")
	must(t, err)
	if has {
		t.Fatal("HasSession of a missing session")
	}

	must(t, s.PutSession(ctx, "111:0", []byte("a")))
	must(t, s.PutSession(ctx, "111:0", []byte("b"))) // overwrite
	if got, _ := s.GetSession(ctx, "111:0"); string(got) != "b" {
		t.Fatalf("session = %q, want b", got)
	}
	if has, _ := s.HasSession(ctx, "111:0"); !has {
		t.Fatal("HasSession = false after put")
	}

	must(t, s.PutManySessions(ctx, map[string][]byte{"111:1": []byte("c"), "1111:0": []byte("d"), "222:0": []byte("e")}))
	many, err := s.GetManySessions(ctx, []string{"111:0", "111:1", "333:0"})
	must(t, err)
	want := map[string][]byte{"111:0": []byte("b"), "111:1": []byte("c"), "333:0": nil}
	if !maps.EqualFunc(many, want, slices.Equal) {
		t.Fatalf("GetManySessions = %q, want %q", many, want)
	}
	if m, err := s.GetManySessions(ctx, nil); err != nil || m != nil {
		t.Fatalf("GetManySessions(nil) = %v, %v", m, err)
	}

	must(t, s.DeleteSession(ctx, "222:0"))
	if has, _ := s.HasSession(ctx, "222:0"); has {
		t.Fatal("session survived DeleteSession")
	}

	must(t, s.DeleteAllSessions(ctx, "111"))
	for addr, wantHas := range map[string]bool{"111:0": false, "111:1": false, "1111:0": true} {
		if has, _ := s.HasSession(ctx, addr); has != wantHas {
			t.Errorf("after DeleteAllSessions(111): HasSession(%s) = %v", addr, has)
		}
	}
}

func TestSenderKeys(t *testing.T) { storetest.Each(t, testSenderKeys) }

func testSenderKeys(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	if k, err := s.GetSenderKey(ctx, "g@g.us", "111:0"); err != nil || k != nil {
		t.Fatalf("missing sender key = %q, %v", k, err)
	}
	must(t, s.PutSenderKey(ctx, "g@g.us", "111:0", []byte("a")))
	must(t, s.PutSenderKey(ctx, "h@g.us", "111:0", []byte("b")))
	must(t, s.PutSenderKey(ctx, "g@g.us", "111:0", []byte("c"))) // overwrite
	for _, tc := range []struct{ group, want string }{{"g@g.us", "c"}, {"h@g.us", "b"}} {
		if k, _ := s.GetSenderKey(ctx, tc.group, "111:0"); string(k) != tc.want {
			t.Errorf("sender key in %s = %q, want %q", tc.group, k, tc.want)
		}
	}
}

func TestMigratePNToLID(t *testing.T) { storetest.Each(t, testMigratePNToLID) }

func testMigratePNToLID(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	pn := types.JID{User: "111", Server: types.DefaultUserServer}
	lid := types.JID{User: "555", Server: types.HiddenUserServer}

	must(t, s.PutSession(ctx, "111:0", []byte("pn-session-0")))
	must(t, s.PutSession(ctx, "111:2", []byte("pn-session-2")))
	must(t, s.PutSession(ctx, "555_1:0", []byte("old-lid-session"))) // overwritten, as in sqlstore
	must(t, s.PutSession(ctx, "1111:0", []byte("other")))
	must(t, s.PutIdentity(ctx, "111:0", key32(1)))
	must(t, s.PutIdentity(ctx, "111:2", key32(2)))
	must(t, s.PutSenderKey(ctx, "g@g.us", "111:2", []byte("sk")))
	must(t, s.PutSenderKey(ctx, "g@g.us", "1111:0", []byte("other-sk")))

	must(t, s.MigratePNToLID(ctx, pn, lid))

	for addr, want := range map[string]string{"555_1:0": "pn-session-0", "555_1:2": "pn-session-2", "1111:0": "other"} {
		if got, _ := s.GetSession(ctx, addr); string(got) != want {
			t.Errorf("session %s = %q, want %q", addr, got, want)
		}
	}
	for _, addr := range []string{"111:0", "111:2"} {
		if has, _ := s.HasSession(ctx, addr); has {
			t.Errorf("phone-number session %s left behind", addr)
		}
		if ok, _ := s.IsTrustedIdentity(ctx, addr, key32(99)); !ok {
			t.Errorf("phone-number identity %s left behind", addr)
		}
	}
	if ok, _ := s.IsTrustedIdentity(ctx, "555_1:2", key32(2)); !ok {
		t.Error("identity not moved to 555:2")
	}
	if ok, _ := s.IsTrustedIdentity(ctx, "555_1:2", key32(99)); ok {
		t.Error("moved identity 555:2 trusts any key")
	}
	if k, _ := s.GetSenderKey(ctx, "g@g.us", "555_1:2"); string(k) != "sk" {
		t.Errorf("sender key not moved: %q", k)
	}
	if k, _ := s.GetSenderKey(ctx, "g@g.us", "111:2"); k != nil {
		t.Error("phone-number sender key left behind")
	}
	if k, _ := s.GetSenderKey(ctx, "g@g.us", "1111:0"); string(k) != "other-sk" {
		t.Error("another phone's sender key was touched")
	}
	// Moved documents are found by phone like any other.
	must(t, s.DeleteAllSessions(ctx, "555_1"))
	if has, _ := s.HasSession(ctx, "555_1:2"); has {
		t.Error("migrated session not found by DeleteAllSessions(lid)")
	}

	// A second call is a no-op, also after new state appeared (sqlstore
	// remembers migrated numbers the same way).
	must(t, s.PutSession(ctx, "111:5", []byte("late")))
	must(t, s.MigratePNToLID(ctx, pn, lid))
	if has, _ := s.HasSession(ctx, "111:5"); !has {
		t.Error("second migration of the same number was not skipped")
	}

	// A LID's Signal addresses carry its domain: 555 is "555_1".
	if lid.SignalAddress().String() != "555_1:0" {
		t.Fatalf("LID address %s", lid.SignalAddress())
	}
}
