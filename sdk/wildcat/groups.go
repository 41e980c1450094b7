package wildcat

import (
	"context"
	"net/http"
	"time"
)

// Group is a WhatsApp group an account is in.
type Group struct {
	JID              string             `json:"jid"`
	Name             string             `json:"name"`
	Topic            string             `json:"topic,omitempty"`
	Owner            string             `json:"owner,omitempty"`
	OwnerPN          string             `json:"ownerPn,omitempty"`
	Locked           bool               `json:"locked"`
	Announce         bool               `json:"announce"`
	JoinApproval     bool               `json:"joinApproval"`
	EphemeralSeconds int                `json:"ephemeralSeconds,omitempty"`
	Community        string             `json:"community,omitempty"`
	PictureID        string             `json:"pictureId,omitempty"`
	Participants     []GroupParticipant `json:"participants"`
	CreatedAt        time.Time          `json:"createdAt,omitzero"`
}

// GroupParticipant is a member of a group; Role is member, admin or
// superadmin.
type GroupParticipant struct {
	JID  string `json:"jid"`
	LID  string `json:"lid,omitempty"`
	PN   string `json:"pn,omitempty"`
	Role string `json:"role,omitempty"`
}

// CreateGroup is the body of CreateGroup: a subject and the phone numbers
// or JIDs of the first participants.
type CreateGroup struct {
	Subject      string   `json:"subject"`
	Participants []string `json:"participants"`
}

// Groups lists the groups an account is in.
func (c *Client) Groups(ctx context.Context, account string) ([]Group, error) {
	var out struct {
		Groups []Group `json:"groups"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + esc(account) + "/groups"}, &out)
	return out.Groups, err
}

// Group returns one group by its JID (…@g.us).
func (c *Client) Group(ctx context.Context, account, groupJID string) (*Group, error) {
	var g Group
	if err := c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + esc(account) + "/groups/" + esc(groupJID)}, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// CreateGroup creates a group with the account as its owner.
func (c *Client) CreateGroup(ctx context.Context, account string, in CreateGroup) (*Group, error) {
	var g Group
	if err := c.do(ctx, request{method: http.MethodPost, path: "/accounts/" + esc(account) + "/groups", body: in}, &g); err != nil {
		return nil, err
	}
	return &g, nil
}
