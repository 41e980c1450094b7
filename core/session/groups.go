package session

// Groups, polls, status posts and channels: the contract between the
// groups API and the drivers. A driver's Session implements GroupSession
// (and ChannelSession) when it can; the API answers 501 for a session that
// does not. Events about groups (group.update) go through the Sink like
// every other event.

import (
	"context"
	"errors"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// GroupSession manages the groups an account is in. groupJID is always a
// group JID (…@g.us); participants are user JIDs (phone number or LID
// form) — callers resolve phone numbers first. A change made here is also
// reported as a group.update event through the Sink, as WhatsApp reports
// it to every member.
type GroupSession interface {
	// JoinedGroups lists the groups the account is a member of.
	JoinedGroups(ctx context.Context) ([]*event.GroupInfo, error)
	// GroupInfo returns one group; ErrGroupNotFound if there is none or
	// the account is not in it.
	GroupInfo(ctx context.Context, groupJID string) (*event.GroupInfo, error)
	// CreateGroup creates a group with the account as its super-admin.
	CreateGroup(ctx context.Context, req CreateGroupRequest) (*event.GroupInfo, error)
	// LeaveGroup leaves a group.
	LeaveGroup(ctx context.Context, groupJID string) error

	// SetGroupSubject, SetGroupDescription and SetGroupPicture change the
	// group's info; ErrNotGroupAdmin when the group is locked and the
	// account is not an admin. An empty description removes it; a nil
	// picture removes it; otherwise it is a JPEG and the new picture's ID
	// is returned.
	SetGroupSubject(ctx context.Context, groupJID, subject string) error
	SetGroupDescription(ctx context.Context, groupJID, description string) error
	SetGroupPicture(ctx context.Context, groupJID string, jpeg []byte) (pictureID string, err error)
	// SetGroupAnnounce makes only admins able to send (on) or everyone;
	// SetGroupLocked makes only admins able to edit the info (on) or
	// everyone; SetGroupJoinApproval makes new members need approval.
	SetGroupAnnounce(ctx context.Context, groupJID string, on bool) error
	SetGroupLocked(ctx context.Context, groupJID string, on bool) error
	SetGroupJoinApproval(ctx context.Context, groupJID string, on bool) error

	// UpdateGroupParticipants adds, removes, promotes or demotes
	// participants and returns WhatsApp's result for each, in order.
	UpdateGroupParticipants(ctx context.Context, groupJID string, action ParticipantAction, participants []string) ([]ParticipantResult, error)

	// GroupInviteLink returns the group's invite link
	// (https://chat.whatsapp.com/<code>); reset revokes the old one first.
	GroupInviteLink(ctx context.Context, groupJID string, reset bool) (string, error)
	// GroupInfoFromLink previews the group an invite code or link leads to;
	// ErrInviteInvalid if it was revoked or never existed.
	GroupInfoFromLink(ctx context.Context, code string) (*event.GroupInfo, error)
	// JoinGroupWithLink joins by invite code or link and returns the
	// group's JID. When the group needs approval the result is
	// ErrJoinRequested (the request was sent).
	JoinGroupWithLink(ctx context.Context, code string) (groupJID string, err error)

	// GroupJoinRequests lists pending requests to join a group that needs
	// approval; UpdateGroupJoinRequests approves or rejects some.
	GroupJoinRequests(ctx context.Context, groupJID string) ([]JoinRequest, error)
	UpdateGroupJoinRequests(ctx context.Context, groupJID string, approve bool, participants []string) ([]ParticipantResult, error)
}

// CreateGroupRequest is a new group.
type CreateGroupRequest struct {
	Name         string
	Participants []string
}

// ParticipantAction is what UpdateGroupParticipants does.
type ParticipantAction string

const (
	ParticipantAdd     ParticipantAction = "add"
	ParticipantRemove  ParticipantAction = "remove"
	ParticipantPromote ParticipantAction = "promote"
	ParticipantDemote  ParticipantAction = "demote"
)

// ParticipantResult is WhatsApp's answer for one participant of a
// membership change.
type ParticipantResult struct {
	JID    string            `json:"jid"`
	Status ParticipantStatus `json:"status"`
	// InviteCode is set with ParticipantInviteSent: WhatsApp did not add
	// the person (their privacy settings) and an invite can be sent
	// instead; InviteExpires says until when it is valid.
	InviteCode    string    `json:"inviteCode,omitempty"`
	InviteExpires time.Time `json:"inviteExpires,omitzero"`
}

// ParticipantStatus is the outcome for one participant.
type ParticipantStatus string

const (
	ParticipantOK ParticipantStatus = "ok"
	// ParticipantAlreadyIn: add of a member, or approve of one.
	ParticipantAlreadyIn ParticipantStatus = "already_in"
	// ParticipantNotIn: remove, promote or demote of a non-member.
	ParticipantNotIn ParticipantStatus = "not_in_group"
	// ParticipantNotAllowed: WhatsApp refused (e.g. they left recently, or
	// the account may not change this participant).
	ParticipantNotAllowed ParticipantStatus = "not_allowed"
	// ParticipantInviteSent: their privacy settings prevent adding them;
	// see ParticipantResult.InviteCode.
	ParticipantInviteSent ParticipantStatus = "invite_required"
	// ParticipantNotOnWhatsApp: no WhatsApp account has this JID.
	ParticipantNotOnWhatsApp ParticipantStatus = "not_on_whatsapp"
	// ParticipantGroupFull: the group reached its size limit.
	ParticipantGroupFull ParticipantStatus = "group_full"
	// ParticipantFailed: any other error WhatsApp gave.
	ParticipantFailed ParticipantStatus = "failed"
)

// JoinRequest is a pending request to join a group.
type JoinRequest struct {
	JID         string    `json:"jid"`
	PN          string    `json:"pn,omitempty"`
	RequestedAt time.Time `json:"requestedAt"`
}

// MaxGroupSubject and MaxGroupDescription are WhatsApp's limits in
// characters (runes); MaxGroupSize its largest group.
const (
	MaxGroupSubject     = 100
	MaxGroupDescription = 2048
	MaxGroupSize        = 1024
)

// Errors of group calls; the API answers with the status named.
var (
	// ErrGroupNotFound: no such group, or the account is not in it. 404.
	ErrGroupNotFound = errors.New("group not found or the account is not in it")
	// ErrNotGroupAdmin: the change needs admin rights in the group. 403.
	ErrNotGroupAdmin = errors.New("the account is not an admin of the group")
	// ErrGroupFull: the group is at its size limit. 409.
	ErrGroupFull = errors.New("the group is full")
	// ErrInviteInvalid: the invite link was revoked or never existed. 404.
	ErrInviteInvalid = errors.New("invite link is invalid or was revoked")
	// ErrJoinRequested: the group needs approval; a request was sent. 202.
	ErrJoinRequested = errors.New("the group needs an admin's approval; a join request was sent")
)

// PollSend is a poll to send (SendRequest.Poll). The driver keeps the
// poll's secret so that votes on it can be decrypted.
type PollSend struct {
	Name    string
	Options []string
	// SelectableCount is how many options a voter may pick; 0 means any.
	SelectableCount uint32
}

// ChannelSession reads the channels (newsletters) the account follows.
type ChannelSession interface {
	// Channels lists the channels the account follows.
	Channels(ctx context.Context) ([]*Channel, error)
	// ChannelMessages returns up to count messages of a channel, newest
	// first, before the server ID before (0: the newest).
	ChannelMessages(ctx context.Context, channelJID string, count int, before int) ([]*event.Message, error)
}

// Channel is a WhatsApp channel (newsletter).
type Channel struct {
	JID         string `json:"jid"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Subscribers int    `json:"subscribers"`
	// Role is the account's role: subscriber, admin or owner.
	Role string `json:"role"`
}
