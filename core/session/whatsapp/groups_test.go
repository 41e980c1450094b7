package whatsapp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func groupSession(t *testing.T, s session.Session) session.GroupSession {
	t.Helper()
	gs, ok := s.(session.GroupSession)
	if !ok {
		t.Fatalf("%T does not implement session.GroupSession", s)
	}
	return gs
}

func groupUpdate(jid string, match func(*event.GroupUpdate) bool) func(*event.Event) bool {
	return func(ev *event.Event) bool {
		return ev.Kind == event.KindGroupUpdate && ev.Group != nil && ev.Group.JID == jid && match(ev.Group)
	}
}

func roleOf(info *event.GroupInfo, jid string) event.GroupRole {
	for _, p := range info.Participants {
		if p.JID == jid {
			return p.Role
		}
	}
	return ""
}

// TestGroups drives the whatsmeow driver's groups over the protocol
// double: create, info, participants with WhatsApp's per-participant
// results, the invite link, group messages received from two contacts
// (text and media) and sent (each contact decrypts it), and a contact
// joining by link reported as a group.update.
func TestGroups(t *testing.T) {
	r := newRig(t)
	s, acct := r.pair(t)
	gs := groupSession(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	own := acct.JID().ToNonAD().String()
	alice, bob, carol := r.srv.Contact("15552000001"), r.srv.Contact("15552000002"), r.srv.Contact("15552000003")
	carol.RefuseGroupAdds()

	// Create: the account is super-admin; a contact whose privacy refuses
	// adds is left out.
	info, err := gs.CreateGroup(ctx, session.CreateGroupRequest{Name: "Support", Participants: []string{
		alice.JID().String(), "+" + bob.JID().User, carol.JID().String(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "Support" || len(info.Participants) != 3 || roleOf(info, own) != event.GroupSuperAdmin || roleOf(info, carol.JID().String()) != "" {
		t.Fatalf("created %+v", info)
	}
	joined := r.sink.waitFor(t, "group.update for the new group", groupUpdate(info.JID, func(g *event.GroupUpdate) bool { return g.Self == event.GroupSelfAdded }))
	if joined.Group.Info == nil || joined.Group.Info.Name != "Support" || len(joined.Group.Info.Participants) != 3 {
		t.Fatalf("joined event without the group: %+v", joined.Group)
	}

	// Info and the list of groups.
	got, err := gs.GroupInfo(ctx, info.JID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Support" || got.Owner != own || roleOf(got, alice.JID().String()) != event.GroupMember {
		t.Fatalf("info %+v", got)
	}
	list, err := gs.JoinedGroups(ctx)
	if err != nil || len(list) != 1 || list[0].JID != info.JID {
		t.Fatalf("joined groups %+v, %v", list, err)
	}

	// Participants: one result per participant, in the order asked.
	dave := r.srv.Contact("15552000004")
	res, err := gs.UpdateGroupParticipants(ctx, info.JID, session.ParticipantAdd, []string{dave.JID().String(), alice.JID().String(), carol.JID().String()})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus := []session.ParticipantStatus{session.ParticipantOK, session.ParticipantAlreadyIn, session.ParticipantInviteSent}
	for i, w := range wantStatus {
		if res[i].Status != w {
			t.Fatalf("add result %d: %+v, want %s", i, res[i], w)
		}
	}
	if res[2].InviteCode == "" || res[2].InviteExpires.IsZero() {
		t.Fatalf("invite_required without an invite: %+v", res[2])
	}
	r.sink.waitFor(t, "dave added", groupUpdate(info.JID, func(g *event.GroupUpdate) bool {
		return slices.Contains(g.Added, dave.JID().String()) && g.Actor == own
	}))
	res, err = gs.UpdateGroupParticipants(ctx, info.JID, session.ParticipantPromote, []string{bob.JID().String(), carol.JID().String()})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != session.ParticipantOK || res[1].Status != session.ParticipantNotIn {
		t.Fatalf("promote results %+v", res)
	}
	r.sink.waitFor(t, "bob promoted", groupUpdate(info.JID, func(g *event.GroupUpdate) bool { return slices.Contains(g.Promoted, bob.JID().String()) }))
	res, err = gs.UpdateGroupParticipants(ctx, info.JID, session.ParticipantRemove, []string{dave.JID().String()})
	if err != nil || res[0].Status != session.ParticipantOK {
		t.Fatalf("remove: %+v, %v", res, err)
	}
	removed := r.sink.waitFor(t, "dave removed", groupUpdate(info.JID, func(g *event.GroupUpdate) bool { return len(g.Removed) > 0 }))
	if !slices.Equal(removed.Group.Removed, []string{dave.JID().String()}) || len(removed.Group.Left) != 0 {
		t.Fatalf("removal reported as %+v", removed.Group)
	}
	if g := r.srv.Group(types.NewJID(splitUser(info.JID), types.GroupServer)); g == nil || len(g.Members()) != 3 {
		t.Fatalf("the double's group: %+v", g)
	}

	// Invite link: reset revokes the old one.
	link, err := gs.GroupInviteLink(ctx, info.JID, false)
	if err != nil || len(link) <= len(whatsmeow.InviteLinkPrefix) {
		t.Fatalf("invite link %q, %v", link, err)
	}
	fresh, err := gs.GroupInviteLink(ctx, info.JID, true)
	if err != nil || fresh == link {
		t.Fatalf("reset link %q (was %q), %v", fresh, link, err)
	}
	if _, err := gs.GroupInfoFromLink(ctx, link); !errors.Is(err, session.ErrInviteInvalid) {
		t.Fatalf("revoked link: %v", err)
	}
	preview, err := gs.GroupInfoFromLink(ctx, fresh)
	if err != nil || preview.JID != info.JID {
		t.Fatalf("link preview %+v, %v", preview, err)
	}

	// A contact joining by the link is a participant-joined event.
	eve := r.srv.Contact("15552000005")
	if ok, err := eve.JoinGroupWithLink(ctx, fresh); err != nil || !ok {
		t.Fatalf("eve joins: %v, %v", ok, err)
	}
	ev := r.sink.waitFor(t, "eve joined", groupUpdate(info.JID, func(g *event.GroupUpdate) bool { return slices.Contains(g.Added, eve.JID().String()) }))
	if ev.Group.JoinReason != "invite" || ev.Group.Self != "" || len(ev.Group.Participants) != 1 || ev.Group.Participants[0].PN != eve.JID().String() {
		t.Fatalf("eve's join reported as %+v", ev.Group)
	}

	// Group messages from two contacts: a text and an image.
	textID, err := alice.SendGroupText(ctx, types.NewJID(splitUser(info.JID), types.GroupServer), "hello support")
	if err != nil {
		t.Fatal(err)
	}
	img := bytes.Repeat([]byte("group-image "), 3000)
	imgID, err := bob.SendGroupImage(ctx, types.NewJID(splitUser(info.JID), types.GroupServer), img, "image/jpeg", "screenshot")
	if err != nil {
		t.Fatal(err)
	}
	text := r.sink.waitFor(t, "alice's group text", func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == textID })
	if m := text.Message; m.Text != "hello support" || m.ChatID != info.JID || m.From != alice.JID().String() || !m.IsGroup || text.Kind != event.KindMessageReceived {
		t.Fatalf("alice's text: %+v", m)
	}
	image := r.sink.waitFor(t, "bob's group image", func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == imgID })
	if m := image.Message; m.Type != event.TypeImage || m.ChatID != info.JID || m.From != bob.JID().String() || m.Media.Caption != "screenshot" {
		t.Fatalf("bob's image: %+v", m)
	}
	rc, err := s.DownloadMedia(ctx, image.Message)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	_ = rc.Close()
	if !bytes.Equal(data, img) {
		t.Fatalf("downloaded %d bytes, want the %d sent", len(data), len(img))
	}
	for _, id := range []string{textID, imgID} {
		if n := r.sink.storedCount(id); n != 1 {
			t.Fatalf("group message %s stored %d times", id, n)
		}
	}

	// A group text the driver sends: every member contact decrypts it.
	sent, err := s.Send(ctx, &session.SendRequest{To: info.JID, Text: "we are on it", MentionAll: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range []*watest.Contact{alice, bob, eve} {
		in, err := ct.NextMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if in.ID != sent.MessageID || in.Chat.String() != info.JID || in.Message.GetExtendedTextMessage().GetText() != "we are on it" {
			t.Fatalf("%s got %+v", ct.JID(), in)
		}
		mentioned := in.Message.GetExtendedTextMessage().GetContextInfo().GetMentionedJID()
		if len(mentioned) != 3 || !slices.Contains(mentioned, ct.JID().String()) || slices.Contains(mentioned, own) {
			t.Fatalf("mention-all mentioned %v", mentioned)
		}
	}
	if sent.Event.Message.ChatID != info.JID || !sent.Event.Message.IsGroup {
		t.Fatalf("sent event %+v", sent.Event.Message)
	}

	// Leaving is reported as the account's own departure.
	if err := gs.LeaveGroup(ctx, info.JID); err != nil {
		t.Fatal(err)
	}
	left := r.sink.waitFor(t, "left", groupUpdate(info.JID, func(g *event.GroupUpdate) bool { return g.Self == event.GroupSelfLeft }))
	if !slices.Equal(left.Group.Left, []string{own}) {
		t.Fatalf("leaving reported as %+v", left.Group)
	}
	if _, err := gs.GroupInfo(ctx, info.JID); !errors.Is(err, session.ErrGroupNotFound) {
		t.Fatalf("info after leaving: %v", err)
	}
}

func splitUser(jid string) string {
	j, _ := types.ParseJID(jid)
	return j.User
}

// TestGroupErrors: what WhatsApp refuses maps to the contract's errors.
func TestGroupErrors(t *testing.T) {
	r := newRig(t)
	s, acct := r.pair(t)
	gs := groupSession(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	owner := r.srv.Contact("15553000001")

	// Not an admin: a group a contact created with the account as a member.
	g, err := owner.CreateGroup(ctx, "Owner's", acct.JID().ToNonAD())
	if err != nil {
		t.Fatal(err)
	}
	gid := g.JID().String()
	r.sink.waitFor(t, "added to the owner's group", groupUpdate(gid, func(u *event.GroupUpdate) bool {
		return u.Self == event.GroupSelfAdded && u.Actor == owner.JID().String()
	}))
	if err := gs.SetGroupLocked(ctx, gid, true); !errors.Is(err, session.ErrNotGroupAdmin) {
		t.Fatalf("lock as a member: %v", err)
	}
	if _, err := gs.UpdateGroupParticipants(ctx, gid, session.ParticipantAdd, []string{"15553000002"}); !errors.Is(err, session.ErrNotGroupAdmin) {
		t.Fatalf("add as a member: %v", err)
	}
	if _, err := gs.GroupInviteLink(ctx, gid, false); !errors.Is(err, session.ErrNotGroupAdmin) {
		t.Fatalf("invite link as a member: %v", err)
	}

	// Added by a plain membership change: the driver fetches the group so
	// the event still carries it.
	later, err := owner.CreateGroup(ctx, "Later")
	if err != nil {
		t.Fatal(err)
	}
	later.TellNewcomersByAdd()
	if err := owner.AddToGroup(ctx, later, acct.JID().ToNonAD()); err != nil {
		t.Fatal(err)
	}
	added := r.sink.waitFor(t, "added to a group later", groupUpdate(later.JID().String(), func(u *event.GroupUpdate) bool {
		return u.Self == event.GroupSelfAdded
	}))
	if u := added.Group; u.Info == nil || u.Info.Name != "Later" || len(u.Info.Participants) != 2 || !slices.Contains(u.Added, acct.JID().ToNonAD().String()) {
		t.Fatalf("added later: %+v", u)
	}

	// Not found: no such group, and a non-group JID is bad input.
	if _, err := gs.GroupInfo(ctx, "120363000000000999@g.us"); !errors.Is(err, session.ErrGroupNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
	if err := gs.SetGroupSubject(ctx, "120363000000000999@g.us", "x"); !errors.Is(err, session.ErrGroupNotFound) {
		t.Fatalf("subject of an unknown group: %v", err)
	}
	if _, err := gs.GroupInfo(ctx, "15553000001@s.whatsapp.net"); !errors.Is(err, session.ErrInvalidRequest) {
		t.Fatalf("a user JID as a group: %v", err)
	}
	if _, err := gs.GroupInfoFromLink(ctx, "https://chat.whatsapp.com/NoSuchCode"); !errors.Is(err, session.ErrInviteInvalid) {
		t.Fatalf("unknown invite: %v", err)
	}

	// Full: per participant, and when joining by link.
	mine, err := gs.CreateGroup(ctx, session.CreateGroupRequest{Name: "Small", Participants: []string{"15553000003"}})
	if err != nil {
		t.Fatal(err)
	}
	small := r.srv.Group(types.NewJID(splitUser(mine.JID), types.GroupServer))
	small.SetSizeLimit(2)
	res, err := gs.UpdateGroupParticipants(ctx, mine.JID, session.ParticipantAdd, []string{"15553000004"})
	if err != nil || res[0].Status != session.ParticipantGroupFull {
		t.Fatalf("add to a full group: %+v, %v", res, err)
	}
	// Joining by link a group at its limit: the account leaves the owner's
	// group, which then fills up.
	if err := gs.LeaveGroup(ctx, gid); err != nil {
		t.Fatal(err)
	}
	g.SetSizeLimit(1)
	if _, err := gs.JoinGroupWithLink(ctx, g.InviteLink()); !errors.Is(err, session.ErrGroupFull) {
		t.Fatalf("join a full group: %v", err)
	}
	// Bad input never reaches WhatsApp.
	if _, err := gs.CreateGroup(ctx, session.CreateGroupRequest{Name: string(bytes.Repeat([]byte("x"), session.MaxGroupSubject+1))}); !errors.Is(err, session.ErrInvalidRequest) {
		t.Fatalf("long subject: %v", err)
	}
	if _, err := gs.UpdateGroupParticipants(ctx, mine.JID, session.ParticipantAdd, []string{"not a number"}); !errors.Is(err, session.ErrInvalidRequest) {
		t.Fatalf("bad participant: %v", err)
	}
}

// TestGroupPollVotes: a poll the driver sends to a group is voted on by
// two contacts; both votes arrive as poll_vote messages decrypted with the
// poll's secret, which the auth store keeps sealed, on both engines.
func TestGroupPollVotes(t *testing.T) { storetest.Each(t, testGroupPollVotes) }

func testGroupPollVotes(t *testing.T, e storetest.Engine) {
	r := newRigOn(t, e)
	r.keys = sealtest.Ring(t, "", sealtest.Key(t, "k1"))
	r.openAuth(t)
	s, _ := r.pair(t)
	gs := groupSession(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	alice, bob := r.srv.Contact("15554000001"), r.srv.Contact("15554000002")
	var secret []byte
	info, err := gs.CreateGroup(ctx, session.CreateGroupRequest{Name: "Lunch", Participants: []string{alice.JID().String(), bob.JID().String()}})
	if err != nil {
		t.Fatal(err)
	}
	sent, err := s.Send(ctx, &session.SendRequest{To: info.JID, Poll: &session.PollSend{Name: "Where?", Options: []string{"pizza", "sushi", "salad"}, SelectableCount: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if p := sent.Event.Message.Poll; p == nil || len(p.Options) != 3 || p.SelectableCount != 2 {
		t.Fatalf("sent poll event %+v", sent.Event.Message)
	}
	hash := map[string]string{}
	for _, o := range sent.Event.Message.Poll.Options {
		hash[o.Name] = o.Hash
	}
	votes := map[*watest.Contact][]string{alice: {"pizza"}, bob: {"sushi", "salad"}}
	for _, ct := range []*watest.Contact{alice, bob} {
		poll, err := ct.NextMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if poll.ID != sent.MessageID || poll.Message.GetPollCreationMessage().GetName() != "Where?" {
			t.Fatalf("%s got %+v", ct.JID(), poll)
		}
		secret = poll.Message.GetMessageContextInfo().GetMessageSecret()
		id, err := ct.VotePoll(ctx, poll, votes[ct]...)
		if err != nil {
			t.Fatal(err)
		}
		ev := r.sink.waitFor(t, "vote", func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == id })
		v := ev.Message.PollVote
		if ev.Message.Type != event.TypePollVote || v == nil || !v.Decrypted || v.PollMessageID != sent.MessageID || ev.Message.From != ct.JID().String() {
			t.Fatalf("vote of %s: %+v", ct.JID(), ev.Message)
		}
		var want []string
		for _, o := range votes[ct] {
			want = append(want, hash[o])
		}
		if !slices.Equal(v.SelectedOptions, want) {
			t.Fatalf("vote of %s selected %v, want %v", ct.JID(), v.SelectedOptions, want)
		}
	}
	// A poll in a one-to-one chat works the same way.
	dm, err := s.Send(ctx, &session.SendRequest{To: alice.JID().String(), Poll: &session.PollSend{Name: "Coffee?", Options: []string{"yes", "no"}}})
	if err != nil {
		t.Fatal(err)
	}
	dmPoll, err := alice.NextMessage(ctx)
	if err != nil || dmPoll.ID != dm.MessageID || !dmPoll.Chat.IsEmpty() {
		t.Fatalf("alice got %+v, %v", dmPoll, err)
	}
	voteID, err := alice.VotePoll(ctx, dmPoll, "no")
	if err != nil {
		t.Fatal(err)
	}
	dmVote := r.sink.waitFor(t, "vote in a chat", func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == voteID })
	if v := dmVote.Message.PollVote; v == nil || !v.Decrypted || v.PollMessageID != dm.MessageID || !slices.Equal(v.SelectedOptions, []string{dm.Event.Message.Poll.Options[1].Hash}) {
		t.Fatalf("vote in a chat: %+v", dmVote.Message.PollVote)
	}

	// The votes opened with the secret kept in the auth store, which holds
	// it sealed: its bytes appear nowhere in the engine's data.
	if len(secret) != 32 {
		t.Fatalf("poll secret of %d bytes", len(secret))
	}
	if bytes.Contains(r.rawAuth(t), secret) {
		t.Fatal("the poll's secret is stored in the clear")
	}
}

// rawAuth is every byte of the account's auth state as the engine holds it.
func (r *rig) rawAuth(t *testing.T) []byte {
	t.Helper()
	if r.engine == storetest.MongoDB {
		var all []byte
		cur, err := r.db.Collection(store.AuthCollection("wa1")).Find(context.Background(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close(context.Background())
		for cur.Next(context.Background()) {
			all = append(all, cur.Current...)
		}
		return all
	}
	return sealtest.SQLiteBytes(t, r.file.Path())
}

// TestGroupSettings: subject, description, picture, the announce, locked
// and join-approval settings, and join requests, each reported back as the
// group.update WhatsApp sends every member.
func TestGroupSettings(t *testing.T) {
	r := newRig(t)
	s, acct := r.pair(t)
	gs := groupSession(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	own := acct.JID().ToNonAD().String()
	alice := r.srv.Contact("15555000001")
	info, err := gs.CreateGroup(ctx, session.CreateGroupRequest{Name: "Settings", Participants: []string{alice.JID().String()}})
	if err != nil {
		t.Fatal(err)
	}
	gid := info.JID
	wait := func(what string, match func(*event.GroupUpdate) bool) *event.GroupUpdate {
		t.Helper()
		return r.sink.waitFor(t, what, groupUpdate(gid, match)).Group
	}

	if err := gs.SetGroupSubject(ctx, gid, "Renamed"); err != nil {
		t.Fatal(err)
	}
	if u := wait("subject", func(g *event.GroupUpdate) bool { return g.Name != "" }); u.Name != "Renamed" || u.Actor != own {
		t.Fatalf("subject change %+v", u)
	}
	if err := gs.SetGroupDescription(ctx, gid, "All about settings"); err != nil {
		t.Fatal(err)
	}
	wait("description", func(g *event.GroupUpdate) bool { return g.Topic == "All about settings" })
	if err := gs.SetGroupDescription(ctx, gid, ""); err != nil {
		t.Fatal(err)
	}
	wait("description removed", func(g *event.GroupUpdate) bool { return g.TopicDeleted })

	picID, err := gs.SetGroupPicture(ctx, gid, []byte{0xFF, 0xD8, 0xFF, 0xE0, 'j', 'p', 'g'})
	if err != nil || picID == "" {
		t.Fatalf("set picture: %q, %v", picID, err)
	}
	if u := wait("picture", func(g *event.GroupUpdate) bool { return g.PictureID != "" }); u.PictureID != picID || u.Actor != own {
		t.Fatalf("picture change %+v", u)
	}
	if _, err := gs.SetGroupPicture(ctx, gid, nil); err != nil {
		t.Fatal(err)
	}
	wait("picture removed", func(g *event.GroupUpdate) bool { return g.PictureRemoved })
	if _, err := gs.SetGroupPicture(ctx, gid, []byte("GIF89a")); !errors.Is(err, session.ErrInvalidRequest) {
		t.Fatalf("a GIF as picture: %v", err)
	}

	for _, on := range []bool{true, false} {
		if err := gs.SetGroupAnnounce(ctx, gid, on); err != nil {
			t.Fatal(err)
		}
		wait("announce", func(g *event.GroupUpdate) bool { return g.Announce != nil && *g.Announce == on })
		if err := gs.SetGroupLocked(ctx, gid, on); err != nil {
			t.Fatal(err)
		}
		wait("locked", func(g *event.GroupUpdate) bool { return g.Locked != nil && *g.Locked == on })
	}
	if err := gs.SetGroupJoinApproval(ctx, gid, true); err != nil {
		t.Fatal(err)
	}
	wait("join approval", func(g *event.GroupUpdate) bool { return g.JoinApproval != nil && *g.JoinApproval })
	got, err := gs.GroupInfo(ctx, gid)
	if err != nil || !got.JoinApproval || got.Announce || got.Locked || got.Name != "Renamed" || got.Topic != "" {
		t.Fatalf("info after the changes: %+v, %v", got, err)
	}

	// Join requests: two contacts ask by link; one is approved, one not.
	link, err := gs.GroupInviteLink(ctx, gid, false)
	if err != nil {
		t.Fatal(err)
	}
	bob, carol := r.srv.Contact("15555000002"), r.srv.Contact("15555000003")
	for _, ct := range []*watest.Contact{bob, carol} {
		if joined, err := ct.JoinGroupWithLink(ctx, link); err != nil || joined {
			t.Fatalf("%s asked to join: %v, %v", ct.JID(), joined, err)
		}
	}
	reqs, err := gs.GroupJoinRequests(ctx, gid)
	if err != nil || len(reqs) != 2 || reqs[0].JID != bob.JID().String() || reqs[0].PN != bob.JID().String() || reqs[0].RequestedAt.IsZero() {
		t.Fatalf("join requests %+v, %v", reqs, err)
	}
	res, err := gs.UpdateGroupJoinRequests(ctx, gid, true, []string{bob.JID().String(), "15555000009"})
	if err != nil || res[0].Status != session.ParticipantOK || res[1].Status != session.ParticipantNotIn {
		t.Fatalf("approve: %+v, %v", res, err)
	}
	if u := wait("bob approved", func(g *event.GroupUpdate) bool { return slices.Contains(g.Added, bob.JID().String()) }); u.JoinReason != "approval" {
		t.Fatalf("approval reported as %+v", u)
	}
	if res, err := gs.UpdateGroupJoinRequests(ctx, gid, false, []string{carol.JID().String()}); err != nil || res[0].Status != session.ParticipantOK {
		t.Fatalf("reject: %+v, %v", res, err)
	}
	if reqs, err := gs.GroupJoinRequests(ctx, gid); err != nil || len(reqs) != 0 {
		t.Fatalf("requests left: %+v, %v", reqs, err)
	}
	members := r.srv.Group(types.NewJID(splitUser(gid), types.GroupServer)).Members()
	if len(members) != 3 || members[2].JID != bob.JID() {
		t.Fatalf("members %+v", members)
	}

	// The account asking to join a group that needs approval.
	other, err := alice.CreateGroup(ctx, "Gated")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.RequireApproval(); err != nil {
		t.Fatal(err)
	}
	jid, err := gs.JoinGroupWithLink(ctx, other.InviteLink())
	if !errors.Is(err, session.ErrJoinRequested) || jid != other.JID().String() {
		t.Fatalf("join a gated group: %q, %v", jid, err)
	}
}

// TestChannels: the channels the account follows and their messages,
// newest first, paged by server ID.
func TestChannels(t *testing.T) {
	r := newRig(t)
	s, acct := r.pair(t)
	cs, ok := s.(session.ChannelSession)
	if !ok {
		t.Fatalf("%T does not implement session.ChannelSession", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	news := r.srv.NewChannel("News", "Daily news")
	news.Follow(acct, "subscriber")
	r.srv.NewChannel("Other", "") // not followed: not listed
	var ids []int
	for _, text := range []string{"first", "second", "third"} {
		ids = append(ids, news.PostText(text))
	}

	list, err := cs.Channels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].JID != news.JID().String() || list[0].Name != "News" || list[0].Description != "Daily news" || list[0].Role != "subscriber" || list[0].Subscribers != 1 {
		t.Fatalf("channels %+v", list)
	}
	page, err := cs.ChannelMessages(ctx, news.JID().String(), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].Text != "third" || page[1].Text != "second" || page[0].ChatID != news.JID().String() {
		t.Fatalf("newest page %+v", page)
	}
	older, err := cs.ChannelMessages(ctx, news.JID().String(), 2, ids[1])
	if err != nil || len(older) != 1 || older[0].Text != "first" {
		t.Fatalf("page before %d: %+v, %v", ids[1], older, err)
	}
	if _, err := cs.ChannelMessages(ctx, "15556000001@s.whatsapp.net", 2, 0); !errors.Is(err, session.ErrInvalidRequest) {
		t.Fatalf("a user as channel: %v", err)
	}
}
