package whatsapp

import (
	"errors"
	"reflect"
	"slices"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wildcathub/wildcat/core/event"
)

// GroupInfoOf turns whatsmeow's view of a group into the event model's.
func GroupInfoOf(info *types.GroupInfo) *event.GroupInfo {
	if info == nil {
		return nil
	}
	g := &event.GroupInfo{
		JID:          jidString(info.JID),
		Name:         info.Name,
		Topic:        info.Topic,
		Owner:        jidString(info.OwnerJID),
		OwnerPN:      jidString(info.OwnerPN),
		CreatedAt:    utc(info.GroupCreated),
		Locked:       info.IsLocked,
		Announce:     info.IsAnnounce,
		JoinApproval: info.IsJoinApprovalRequired,
		Community:    jidString(info.LinkedParentJID),
		Participants: make([]event.GroupParticipant, 0, len(info.Participants)),
	}
	if g.OwnerPN == "" && info.OwnerJID.Server == types.DefaultUserServer {
		g.OwnerPN = g.Owner
	}
	if info.IsEphemeral {
		g.EphemeralSeconds = info.DisappearingTimer
	}
	for _, p := range info.Participants {
		if p.Error != 0 {
			continue // a create that could not add them
		}
		role := event.GroupMember
		switch {
		case p.IsSuperAdmin:
			role = event.GroupSuperAdmin
		case p.IsAdmin:
			role = event.GroupAdmin
		}
		g.Participants = append(g.Participants, event.GroupParticipant{
			JID: jidString(p.JID), PN: jidString(p.PhoneNumber), LID: jidString(p.LID), Role: role,
		})
	}
	sanitizeStrings(reflect.ValueOf(g))
	return g
}

// participantForms lists each JID named in a membership change once, with
// the phone-number or LID form it is in; the driver fills in the other
// form where the auth store knows it.
func participantForms(lists ...[]types.JID) []event.GroupParticipant {
	var out []event.GroupParticipant
	seen := map[types.JID]bool{}
	for _, l := range lists {
		for _, j := range l {
			j = j.ToNonAD()
			if j.IsEmpty() || seen[j] {
				continue
			}
			seen[j] = true
			p := event.GroupParticipant{JID: jidString(j)}
			p.LID, p.PN = splitAddress(j)
			out = append(out, p)
		}
	}
	return out
}

// isOwn reports whether j is the account itself.
func (n *Normalizer) isOwn(j types.JID) bool {
	j = j.ToNonAD()
	return !j.IsEmpty() && ((!n.Own.IsEmpty() && j.User == n.Own.User && j.Server == n.Own.Server) ||
		(!n.OwnLID.IsEmpty() && j.User == n.OwnLID.User && j.Server == n.OwnLID.Server))
}

// selfChange is how a group change alters the account's own membership.
func (n *Normalizer) selfChange(evt *events.GroupInfo) string {
	if slices.ContainsFunc(evt.Join, n.isOwn) {
		if evt.JoinReason == "invite" {
			return event.GroupSelfJoined
		}
		return event.GroupSelfAdded
	}
	if slices.ContainsFunc(evt.Leave, n.isOwn) {
		if (evt.Sender != nil && n.isOwn(*evt.Sender)) || (evt.SenderPN != nil && n.isOwn(*evt.SenderPN)) {
			return event.GroupSelfLeft
		}
		return event.GroupSelfRemoved
	}
	return ""
}

// JoinedGroup normalises the account joining a group: created by it or
// someone else with it in, added to an existing one, or joined by invite
// link. The event carries the whole group (Info).
func (n *Normalizer) JoinedGroup(evt *events.JoinedGroup) (*event.Event, error) {
	if evt == nil {
		return nil, errors.New("normalise joined group: nil event")
	}
	if n.AccountID == "" {
		return nil, errors.New("normalise joined group: empty account id")
	}
	g := &event.GroupUpdate{
		JID:        jidString(evt.JID),
		Self:       event.GroupSelfAdded,
		JoinReason: evt.Reason,
		Info:       GroupInfoOf(&evt.GroupInfo),
	}
	if evt.Reason == "invite" {
		g.Self = event.GroupSelfJoined
	}
	if evt.Sender != nil {
		g.Actor = jidString(*evt.Sender)
		if evt.Sender.Server == types.HiddenUserServer {
			g.ActorLID = g.Actor
		}
	}
	if evt.SenderPN != nil {
		g.ActorPN = jidString(*evt.SenderPN)
	}
	// A new group's creation time is when the account joined; otherwise
	// the notification carries no time of its own.
	at := n.now()
	if evt.Type == "new" && !evt.GroupCreated.IsZero() {
		at = evt.GroupCreated
	}
	return n.groupEvent(at, g), nil
}

// Picture normalises a group picture change; a user's profile picture is
// not a group event (nil, nil).
func (n *Normalizer) Picture(evt *events.Picture) (*event.Event, error) {
	if evt == nil {
		return nil, errors.New("normalise picture: nil event")
	}
	if n.AccountID == "" {
		return nil, errors.New("normalise picture: empty account id")
	}
	if evt.JID.Server != types.GroupServer {
		return nil, nil
	}
	g := &event.GroupUpdate{
		JID:            jidString(evt.JID),
		Actor:          jidString(evt.Author),
		PictureID:      evt.PictureID,
		PictureRemoved: evt.Remove,
	}
	if g.PictureRemoved {
		g.PictureID = ""
	}
	g.ActorLID, g.ActorPN = splitAddress(evt.Author)
	at := evt.Timestamp
	if at.IsZero() {
		at = n.now()
	}
	return n.groupEvent(at, g), nil
}

func (n *Normalizer) groupEvent(at time.Time, g *event.GroupUpdate) *event.Event {
	sanitizeStrings(reflect.ValueOf(g))
	return &event.Event{
		ID:        event.GroupEventID(n.AccountID, at, g),
		Kind:      event.KindGroupUpdate,
		AccountID: n.AccountID,
		Timestamp: utc(at),
		ChatID:    g.JID,
		Source:    n.source(),
		Group:     g,
	}
}
