package authstore

import (
	"bytes"
	"testing"

	"go.mau.fi/whatsmeow/store"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestAppStateSyncKeys(t *testing.T) { storetest.Each(t, testAppStateSyncKeys) }

func testAppStateSyncKeys(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	if k, err := s.GetAppStateSyncKey(ctx, []byte{1}); err != nil || k != nil {
		t.Fatalf("missing key = %v, %v", k, err)
	}
	if id, err := s.GetLatestAppStateSyncKeyID(ctx); err != nil || id != nil {
		t.Fatalf("latest of none = %x, %v", id, err)
	}

	must(t, s.PutAppStateSyncKey(ctx, []byte{1}, store.AppStateSyncKey{Data: []byte("a"), Fingerprint: []byte("fa"), Timestamp: 100}))
	must(t, s.PutAppStateSyncKey(ctx, []byte{2}, store.AppStateSyncKey{Data: []byte("b"), Fingerprint: []byte("fb"), Timestamp: 300}))
	must(t, s.PutAppStateSyncKey(ctx, []byte{3}, store.AppStateSyncKey{Data: []byte("c"), Fingerprint: []byte("fc"), Timestamp: 200}))

	got, err := s.GetAppStateSyncKey(ctx, []byte{1})
	must(t, err)
	if got == nil || string(got.Data) != "a" || string(got.Fingerprint) != "fa" || got.Timestamp != 100 {
		t.Fatalf("key 1 = %+v", got)
	}
	if id, _ := s.GetLatestAppStateSyncKeyID(ctx); !bytes.Equal(id, []byte{2}) {
		t.Fatalf("latest key id = %x, want 02", id)
	}

	// Only a newer timestamp replaces a key (older and equal are ignored).
	for _, tc := range []struct {
		ts   int64
		data string
		want string
	}{
		{50, "older", "a"},
		{100, "equal", "a"},
		{150, "newer", "newer"},
	} {
		must(t, s.PutAppStateSyncKey(ctx, []byte{1}, store.AppStateSyncKey{Data: []byte(tc.data), Fingerprint: []byte("f"), Timestamp: tc.ts}))
		got, err := s.GetAppStateSyncKey(ctx, []byte{1})
		must(t, err)
		if string(got.Data) != tc.want {
			t.Errorf("after put at %d: data %q, want %q", tc.ts, got.Data, tc.want)
		}
	}
}

func TestAppStateVersions(t *testing.T) { storetest.Each(t, testAppStateVersions) }

func testAppStateVersions(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	v, h, err := s.GetAppStateVersion(ctx, "regular")
	must(t, err)
	if v != 0 || h != ([128]byte{}) {
		t.Fatalf("missing version = %d, %x", v, h[:4])
	}
	hash := [128]byte{1, 2, 3, 127: 9}
	must(t, s.PutAppStateVersion(ctx, "regular", 5, hash))
	must(t, s.PutAppStateVersion(ctx, "critical_block", 1, [128]byte{7}))
	if v, h, _ := s.GetAppStateVersion(ctx, "regular"); v != 5 || h != hash {
		t.Fatalf("version = %d, %x", v, h[:4])
	}
	must(t, s.PutAppStateVersion(ctx, "regular", 1<<40, [128]byte{4}))
	if v, h, _ := s.GetAppStateVersion(ctx, "regular"); v != 1<<40 || h != ([128]byte{4}) {
		t.Fatalf("overwritten version = %d, %x", v, h[:4])
	}
	must(t, s.DeleteAppStateVersion(ctx, "regular"))
	if v, _, _ := s.GetAppStateVersion(ctx, "regular"); v != 0 {
		t.Fatalf("deleted version = %d", v)
	}
	if v, _, _ := s.GetAppStateVersion(ctx, "critical_block"); v != 1 {
		t.Fatal("another collection's version was deleted")
	}
}

func TestAppStateMutationMACs(t *testing.T) { storetest.Each(t, testAppStateMutationMACs) }

func testAppStateMutationMACs(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	idx := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

	if m, err := s.GetAppStateMutationMAC(ctx, "regular", idx(1)); err != nil || m != nil {
		t.Fatalf("missing MAC = %x, %v", m, err)
	}
	// whatsmeow stores a collection's version before its MACs (sqlstore's
	// MACs refer to the version row).
	for _, name := range []string{"regular", "regular_low", "big"} {
		must(t, s.PutAppStateVersion(ctx, name, 1, [128]byte{}))
	}
	must(t, s.PutAppStateMutationMACs(ctx, "regular", 1, nil))
	must(t, s.PutAppStateMutationMACs(ctx, "regular", 2, []store.AppStateMutationMAC{
		{IndexMAC: idx(1), ValueMAC: idx(0xa1)},
		{IndexMAC: idx(2), ValueMAC: idx(0xa2)},
		{IndexMAC: idx(3), ValueMAC: idx(0xa3)},
	}))
	must(t, s.PutAppStateMutationMACs(ctx, "regular_low", 2, []store.AppStateMutationMAC{{IndexMAC: idx(1), ValueMAC: idx(0xb1)}}))
	// A higher version wins; a lower one (a replayed older patch) does not.
	must(t, s.PutAppStateMutationMACs(ctx, "regular", 3, []store.AppStateMutationMAC{{IndexMAC: idx(1), ValueMAC: idx(0xc1)}}))
	must(t, s.PutAppStateMutationMACs(ctx, "regular", 1, []store.AppStateMutationMAC{
		{IndexMAC: idx(1), ValueMAC: idx(0xd1)},
		{IndexMAC: idx(4), ValueMAC: idx(0xd4)},
	}))

	for _, tc := range []struct {
		name string
		idx  byte
		want []byte
	}{
		{"regular", 1, idx(0xc1)},
		{"regular", 2, idx(0xa2)},
		{"regular", 4, idx(0xd4)},
		{"regular_low", 1, idx(0xb1)},
		{"regular_low", 2, nil},
	} {
		got, err := s.GetAppStateMutationMAC(ctx, tc.name, idx(tc.idx))
		must(t, err)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("MAC %s/%d = %x, want %x", tc.name, tc.idx, got, tc.want)
		}
	}

	must(t, s.DeleteAppStateMutationMACs(ctx, "regular", [][]byte{idx(1), idx(3)}))
	must(t, s.DeleteAppStateMutationMACs(ctx, "regular", nil))
	for b, want := range map[byte]bool{1: false, 2: true, 3: false} {
		got, _ := s.GetAppStateMutationMAC(ctx, "regular", idx(b))
		if (got != nil) != want {
			t.Errorf("after delete: MAC %d present = %v, want %v", b, got != nil, want)
		}
	}
	if got, _ := s.GetAppStateMutationMAC(ctx, "regular_low", idx(1)); got == nil {
		t.Error("delete in one collection removed another's MAC")
	}

	// Deleting a collection's version deletes its MACs (sqlstore cascades).
	must(t, s.PutAppStateVersion(ctx, "regular", 3, [128]byte{}))
	must(t, s.DeleteAppStateVersion(ctx, "regular"))
	if got, _ := s.GetAppStateMutationMAC(ctx, "regular", idx(2)); got != nil {
		t.Error("MAC survived DeleteAppStateVersion")
	}
	if got, _ := s.GetAppStateMutationMAC(ctx, "regular_low", idx(1)); got == nil {
		t.Error("DeleteAppStateVersion removed another collection's MAC")
	}

	// A large patch goes through in one call.
	many := make([]store.AppStateMutationMAC, 1000)
	for i := range many {
		many[i] = store.AppStateMutationMAC{IndexMAC: bigMAC(i), ValueMAC: idx(byte(i))}
	}
	must(t, s.PutAppStateMutationMACs(ctx, "big", 1, many))
	if got, _ := s.GetAppStateMutationMAC(ctx, "big", bigMAC(999)); !bytes.Equal(got, idx(231)) {
		t.Fatalf("MAC 999 of big patch = %x", got)
	}
}

// bigMAC is a distinct 32-byte index MAC (the size sqlstore checks) for i.
func bigMAC(i int) []byte {
	m := make([]byte, 32)
	m[0], m[1] = byte(i>>8), byte(i)
	return m
}
