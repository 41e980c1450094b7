package authstore

import (
	"testing"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestIdentities(t *testing.T) { storetest.Each(t, testIdentities) }

func testIdentities(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)

	ok, err := s.IsTrustedIdentity(ctx, "111:0", key32(1))
	must(t, err)
	if !ok {
		t.Fatal("unknown identity not trusted")
	}

	must(t, s.PutIdentity(ctx, "111:0", key32(1)))
	must(t, s.PutIdentity(ctx, "111:3", key32(3)))
	must(t, s.PutIdentity(ctx, "1111:0", key32(4))) // a prefix-sharing phone
	must(t, s.PutIdentity(ctx, "222:0", key32(2)))

	for _, tc := range []struct {
		addr string
		key  byte
		want bool
	}{
		{"111:0", 1, true},
		{"111:0", 2, false},
		{"111:3", 3, true},
		{"222:0", 2, true},
	} {
		ok, err := s.IsTrustedIdentity(ctx, tc.addr, key32(tc.key))
		must(t, err)
		if ok != tc.want {
			t.Errorf("IsTrustedIdentity(%s, %d) = %v, want %v", tc.addr, tc.key, ok, tc.want)
		}
	}

	// Overwrite.
	must(t, s.PutIdentity(ctx, "111:0", key32(9)))
	if ok, _ := s.IsTrustedIdentity(ctx, "111:0", key32(1)); ok {
		t.Fatal("old key still trusted after overwrite")
	}
	if ok, _ := s.IsTrustedIdentity(ctx, "111:0", key32(9)); !ok {
		t.Fatal("new key not trusted after overwrite")
	}

	must(t, s.DeleteIdentity(ctx, "222:0"))
	must(t, s.DeleteIdentity(ctx, "222:0")) // deleting a missing one is fine
	if ok, _ := s.IsTrustedIdentity(ctx, "222:0", key32(7)); !ok {
		t.Fatal("deleted identity still pinned")
	}

	must(t, s.DeleteAllIdentities(ctx, "111"))
	for _, addr := range []string{"111:0", "111:3"} {
		if ok, _ := s.IsTrustedIdentity(ctx, addr, key32(7)); !ok {
			t.Errorf("%s survived DeleteAllIdentities", addr)
		}
	}
	if ok, _ := s.IsTrustedIdentity(ctx, "1111:0", key32(7)); ok {
		t.Fatal("DeleteAllIdentities(111) deleted 1111:0")
	}
}
