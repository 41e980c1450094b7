package sim

import (
	"context"
	"time"
)

// Group is a sim group as the network keeps it: one record shared by
// every member, stored so that groups outlive the daemon.
type Group struct {
	JID       string    `json:"jid" bson:"_id"`
	Name      string    `json:"name" bson:"name"`
	Topic     string    `json:"topic,omitempty" bson:"topic,omitempty"`
	Owner     string    `json:"owner" bson:"owner"`
	CreatedAt time.Time `json:"createdAt" bson:"createdAt"`
	// Locked: only admins edit the info; Announce: only admins send;
	// JoinApproval: joining by link needs an admin's approval.
	Locked       bool   `json:"locked,omitempty" bson:"locked,omitempty"`
	Announce     bool   `json:"announce,omitempty" bson:"announce,omitempty"`
	JoinApproval bool   `json:"joinApproval,omitempty" bson:"joinApproval,omitempty"`
	PictureID    string `json:"pictureId,omitempty" bson:"pictureId,omitempty"`
	// InviteCode is the current invite link's code; empty until asked for.
	InviteCode string `json:"inviteCode,omitempty" bson:"inviteCode,omitempty"`
	// Invites counts the codes issued (InviteCodeFor).
	Invites int `json:"invites,omitempty" bson:"invites,omitempty"`
	// Members in the order they joined; JID is the phone-number form, or
	// the LID for a contact known only by it.
	Members  []Member      `json:"members" bson:"members"`
	Requests []JoinRequest `json:"requests,omitempty" bson:"requests,omitempty"`
	// Seq counts changes; UpdatedAt is the last one's time.
	Seq       int64     `json:"seq" bson:"seq"`
	UpdatedAt time.Time `json:"updatedAt" bson:"updatedAt"`
}

// Member is one participant of a sim group.
type Member struct {
	JID  string `json:"jid" bson:"jid"`
	Role string `json:"role" bson:"role"` // member, admin, superadmin
}

// JoinRequest is a pending request to join a sim group.
type JoinRequest struct {
	JID string    `json:"jid" bson:"jid"`
	At  time.Time `json:"at" bson:"at"`
}

// GroupStore keeps the sim network's groups.
type GroupStore interface {
	// Groups returns every stored group.
	Groups(ctx context.Context) ([]*Group, error)
	// SaveGroup stores (or replaces) a group.
	SaveGroup(ctx context.Context, g *Group) error
}

// clone is a deep copy, so a change can be prepared and stored before the
// network's copy is replaced.
func (g *Group) clone() *Group {
	c := *g
	c.Members = append([]Member(nil), g.Members...)
	c.Requests = append([]JoinRequest(nil), g.Requests...)
	return &c
}
