package watest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// Groups, as WhatsApp's group server keeps them: members with roles,
// subject, description, picture, settings, an invite code and pending join
// requests. Members are phone-number JIDs without a device: contacts and
// paired accounts alike. Every change is announced to the member accounts
// with a w:gp2 notification (a "create" one to an account that joins), which
// whatsmeow turns into events.GroupInfo or events.JoinedGroup.

// Participant error codes of group membership changes, as WhatsApp answers
// them per participant.
const (
	GroupErrNotAllowed   = 403 // privacy settings: an invite is returned instead
	GroupErrNotFound     = 404 // not on WhatsApp (add), or not a member (remove, promote, demote)
	GroupErrRecentlyLeft = 408 // left recently and cannot be added back yet
	GroupErrAlreadyIn    = 409 // already a member
	GroupErrFull         = 419 // the group is at its size limit
)

// Roles of group members.
const (
	RoleMember     = ""
	RoleAdmin      = "admin"
	RoleSuperAdmin = "superadmin"
)

type groupMember struct {
	jid  types.JID
	role string
}

type joinRequest struct {
	jid types.JID
	at  time.Time
}

// group is one group; guarded by srv.mu.
type group struct {
	jid       types.JID
	subject   string
	subjectAt time.Time
	subjectBy types.JID
	desc      string
	descID    string
	creator   types.JID
	created   time.Time
	members   []*groupMember
	announce  bool
	locked    bool
	approval  bool
	invite    string
	revoked   []string
	pictureID string
	requests  []joinRequest
	sizeLimit int
	left      map[types.JID]bool // left on their own: cannot be added back (408)
	plainAdds bool               // newcomers get the "add" notification, not "create"
}

// Group is a test's handle on a group of the double.
type Group struct {
	srv *Server
	jid types.JID
}

// JID is the group's JID (…@g.us).
func (g *Group) JID() types.JID { return g.jid }

// Group returns the group with the given JID, or nil.
func (s *Server) Group(jid types.JID) *Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups[jid.User] == nil {
		return nil
	}
	return &Group{srv: s, jid: jid}
}

// WaitGroup waits until a group named subject exists and returns it.
func (s *Server) WaitGroup(ctx context.Context, subject string) (*Group, error) {
	var found types.JID
	err := s.waitFor(ctx, "a group named "+subject, func() bool {
		for _, g := range s.groups {
			if g.subject == subject {
				found = g.jid
				return true
			}
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	return &Group{srv: s, jid: found}, nil
}

// GroupMember is a member of a group as the double holds it.
type GroupMember struct {
	JID  types.JID
	Role string
}

// Members lists the group's members and their roles.
func (g *Group) Members() []GroupMember {
	g.srv.mu.Lock()
	defer g.srv.mu.Unlock()
	gr := g.srv.groups[g.jid.User]
	if gr == nil {
		return nil
	}
	out := make([]GroupMember, len(gr.members))
	for i, m := range gr.members {
		out[i] = GroupMember{JID: m.jid, Role: m.role}
	}
	return out
}

// Subject is the group's subject.
func (g *Group) Subject() string {
	g.srv.mu.Lock()
	defer g.srv.mu.Unlock()
	if gr := g.srv.groups[g.jid.User]; gr != nil {
		return gr.subject
	}
	return ""
}

// SetSizeLimit makes the group full at n members; adds beyond it answer
// GroupErrFull.
func (g *Group) SetSizeLimit(n int) {
	g.srv.mu.Lock()
	defer g.srv.mu.Unlock()
	if gr := g.srv.groups[g.jid.User]; gr != nil {
		gr.sizeLimit = n
	}
}

// CreateGroup makes the contact create a group with the given members
// (accounts or contacts, by phone-number JID); the contact is its
// super-admin. Member accounts are told as WhatsApp tells them: a "create"
// notification (events.JoinedGroup).
func (c *Contact) CreateGroup(ctx context.Context, subject string, members ...types.JID) (*Group, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := c.srv
	s.mu.Lock()
	g := s.newGroupLocked(subject, c.jid)
	for _, m := range members {
		g.members = append(g.members, &groupMember{jid: m.ToNonAD()})
	}
	s.mu.Unlock()
	s.notifyCreate(g.jid, c.jid, "", g.memberJIDs())
	return &Group{srv: s, jid: g.jid}, nil
}

// AddToGroup makes the contact (an admin of the group) add members; each
// member account is told with an "add" notification.
func (c *Contact) AddToGroup(ctx context.Context, g *Group, members ...types.JID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := c.srv
	s.mu.Lock()
	gr := s.groups[g.jid.User]
	if gr == nil || gr.member(c.jid) == nil || gr.member(c.jid).role == RoleMember {
		s.mu.Unlock()
		return fmt.Errorf("watest: %s is not an admin of %s", c.jid, g.jid)
	}
	var added []types.JID
	for _, m := range members {
		m = m.ToNonAD()
		if gr.member(m) == nil {
			gr.members = append(gr.members, &groupMember{jid: m})
			added = append(added, m)
		}
	}
	s.mu.Unlock()
	s.announceMembership(g.jid, c.jid, "add", "", added)
	return nil
}

// JoinGroupWithLink makes the contact join a group by its invite code.
// When the group needs approval the contact's request waits for an admin
// (GroupJoinRequests) and JoinGroupWithLink reports false.
func (c *Contact) JoinGroupWithLink(ctx context.Context, code string) (joined bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s := c.srv
	code = strings.TrimPrefix(code, "https://chat.whatsapp.com/")
	s.mu.Lock()
	gr := s.groupByInviteLocked(code)
	if gr == nil {
		s.mu.Unlock()
		return false, fmt.Errorf("watest: no group has invite code %q", code)
	}
	if gr.member(c.jid) != nil {
		s.mu.Unlock()
		return true, nil
	}
	if gr.approval {
		gr.requests = append(gr.requests, joinRequest{jid: c.jid, at: time.Now()})
		s.mu.Unlock()
		return false, nil
	}
	gr.members = append(gr.members, &groupMember{jid: c.jid})
	jid := gr.jid
	s.mu.Unlock()
	s.announceMembership(jid, c.jid, "add", "invite", []types.JID{c.jid})
	return true, nil
}

// LeaveGroup makes the contact leave the group.
func (c *Contact) LeaveGroup(ctx context.Context, g *Group) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := c.srv
	s.mu.Lock()
	gr := s.groups[g.jid.User]
	if gr == nil || gr.member(c.jid) == nil {
		s.mu.Unlock()
		return fmt.Errorf("watest: %s is not in %s", c.jid, g.jid)
	}
	gr.removeMember(c.jid)
	gr.left[c.jid] = true
	recipients := gr.accountMembersLocked(s)
	s.mu.Unlock()
	s.announceTo(recipients, g.jid, c.jid, []waBinary.Node{participantsNode("remove", "", []types.JID{c.jid})})
	return nil
}

func (s *Server) newGroupLocked(subject string, creator types.JID) *group {
	s.nextGroup++
	now := time.Now()
	g := &group{
		jid:       types.NewJID(fmt.Sprintf("120363%012d", s.nextGroup), types.GroupServer),
		subject:   subject,
		subjectAt: now,
		subjectBy: creator,
		creator:   creator,
		created:   now,
		members:   []*groupMember{{jid: creator, role: RoleSuperAdmin}},
		invite:    inviteCode(),
		left:      map[types.JID]bool{},
	}
	s.groups[g.jid.User] = g
	s.notify()
	return g
}

func inviteCode() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := randomBytes(22)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (g *group) member(jid types.JID) *groupMember {
	for _, m := range g.members {
		if m.jid == jid {
			return m
		}
	}
	return nil
}

func (g *group) removeMember(jid types.JID) {
	g.members = slices.DeleteFunc(g.members, func(m *groupMember) bool { return m.jid == jid })
}

func (g *group) memberJIDs() []types.JID {
	out := make([]types.JID, len(g.members))
	for i, m := range g.members {
		out[i] = m.jid
	}
	return out
}

// accountMembersLocked lists the member accounts.
func (g *group) accountMembersLocked(s *Server) []*Account {
	var out []*Account
	for _, m := range g.members {
		if a := s.accountByJIDLocked(m.jid); a != nil {
			out = append(out, a)
		}
	}
	return out
}

func (s *Server) groupByInviteLocked(code string) *group {
	for _, g := range s.groups {
		if g.invite == code {
			return g
		}
	}
	return nil
}

// node renders the group as WhatsApp's group server describes it.
func (g *group) node() waBinary.Node {
	attrs := waBinary.Attrs{
		"id":       g.jid.User,
		"subject":  g.subject,
		"s_t":      strconv.FormatInt(g.subjectAt.Unix(), 10),
		"s_o":      g.subjectBy,
		"creation": strconv.FormatInt(g.created.Unix(), 10),
		"creator":  g.creator,
		"size":     strconv.Itoa(len(g.members)),
	}
	var children []waBinary.Node
	for _, m := range g.members {
		p := waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": m.jid}}
		if m.role != RoleMember {
			p.Attrs["type"] = m.role
		}
		children = append(children, p)
	}
	if g.desc != "" {
		children = append(children, waBinary.Node{
			Tag:     "description",
			Attrs:   waBinary.Attrs{"id": g.descID, "t": strconv.FormatInt(time.Now().Unix(), 10)},
			Content: []waBinary.Node{{Tag: "body", Content: []byte(g.desc)}},
		})
	}
	if g.announce {
		children = append(children, waBinary.Node{Tag: "announcement"})
	}
	if g.locked {
		children = append(children, waBinary.Node{Tag: "locked"})
	}
	if g.approval {
		children = append(children, waBinary.Node{Tag: "membership_approval_mode", Content: []waBinary.Node{
			{Tag: "group_join", Attrs: waBinary.Attrs{"state": "on"}},
		}})
	}
	return waBinary.Node{Tag: "group", Attrs: attrs, Content: children}
}

func participantsNode(tag, reason string, jids []types.JID) waBinary.Node {
	n := waBinary.Node{Tag: tag}
	if reason != "" {
		n.Attrs = waBinary.Attrs{"reason": reason}
	}
	var ps []waBinary.Node
	for _, j := range jids {
		ps = append(ps, waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": j}})
	}
	n.Content = ps
	return n
}

// announceTo delivers a w:gp2 notification about the group to accounts.
func (s *Server) announceTo(to []*Account, groupJID, actor types.JID, children []waBinary.Node) {
	for _, a := range to {
		id := s.newID("gp2-")
		attrs := waBinary.Attrs{
			"from": groupJID,
			"id":   id,
			"type": "w:gp2",
			"t":    strconv.FormatInt(time.Now().Unix(), 10),
		}
		if !actor.IsEmpty() {
			attrs["participant"] = actor
		}
		s.deliver(&delivery{key: notificationKey(id), id: id, to: a, node: waBinary.Node{
			Tag: "notification", Attrs: attrs, Content: children,
		}})
	}
}

// announceMembership tells every member account about added (tag add) or
// other membership changes; accounts among added get a "create"
// notification with the whole group instead, as WhatsApp sends the newly
// joined.
func (s *Server) announceMembership(groupJID, actor types.JID, tag, reason string, jids []types.JID) {
	if len(jids) == 0 {
		return
	}
	s.mu.Lock()
	gr := s.groups[groupJID.User]
	if gr == nil {
		s.mu.Unlock()
		return
	}
	var others []*Account
	var newcomers []types.JID
	for _, a := range gr.accountMembersLocked(s) {
		if tag == "add" && !gr.plainAdds && slices.Contains(jids, a.jid.ToNonAD()) {
			newcomers = append(newcomers, a.jid.ToNonAD())
			continue
		}
		others = append(others, a)
	}
	s.mu.Unlock()
	s.announceTo(others, groupJID, actor, []waBinary.Node{participantsNode(tag, reason, jids)})
	if len(newcomers) > 0 {
		s.notifyCreate(groupJID, actor, reason, newcomers)
	}
}

// notifyCreate sends the member accounts among to a "create" notification
// carrying the whole group (whatsmeow: events.JoinedGroup).
func (s *Server) notifyCreate(groupJID, actor types.JID, reason string, to []types.JID) {
	s.mu.Lock()
	gr := s.groups[groupJID.User]
	if gr == nil {
		s.mu.Unlock()
		return
	}
	var accts []*Account
	for _, j := range to {
		if a := s.accountByJIDLocked(j); a != nil {
			accts = append(accts, a)
		}
	}
	create := waBinary.Node{Tag: "create", Attrs: waBinary.Attrs{}, Content: []waBinary.Node{gr.node()}}
	if reason != "" {
		create.Attrs["reason"] = reason
	}
	s.mu.Unlock()
	s.announceTo(accts, groupJID, actor, []waBinary.Node{create})
}

// InviteLink is the group's current invite link.
func (g *Group) InviteLink() string {
	g.srv.mu.Lock()
	defer g.srv.mu.Unlock()
	if gr := g.srv.groups[g.jid.User]; gr != nil {
		return "https://chat.whatsapp.com/" + gr.invite
	}
	return ""
}

// RequireApproval makes new members of the group need an admin's approval.
func (g *Group) RequireApproval() error {
	g.srv.mu.Lock()
	defer g.srv.mu.Unlock()
	gr := g.srv.groups[g.jid.User]
	if gr == nil {
		return fmt.Errorf("watest: no group %s", g.jid)
	}
	gr.approval = true
	return nil
}

// TellNewcomersByAdd makes accounts added to the group hear of it from the
// same "add" notification as the other members (events.GroupInfo naming
// them in Join), without the group's info, instead of a "create"
// notification (events.JoinedGroup).
func (g *Group) TellNewcomersByAdd() {
	g.srv.mu.Lock()
	defer g.srv.mu.Unlock()
	if gr := g.srv.groups[g.jid.User]; gr != nil {
		gr.plainAdds = true
	}
}
