package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestAuthStore is the AuthStore conformance suite.
func TestAuthStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newStores(t, e).auth
		ctx := context.Background()
		if a, err := s.Load(ctx, "a"); a != nil || err != nil {
			t.Fatalf("unpaired: %+v %v", a, err)
		}
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		want := sim.Auth{JID: sim.JID("a").String(), LID: sim.LID("a").String(), PairedAt: at}
		if err := s.Save(ctx, "a", want); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, "b", sim.Auth{JID: "b", LID: "b", PairedAt: at}); err != nil {
			t.Fatal(err)
		}
		if a, err := s.Load(ctx, "a"); err != nil || a == nil || a.JID != want.JID || a.LID != want.LID || !a.PairedAt.Equal(at) {
			t.Fatalf("loaded %+v %v, want %+v", a, err, want)
		}
		// Pairing again replaces.
		later := at.Add(time.Hour)
		if err := s.Save(ctx, "a", sim.Auth{JID: want.JID, LID: want.LID, PairedAt: later}); err != nil {
			t.Fatal(err)
		}
		if a, _ := s.Load(ctx, "a"); a == nil || !a.PairedAt.Equal(later) {
			t.Fatalf("after pairing again: %+v", a)
		}
		if err := s.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "a"); err != nil {
			t.Fatalf("second delete: %v", err)
		}
		if a, _ := s.Load(ctx, "a"); a != nil {
			t.Fatalf("deleted: %+v", a)
		}
		if a, _ := s.Load(ctx, "b"); a == nil {
			t.Fatal("another account's auth state went too")
		}
	})
}

// TestPairedAccountReconnectsAfterRestart: a paired account of a restarted
// daemon connects from its stored auth state without pairing (pairing
// would never complete here); after a logout it must pair again.
func TestPairedAccountReconnectsAfterRestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		st := newStores(t, e)
		ctx := context.Background()
		w1 := newWorldOn(t, st, sim.Options{})
		w1.connect("p")
		if err := w1.mgr.Close(ctx); err != nil {
			t.Fatal(err)
		}
		_ = w1.net.Close(ctx)

		w2 := newWorldOn(t, st, sim.Options{PairDelay: -1})
		if err := w2.mgr.Start(ctx, nil); err != nil {
			t.Fatal(err)
		}
		w2.waitState("p", session.StateConnected)
		if _, err := w2.mgr.Logout(ctx, "p"); err != nil {
			t.Fatal(err)
		}
		if a, err := st.auth.Load(ctx, "p"); a != nil || err != nil {
			t.Fatalf("auth state after logout: %+v %v", a, err)
		}
		if _, err := w2.mgr.Connect(ctx, "p"); err != nil {
			t.Fatal(err)
		}
		w2.waitState("p", session.StatePairing)
	})
}
