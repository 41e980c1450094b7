package session_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestAccountStore is the AccountStore conformance suite.
func TestAccountStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := accountStore(t, e)
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		for _, id := range []string{"zulu", "alpha", "mike"} {
			a := &session.AccountInfo{ID: id, Driver: "sim", Name: "N " + id, State: session.StateCreated, Since: t0, CreatedAt: t0, UpdatedAt: t0}
			if err := s.Insert(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Insert(ctx, &session.AccountInfo{ID: "mike", Driver: "whatsapp", State: session.StateCreated}); !errors.Is(err, session.ErrAccountExists) {
			t.Fatalf("duplicate insert: %v", err)
		}
		all, err := s.List(ctx)
		if err != nil || len(all) != 3 || all[0].ID != "alpha" || all[1].ID != "mike" || all[2].ID != "zulu" {
			t.Fatalf("list: %v %v", all, err)
		}
		if a := all[1]; a.Driver != "sim" || a.Name != "N mike" || a.State != session.StateCreated || !a.Since.Equal(t0) || !a.CreatedAt.Equal(t0) || a.QR != nil {
			t.Fatalf("stored: %+v", a)
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, session.ErrAccountNotFound) {
			t.Fatalf("get missing: %v", err)
		}

		// A QR code: the state changes (since, reason follow), the code is set.
		t1 := t0.Add(time.Minute)
		exp := t1.Add(20 * time.Second)
		if err := s.Apply(ctx, "mike", session.AccountChange{State: session.StatePairing, Reason: "pairing", At: t1, QR: &session.QR{Code: "2@abc", ExpiresAt: exp}}); err != nil {
			t.Fatal(err)
		}
		a := get(t, s, "mike")
		if a.State != session.StatePairing || !a.Since.Equal(t1) || a.Reason != "pairing" || a.QR == nil || a.QR.Code != "2@abc" || !a.QR.ExpiresAt.Equal(exp) || !a.UpdatedAt.After(t0) {
			t.Fatalf("after the first QR: %+v", a)
		}
		// The next code: same state, so since and reason stay.
		t2 := t1.Add(20 * time.Second)
		if err := s.Apply(ctx, "mike", session.AccountChange{State: session.StatePairing, Reason: "other", At: t2, QR: &session.QR{Code: "2@def", ExpiresAt: t2.Add(20 * time.Second)}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, "mike", session.AccountChange{State: session.StatePairing, At: t2, PairingCode: "ABCD-EFGH"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, "mike", session.AccountChange{LastError: "server unreachable"}); err != nil {
			t.Fatal(err)
		}
		a = get(t, s, "mike")
		if !a.Since.Equal(t1) || a.Reason != "pairing" || a.QR.Code != "2@def" || a.PairingCode != "ABCD-EFGH" || a.LastError != "server unreachable" {
			t.Fatalf("after the second QR, a code and an error: %+v", a)
		}
		// Connected: the pairing and the error go, the JID and name arrive.
		t3 := t2.Add(time.Minute)
		if err := s.Apply(ctx, "mike", session.AccountChange{State: session.StateConnected, At: t3, ClearPairing: true, ClearLastError: true,
			JID: "15550001111@s.whatsapp.net", PushName: "Mike"}); err != nil {
			t.Fatal(err)
		}
		a = get(t, s, "mike")
		if a.State != session.StateConnected || !a.Since.Equal(t3) || a.Reason != "" || a.QR != nil || a.PairingCode != "" || a.LastError != "" ||
			a.JID != "15550001111@s.whatsapp.net" || a.PushName != "Mike" {
			t.Fatalf("connected: %+v", a)
		}
		// Disconnected keeps what it does not name.
		if err := s.Apply(ctx, "mike", session.AccountChange{State: session.StateDisconnected, Reason: "stream replaced", At: t3.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		if a = get(t, s, "mike"); a.State != session.StateDisconnected || a.Reason != "stream replaced" || a.JID == "" || a.PushName != "Mike" {
			t.Fatalf("disconnected: %+v", a)
		}
		// Other accounts are untouched; a missing one is no error.
		if a := get(t, s, "alpha"); a.State != session.StateCreated || a.LastError != "" {
			t.Fatalf("alpha changed: %+v", a)
		}
		if err := s.Apply(ctx, "gone", session.AccountChange{State: session.StateConnected, At: t3}); err != nil {
			t.Fatalf("apply to a missing account: %v", err)
		}
		if _, err := s.Get(ctx, "gone"); !errors.Is(err, session.ErrAccountNotFound) {
			t.Fatalf("apply created an account: %v", err)
		}

		if err := s.Delete(ctx, "mike"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "mike"); err != nil {
			t.Fatalf("second delete: %v", err)
		}
		if all, _ := s.List(ctx); len(all) != 2 {
			t.Fatalf("after delete: %v", all)
		}
	})
}

// TestAccountStoreConcurrentTransitions: concurrent changes to one account
// each land whole — the state and its since/reason always match.
func TestAccountStoreConcurrentTransitions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := accountStore(t, e)
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		if err := s.Insert(ctx, &session.AccountInfo{ID: "a", Driver: "sim", State: session.StateCreated, Since: t0, CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		states := []session.State{session.StateConnected, session.StateDisconnected}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 10 {
					st := states[(w+i)%2]
					at := t0.Add(time.Duration(w*100+i) * time.Second)
					if err := s.Apply(ctx, "a", session.AccountChange{State: st, Reason: fmt.Sprintf("%s %d", st, w*100+i), At: at}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		a := get(t, s, "a")
		var n int
		if _, err := fmt.Sscanf(a.Reason, string(a.State)+" %d", &n); err != nil || !a.Since.Equal(t0.Add(time.Duration(n)*time.Second)) {
			t.Fatalf("state %s, reason %q, since %s do not belong together", a.State, a.Reason, a.Since)
		}
	})
}

func get(t *testing.T, s session.AccountStore, id string) *session.AccountInfo {
	t.Helper()
	a, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
