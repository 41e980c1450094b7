package sim_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestGroupStore is the GroupStore conformance suite, with the copy's
// Count, Export and Import.
func TestGroupStore(t *testing.T) {
	type copyable interface {
		sim.GroupStore
		Count(ctx context.Context) (int64, error)
		Export(ctx context.Context, batch int, fn func([]*sim.Group) error) error
		Import(ctx context.Context, gs []*sim.Group) error
	}
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := newStores(t, e).groups.(copyable)
		ctx := context.Background()
		if gs, err := s.Groups(ctx); err != nil || len(gs) != 0 {
			t.Fatalf("empty store: %v %v", gs, err)
		}
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		g := &sim.Group{JID: "120363000000000001@g.us", Name: "Team", Topic: "t", Owner: "15550000001@s.whatsapp.net", CreatedAt: at,
			Locked: true, JoinApproval: true, InviteCode: "AbCdEfGhIjKlMnOpQrStUv", PictureID: "7",
			Members:  []sim.Member{{JID: "15550000001@s.whatsapp.net", Role: "superadmin"}, {JID: "15550000002@s.whatsapp.net", Role: "member"}},
			Requests: []sim.JoinRequest{{JID: "15550000003@s.whatsapp.net", At: at}}, Seq: 3, UpdatedAt: at}
		for i := range 3 {
			c := *g
			c.JID = fmt.Sprintf("120363000000000%03d@g.us", i+1)
			if err := s.SaveGroup(ctx, &c); err != nil {
				t.Fatal(err)
			}
		}
		// Saving again replaces.
		g2 := *g
		g2.Name, g2.Members = "Renamed", g.Members[:1]
		if err := s.SaveGroup(ctx, &g2); err != nil {
			t.Fatal(err)
		}
		all, err := s.Groups(ctx)
		if err != nil || len(all) != 3 {
			t.Fatalf("groups: %d %v", len(all), err)
		}
		got := all[0]
		if got.JID != g.JID || got.Name != "Renamed" || len(got.Members) != 1 || !got.Locked || !got.JoinApproval || got.InviteCode != g.InviteCode ||
			got.PictureID != "7" || len(got.Requests) != 1 || !got.Requests[0].At.Equal(at) || !got.CreatedAt.Equal(at) || got.Seq != 3 {
			t.Fatalf("read back %+v", got)
		}
		if n, err := s.Count(ctx); err != nil || n != 3 {
			t.Fatalf("count %d %v", n, err)
		}
		var batches [][]*sim.Group
		if err := s.Export(ctx, 2, func(gs []*sim.Group) error { batches = append(batches, gs); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(batches) != 2 || len(batches[0]) != 2 || len(batches[1]) != 1 {
			t.Fatalf("batches %v", batches)
		}
		dst := newStores(t, e).groups.(copyable)
		if err := dst.Import(ctx, all); err != nil {
			t.Fatal(err)
		}
		if n, _ := dst.Count(ctx); n != 3 {
			t.Fatalf("imported %d", n)
		}
	})
}

// groups returns the account's group calls.
func (w *world) groups(id string) session.GroupSession {
	w.t.Helper()
	gs, err := w.mgr.Groups(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return gs
}

// waitGroupEvent waits for a group.update of the account that match says
// is the one.
func (w *world) waitGroupEvent(id string, match func(u *event.GroupUpdate) bool) *event.GroupUpdate {
	w.t.Helper()
	var found *event.GroupUpdate
	poll.Until(w.t, 30*time.Second, func() error {
		for _, ev := range w.events(id, event.KindGroupUpdate) {
			if match(ev.Group) {
				found = ev.Group
				return nil
			}
		}
		return fmt.Errorf("no matching group.update for %s", id)
	})
	return found
}

// TestGroupsOnTheNetwork: a group made by one sim account reaches its sim
// members as events, its messages are fanned out to them, admin rights are
// enforced, and the group survives a restart on both engines.
func TestGroupsOnTheNetwork(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		st := newStores(t, e)
		ctx := context.Background()
		w := newWorldOn(t, st, sim.Options{})
		w.connect("owner")
		w.connect("bob")
		owner, bob := sim.JID("owner").String(), sim.JID("bob").String()
		outsider := "15550001234@s.whatsapp.net"

		g, err := w.groups("owner").CreateGroup(ctx, session.CreateGroupRequest{Name: "Team", Participants: []string{sim.LID("bob").String(), outsider}})
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Participants) != 3 || g.Participants[0].Role != event.GroupSuperAdmin || g.Participants[1].JID != bob || g.Participants[1].LID != sim.LID("bob").String() {
			t.Fatalf("created %+v", g)
		}
		// The creator heard of it before CreateGroup returned; bob hears too.
		if evs := w.events("owner", event.KindGroupUpdate); len(evs) != 1 || evs[0].Group.Self != event.GroupSelfAdded || evs[0].Group.Info == nil || evs[0].ChatID != g.JID {
			t.Fatalf("owner's events %+v", evs)
		}
		w.waitGroupEvent("bob", func(u *event.GroupUpdate) bool {
			return u.Self == event.GroupSelfAdded && u.Info != nil && u.Info.Name == "Team" && u.Actor == owner
		})

		// bob is no admin: he may not add, nor rename once locked.
		if _, err := w.groups("bob").UpdateGroupParticipants(ctx, g.JID, session.ParticipantAdd, []string{"15550009999@s.whatsapp.net"}); !errors.Is(err, session.ErrNotGroupAdmin) {
			t.Fatalf("member adds: %v", err)
		}
		if err := w.groups("owner").SetGroupLocked(ctx, g.JID, true); err != nil {
			t.Fatal(err)
		}
		if err := w.groups("bob").SetGroupSubject(ctx, g.JID, "Mine"); !errors.Is(err, session.ErrNotGroupAdmin) {
			t.Fatalf("member renames a locked group: %v", err)
		}

		// A group message reaches bob from owner in the group's chat.
		res, err := w.mgr.Send(ctx, "owner", &session.SendRequest{To: g.JID, Text: "hello team"})
		if err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 30*time.Second, func() error {
			m, err := w.msgs.Get(ctx, "bob", res.MessageID)
			if err != nil {
				return err
			}
			if m.ChatID != g.JID || m.From != owner || !m.IsGroup || m.Text != "hello team" {
				return fmt.Errorf("bob got %+v", m.Message)
			}
			return nil
		})
		// An outside contact speaks in the group: both sim members get it.
		in, err := w.net.Inject(ctx, "owner", &sim.Inbound{From: outsider, Group: g.JID, Text: "hi from outside"})
		if err != nil {
			t.Fatal(err)
		}
		if in.ChatID != g.JID || in.Message.From != outsider {
			t.Fatalf("injected %+v", in.Message)
		}
		poll.Until(t, 30*time.Second, func() error {
			_, err := w.msgs.Get(ctx, "bob", in.Message.MessageID)
			return err
		})
		if _, err := w.net.Inject(ctx, "owner", &sim.Inbound{From: "15550007777", Group: g.JID, Text: "x"}); !errors.Is(err, session.ErrInvalidRequest) {
			t.Fatalf("non-member injects: %v", err)
		}

		// Removing bob: he hears he was removed; owner's result says ok.
		rs, err := w.groups("owner").UpdateGroupParticipants(ctx, g.JID, session.ParticipantRemove, []string{bob, "15550005555@s.whatsapp.net"})
		if err != nil || rs[0].Status != session.ParticipantOK || rs[1].Status != session.ParticipantNotIn {
			t.Fatalf("remove: %+v %v", rs, err)
		}
		w.waitGroupEvent("bob", func(u *event.GroupUpdate) bool {
			return u.Self == event.GroupSelfRemoved && slices.Contains(u.Removed, bob)
		})
		if _, err := w.groups("bob").GroupInfo(ctx, g.JID); !errors.Is(err, session.ErrGroupNotFound) {
			t.Fatalf("removed member reads the group: %v", err)
		}

		// A restarted network has the group as it was.
		_ = w.mgr.Close(ctx)
		_ = w.net.Close(ctx)
		w2 := newWorldOn(t, st, sim.Options{})
		if err := w2.mgr.Start(ctx, nil); err != nil {
			t.Fatal(err)
		}
		w2.waitState("owner", session.StateConnected)
		got, err := w2.groups("owner").GroupInfo(ctx, g.JID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Team" || !got.Locked || len(got.Participants) != 2 {
			t.Fatalf("after restart %+v", got)
		}
	})
}
