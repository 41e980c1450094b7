package event

import "time"

// Presence is a contact coming online or going offline.
type Presence struct {
	JID       string `json:"jid" bson:"jid"`
	Available bool   `json:"available" bson:"available"`
	// LastSeen is nil when the contact hides it.
	LastSeen *time.Time `json:"lastSeen,omitempty" bson:"lastSeen,omitempty"`
}

// TypingState is what a chat participant is doing.
type TypingState string

const (
	TypingComposing TypingState = "composing" // typing text
	TypingRecording TypingState = "recording" // recording a voice note
	TypingPaused    TypingState = "paused"    // stopped
)

// Typing is a chat-presence update ("is typing...").
type Typing struct {
	ChatID string      `json:"chatId" bson:"chatId"`
	From   string      `json:"from" bson:"from"`
	FromPN string      `json:"fromPn,omitempty" bson:"fromPn,omitempty"`
	State  TypingState `json:"state" bson:"state"`
}

// GroupUpdate is a change to a group's metadata or membership. Only the
// fields that changed are set; pointer fields distinguish "set to false"
// from "unchanged".
type GroupUpdate struct {
	JID          string `json:"jid" bson:"jid"`
	Actor        string `json:"actor,omitempty" bson:"actor,omitempty"` // who made the change
	ActorPN      string `json:"actorPn,omitempty" bson:"actorPn,omitempty"`
	Name         string `json:"name,omitempty" bson:"name,omitempty"`
	Topic        string `json:"topic,omitempty" bson:"topic,omitempty"`
	TopicDeleted bool   `json:"topicDeleted,omitempty" bson:"topicDeleted,omitempty"`
	// Locked: only admins may edit group info. Announce: only admins may send.
	Locked   *bool `json:"locked,omitempty" bson:"locked,omitempty"`
	Announce *bool `json:"announce,omitempty" bson:"announce,omitempty"`
	// EphemeralSeconds is the disappearing-messages timer; 0 turns it off.
	EphemeralSeconds *uint32 `json:"ephemeralSeconds,omitempty" bson:"ephemeralSeconds,omitempty"`
	Deleted          bool    `json:"deleted,omitempty" bson:"deleted,omitempty"`
	InviteLink       string  `json:"inviteLink,omitempty" bson:"inviteLink,omitempty"`
	JoinReason       string  `json:"joinReason,omitempty" bson:"joinReason,omitempty"`

	// ActorLID is the actor's LID when WhatsApp names the actor by both forms.
	ActorLID string `json:"actorLid,omitempty" bson:"actorLid,omitempty"`
	// PictureID is the group's new picture; PictureRemoved says it was removed.
	PictureID      string `json:"pictureId,omitempty" bson:"pictureId,omitempty"`
	PictureRemoved bool   `json:"pictureRemoved,omitempty" bson:"pictureRemoved,omitempty"`
	// JoinApproval: new members need an admin's approval (nil: unchanged).
	JoinApproval *bool `json:"joinApproval,omitempty" bson:"joinApproval,omitempty"`

	// Membership changes, as participant JIDs in the form WhatsApp used
	// (phone number or LID). Added were added by Actor or joined by invite
	// link or approved request (JoinReason says which); Left left on their
	// own; Removed were removed by Actor.
	Added    []string `json:"added,omitempty" bson:"added,omitempty"`
	Left     []string `json:"left,omitempty" bson:"left,omitempty"`
	Removed  []string `json:"removed,omitempty" bson:"removed,omitempty"`
	Promoted []string `json:"promoted,omitempty" bson:"promoted,omitempty"`
	Demoted  []string `json:"demoted,omitempty" bson:"demoted,omitempty"`
	// Participants gives the phone-number and LID forms of each JID named
	// in Added, Left, Removed, Promoted and Demoted, where WhatsApp gives them.
	Participants []GroupParticipant `json:"participants,omitempty" bson:"participants,omitempty"`

	// Self says how this account's own membership changed: "added" (added
	// to the group, or created it), "joined" (by link), "removed" or "left";
	// empty when it did not change. With added or joined, Info is the whole
	// group as it is then.
	Self string     `json:"self,omitempty" bson:"self,omitempty"`
	Info *GroupInfo `json:"info,omitempty" bson:"info,omitempty"`
}

// Self membership changes (GroupUpdate.Self).
const (
	GroupSelfAdded   = "added"
	GroupSelfJoined  = "joined"
	GroupSelfRemoved = "removed"
	GroupSelfLeft    = "left"
)

// GroupInfo is a group as it is now: what the groups API returns and what
// a group.update carries when this account joins one.
type GroupInfo struct {
	JID string `json:"jid" bson:"jid"`
	// Name is the group's subject; Topic its description.
	Name      string    `json:"name" bson:"name"`
	Topic     string    `json:"topic,omitempty" bson:"topic,omitempty"`
	Owner     string    `json:"owner,omitempty" bson:"owner,omitempty"`
	OwnerPN   string    `json:"ownerPn,omitempty" bson:"ownerPn,omitempty"`
	CreatedAt time.Time `json:"createdAt,omitzero" bson:"createdAt,omitempty"`
	// Locked: only admins may edit group info. Announce: only admins may
	// send. JoinApproval: new members need an admin's approval.
	Locked           bool   `json:"locked" bson:"locked"`
	Announce         bool   `json:"announce" bson:"announce"`
	JoinApproval     bool   `json:"joinApproval" bson:"joinApproval"`
	EphemeralSeconds uint32 `json:"ephemeralSeconds,omitempty" bson:"ephemeralSeconds,omitempty"`
	PictureID        string `json:"pictureId,omitempty" bson:"pictureId,omitempty"`
	// Community is the parent community's JID, when the group is in one.
	Community    string             `json:"community,omitempty" bson:"community,omitempty"`
	Participants []GroupParticipant `json:"participants" bson:"participants"`
}

// GroupParticipant is one member of a group. JID is the form WhatsApp
// addresses them by in the group (phone number or LID); PN and LID are both
// forms where known.
type GroupParticipant struct {
	JID  string    `json:"jid" bson:"jid"`
	PN   string    `json:"pn,omitempty" bson:"pn,omitempty"`
	LID  string    `json:"lid,omitempty" bson:"lid,omitempty"`
	Role GroupRole `json:"role,omitempty" bson:"role,omitempty"`
}

// GroupRole is a participant's rights in a group.
type GroupRole string

const (
	GroupMember     GroupRole = "member"
	GroupAdmin      GroupRole = "admin"
	GroupSuperAdmin GroupRole = "superadmin" // the creator
)
