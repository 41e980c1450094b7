package sim

// Groups on the sim network. A group is one record shared by its members
// (Group), kept in the GroupStore and cached by the Network; every change
// is stored before it is reported. Each sim account of this network that
// is (or was, for a removal) in the group hears of the change as a
// group.update event: the account that made it at once, before the call
// returns, the others through their inbox, as WhatsApp notifies every
// member. Members that are not sim accounts are external contacts: they
// are in the group and can be made to speak (Inject), nothing more.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/bounded"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// InviteLinkPrefix starts every invite link.
const InviteLinkPrefix = "https://chat.whatsapp.com/"

// Join reasons on group.update (JoinReason).
const (
	JoinReasonInvite   = "invite"
	JoinReasonApproved = "approved"
)

// inviteCodePattern is the shape of an invite code (WhatsApp's are 22
// letters and digits).
var inviteCodePattern = bounded.MustCompile(`^[A-Za-z0-9_-]+$`, 8, 64)

// ParseInviteCode takes an invite code or link and returns the code;
// session.ErrInvalidRequest when it is neither.
func ParseInviteCode(s string) (string, error) {
	code := strings.TrimPrefix(strings.TrimSpace(s), InviteLinkPrefix)
	code = strings.TrimPrefix(code, "http://chat.whatsapp.com/")
	if !inviteCodePattern.MatchString(code) {
		return "", fmt.Errorf("%w: %q is not an invite code or %s<code> link", session.ErrInvalidRequest, s, InviteLinkPrefix)
	}
	return code, nil
}

// groupBook is the network's cache of the stored groups.
type groupBook struct {
	mu     sync.Mutex
	loaded bool
	byJID  map[string]*Group
}

// errNoGroupStore: the network was built without Options.Groups.
var errNoGroupStore = errors.New("sim network has no store for groups")

// loadGroups reads the stored groups once; the caller holds grp.mu.
func (n *Network) loadGroups(ctx context.Context) error {
	if n.grp.loaded {
		return nil
	}
	if n.opts.Groups == nil {
		return errNoGroupStore
	}
	all, err := n.opts.Groups.Groups(ctx)
	if err != nil {
		return fmt.Errorf("read sim groups: %w", err)
	}
	n.grp.byJID = make(map[string]*Group, len(all))
	for _, g := range all {
		n.grp.byJID[g.JID] = g
	}
	n.grp.loaded = true
	return nil
}

// group returns a copy of a stored group, nil when there is none.
func (n *Network) group(ctx context.Context, jid string) (*Group, error) {
	n.grp.mu.Lock()
	defer n.grp.mu.Unlock()
	if err := n.loadGroups(ctx); err != nil {
		return nil, err
	}
	if g := n.grp.byJID[jid]; g != nil {
		return g.clone(), nil
	}
	return nil, nil
}

// groupChange is what one change reports: the fields every member sees,
// and the own-membership change of the sim accounts it concerns.
type groupChange struct {
	update event.GroupUpdate
	self   map[string]string // member JID -> GroupSelf*
	// quiet: nothing to report (e.g. a join request).
	quiet bool
}

// change runs fn on a copy of the group jid, stores the copy and reports
// it. fn sees the group only if the acting account is a member (unless
// anyone is true) and returns what to report, or an error that leaves
// everything as it was.
func (n *Network) change(ctx context.Context, actor *Session, jid string, anyone bool, fn func(g *Group) (*groupChange, error)) (*Group, error) {
	n.grp.mu.Lock()
	if err := n.loadGroups(ctx); err != nil {
		n.grp.mu.Unlock()
		return nil, err
	}
	cur := n.grp.byJID[jid]
	if cur == nil || (!anyone && cur.member(actor.jid.String()) == nil) {
		n.grp.mu.Unlock()
		return nil, fmt.Errorf("group %s: %w", jid, session.ErrGroupNotFound)
	}
	before := cur.memberJIDs()
	g := cur.clone()
	ch, err := fn(g)
	if err != nil {
		n.grp.mu.Unlock()
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	g.Seq++
	g.UpdatedAt = now
	if err := n.opts.Groups.SaveGroup(ctx, g); err != nil {
		n.grp.mu.Unlock()
		return nil, err
	}
	n.grp.byJID[jid] = g
	n.grp.mu.Unlock()
	if ch == nil || ch.quiet {
		return g.clone(), nil
	}
	return g.clone(), n.report(ctx, actor, g, ch, append(before, g.memberJIDs()...), now)
}

// report emits the change to every sim account among audience: the actor
// now (its error is returned), the others through their inboxes.
func (n *Network) report(ctx context.Context, actor *Session, g *Group, ch *groupChange, audience []string, at time.Time) error {
	ch.update.JID = g.JID
	if ch.update.Actor == "" && actor != nil {
		ch.update.Actor, ch.update.ActorLID = actor.jid.String(), actor.lid.String()
	}
	ch.update.Participants = n.participantForms(ch.update)
	var actorErr error
	seen := map[string]bool{}
	for _, m := range audience {
		if seen[m] {
			continue
		}
		seen[m] = true
		j, err := types.ParseJID(m)
		if err != nil {
			continue
		}
		id, ok := n.accountFor(j)
		if !ok {
			continue
		}
		u := ch.update
		if self := ch.self[m]; self != "" {
			u.Self = self
			if self == event.GroupSelfAdded || self == event.GroupSelfJoined {
				u.Info = n.info(g)
			}
		}
		emit := func(ctx context.Context, s *Session) error {
			uc := u
			ev := &event.Event{
				ID: event.GroupEventID(s.acct.ID, at, &uc), Kind: event.KindGroupUpdate, AccountID: s.acct.ID,
				Timestamp: at, ChatID: g.JID, Source: event.SourcePhone, Group: &uc,
			}
			return s.sink.Emit(ctx, ev)
		}
		if actor != nil && id == actor.acct.ID {
			if err := emit(ctx, actor); err != nil {
				actorErr = fmt.Errorf("report group change: %w", err)
			}
			continue
		}
		n.inbox(id).add(time.Now(), emit)
	}
	return actorErr
}

// participantForms gives the PN and LID forms of every JID an update names.
func (n *Network) participantForms(u event.GroupUpdate) []event.GroupParticipant {
	var out []event.GroupParticipant
	seen := map[string]bool{}
	for _, list := range [][]string{u.Added, u.Left, u.Removed, u.Promoted, u.Demoted} {
		for _, j := range list {
			if !seen[j] {
				seen[j] = true
				out = append(out, n.forms(j, ""))
			}
		}
	}
	return out
}

// forms is a participant with both its addresses where the network knows
// them (a sim account's; a contact's own form).
func (n *Network) forms(jid string, role string) event.GroupParticipant {
	p := event.GroupParticipant{JID: jid, Role: event.GroupRole(role)}
	j, err := types.ParseJID(jid)
	if err != nil {
		return p
	}
	if id, ok := n.accountFor(j); ok {
		p.PN, p.LID = JID(id).String(), LID(id).String()
		return p
	}
	if j.Server == types.HiddenUserServer {
		p.LID = jid
	} else {
		p.PN = jid
	}
	return p
}

// info is the group as the API and a joining member's event show it.
func (n *Network) info(g *Group) *event.GroupInfo {
	gi := &event.GroupInfo{
		JID: g.JID, Name: g.Name, Topic: g.Topic, Owner: g.Owner, CreatedAt: g.CreatedAt,
		Locked: g.Locked, Announce: g.Announce, JoinApproval: g.JoinApproval, PictureID: g.PictureID,
		Participants: make([]event.GroupParticipant, 0, len(g.Members)),
	}
	if o := n.forms(g.Owner, ""); o.PN != "" {
		gi.OwnerPN = o.PN
	}
	for _, m := range g.Members {
		gi.Participants = append(gi.Participants, n.forms(m.JID, m.Role))
	}
	return gi
}

func (g *Group) member(jid string) *Member {
	for i := range g.Members {
		if g.Members[i].JID == jid {
			return &g.Members[i]
		}
	}
	return nil
}

func (g *Group) isAdmin(jid string) bool {
	m := g.member(jid)
	return m != nil && (m.Role == string(event.GroupAdmin) || m.Role == string(event.GroupSuperAdmin))
}

func (g *Group) memberJIDs() []string {
	out := make([]string, len(g.Members))
	for i, m := range g.Members {
		out[i] = m.JID
	}
	return out
}

func (g *Group) removeMember(jid string) {
	g.Members = slices.DeleteFunc(g.Members, func(m Member) bool { return m.JID == jid })
}

func (g *Group) removeRequest(jid string) bool {
	n := len(g.Requests)
	g.Requests = slices.DeleteFunc(g.Requests, func(r JoinRequest) bool { return r.JID == jid })
	return len(g.Requests) != n
}

// canonical is the form the network keeps a participant by: a sim
// account's phone-number JID whichever address names it; anyone else's
// JID as given.
func (n *Network) canonical(jid string) (string, error) {
	j, err := parseRecipient(jid)
	if err != nil {
		return "", err
	}
	if id, ok := n.accountFor(j); ok {
		return JID(id).String(), nil
	}
	return j.String(), nil
}

// online is nil when the session can act on the network.
func (s *Session) online() error {
	if s.getState() != stateConnected {
		return fmt.Errorf("sim account %q is not connected: %w", s.acct.ID, session.ErrWrongState)
	}
	return nil
}

// GroupJIDFor is the JID of the n-th group (from 1) accountID creates:
// derived like the accounts' own JIDs, so a story (the README, the API's
// examples) names the same group on every run.
func GroupJIDFor(accountID string, n int) string {
	return fmt.Sprintf("120363%012d@%s", idNumber(accountID, fmt.Sprintf("group:%d", n))%1_000_000_000_000, types.GroupServer)
}

const inviteAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// InviteCodeFor is the n-th invite code (from 1) of a group: a reset
// issues the next. Derived for the same reason as GroupJIDFor; the sim is
// no place for secrets.
func InviteCodeFor(groupJID string, n int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("invite:%s:%d", groupJID, n)))
	var b [22]byte
	for i := range b {
		b[i] = inviteAlphabet[int(sum[i])%len(inviteAlphabet)]
	}
	return string(b[:])
}

func newPictureID() string {
	v, _ := rand.Int(rand.Reader, big.NewInt(1_000_000_000_000))
	return fmt.Sprintf("%d", v.Int64()+1)
}

// JoinedGroups implements session.GroupSession.
func (s *Session) JoinedGroups(ctx context.Context) ([]*event.GroupInfo, error) {
	if err := s.online(); err != nil {
		return nil, err
	}
	n := s.n
	n.grp.mu.Lock()
	defer n.grp.mu.Unlock()
	if err := n.loadGroups(ctx); err != nil {
		return nil, err
	}
	out := []*event.GroupInfo{}
	for _, g := range n.grp.byJID {
		if g.member(s.jid.String()) != nil {
			out = append(out, n.info(g))
		}
	}
	slices.SortFunc(out, func(a, b *event.GroupInfo) int { return strings.Compare(a.JID, b.JID) })
	return out, nil
}

// GroupInfo implements session.GroupSession.
func (s *Session) GroupInfo(ctx context.Context, groupJID string) (*event.GroupInfo, error) {
	if err := s.online(); err != nil {
		return nil, err
	}
	g, err := s.n.group(ctx, groupJID)
	if err != nil {
		return nil, err
	}
	if g == nil || g.member(s.jid.String()) == nil {
		return nil, fmt.Errorf("group %s: %w", groupJID, session.ErrGroupNotFound)
	}
	return s.n.info(g), nil
}

// CreateGroup implements session.GroupSession: the account is the group's
// superadmin; every participant is added (there are no privacy settings
// on the sim).
func (s *Session) CreateGroup(ctx context.Context, req session.CreateGroupRequest) (*event.GroupInfo, error) {
	if err := s.online(); err != nil {
		return nil, err
	}
	n := s.n
	if req.Name == "" {
		return nil, fmt.Errorf("%w: a group needs a name", session.ErrInvalidRequest)
	}
	me := s.jid.String()
	now := time.Now().UTC().Truncate(time.Millisecond)
	g := &Group{Name: req.Name, Owner: me, CreatedAt: now, UpdatedAt: now, Seq: 1,
		Members: []Member{{JID: me, Role: string(event.GroupSuperAdmin)}}}
	var added []string
	for _, p := range req.Participants {
		j, err := n.canonical(p)
		if err != nil {
			return nil, err
		}
		if g.member(j) != nil {
			continue
		}
		g.Members = append(g.Members, Member{JID: j, Role: string(event.GroupMember)})
		added = append(added, j)
	}
	if len(g.Members) > session.MaxGroupSize {
		return nil, fmt.Errorf("%d members: %w", len(g.Members), session.ErrGroupFull)
	}
	n.grp.mu.Lock()
	if err := n.loadGroups(ctx); err != nil {
		n.grp.mu.Unlock()
		return nil, err
	}
	created := 1
	for _, o := range n.grp.byJID {
		if o.Owner == me {
			created++
		}
	}
	for g.JID = GroupJIDFor(s.acct.ID, created); n.grp.byJID[g.JID] != nil; created++ {
		g.JID = GroupJIDFor(s.acct.ID, created+1)
	}
	if err := n.opts.Groups.SaveGroup(ctx, g); err != nil {
		n.grp.mu.Unlock()
		return nil, err
	}
	n.grp.byJID[g.JID] = g
	n.grp.mu.Unlock()
	self := map[string]string{me: event.GroupSelfAdded}
	for _, a := range added {
		self[a] = event.GroupSelfAdded
	}
	ch := &groupChange{update: event.GroupUpdate{Name: g.Name, Added: added}, self: self}
	if err := n.report(ctx, s, g.clone(), ch, g.memberJIDs(), now); err != nil {
		return nil, err
	}
	return n.info(g), nil
}

// LeaveGroup implements session.GroupSession. When the last admin leaves,
// the longest-standing member becomes one, as on WhatsApp.
func (s *Session) LeaveGroup(ctx context.Context, groupJID string) error {
	if err := s.online(); err != nil {
		return err
	}
	me := s.jid.String()
	_, err := s.n.change(ctx, s, groupJID, false, func(g *Group) (*groupChange, error) {
		g.removeMember(me)
		ch := &groupChange{update: event.GroupUpdate{Left: []string{me}}, self: map[string]string{me: event.GroupSelfLeft}}
		if len(g.Members) > 0 && !slices.ContainsFunc(g.Members, func(m Member) bool { return g.isAdmin(m.JID) }) {
			g.Members[0].Role = string(event.GroupAdmin)
			ch.update.Promoted = []string{g.Members[0].JID}
		}
		return ch, nil
	})
	return err
}

// editInfo checks the right to change the group's info: any member, or
// only admins when the group is locked.
func (s *Session) editInfo(g *Group) error {
	if g.Locked && !g.isAdmin(s.jid.String()) {
		return fmt.Errorf("group %s is locked: %w", g.JID, session.ErrNotGroupAdmin)
	}
	return nil
}

func (s *Session) adminOnly(g *Group) error {
	if !g.isAdmin(s.jid.String()) {
		return fmt.Errorf("group %s: %w", g.JID, session.ErrNotGroupAdmin)
	}
	return nil
}

// SetGroupSubject implements session.GroupSession.
func (s *Session) SetGroupSubject(ctx context.Context, groupJID, subject string) error {
	if err := s.online(); err != nil {
		return err
	}
	if subject == "" {
		return fmt.Errorf("%w: a group needs a name", session.ErrInvalidRequest)
	}
	_, err := s.n.change(ctx, s, groupJID, false, func(g *Group) (*groupChange, error) {
		if err := s.editInfo(g); err != nil {
			return nil, err
		}
		g.Name = subject
		return &groupChange{update: event.GroupUpdate{Name: subject}}, nil
	})
	return err
}

// SetGroupDescription implements session.GroupSession.
func (s *Session) SetGroupDescription(ctx context.Context, groupJID, description string) error {
	if err := s.online(); err != nil {
		return err
	}
	_, err := s.n.change(ctx, s, groupJID, false, func(g *Group) (*groupChange, error) {
		if err := s.editInfo(g); err != nil {
			return nil, err
		}
		g.Topic = description
		return &groupChange{update: event.GroupUpdate{Topic: description, TopicDeleted: description == ""}}, nil
	})
	return err
}

// SetGroupPicture implements session.GroupSession. The sim keeps the
// picture's ID, not its bytes.
func (s *Session) SetGroupPicture(ctx context.Context, groupJID string, jpeg []byte) (string, error) {
	if err := s.online(); err != nil {
		return "", err
	}
	id := ""
	if jpeg != nil {
		if len(jpeg) < 3 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 || jpeg[2] != 0xFF {
			return "", fmt.Errorf("%w: the picture is not a JPEG", session.ErrInvalidRequest)
		}
		id = newPictureID()
	}
	_, err := s.n.change(ctx, s, groupJID, false, func(g *Group) (*groupChange, error) {
		if err := s.editInfo(g); err != nil {
			return nil, err
		}
		g.PictureID = id
		return &groupChange{update: event.GroupUpdate{PictureID: id, PictureRemoved: id == ""}}, nil
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// setting changes one admin-only setting; unchanged settings report nothing.
func (s *Session) setting(ctx context.Context, groupJID string, apply func(g *Group, u *event.GroupUpdate) bool) error {
	if err := s.online(); err != nil {
		return err
	}
	_, err := s.n.change(ctx, s, groupJID, false, func(g *Group) (*groupChange, error) {
		if err := s.adminOnly(g); err != nil {
			return nil, err
		}
		ch := &groupChange{}
		ch.quiet = !apply(g, &ch.update)
		return ch, nil
	})
	return err
}

// SetGroupAnnounce implements session.GroupSession.
func (s *Session) SetGroupAnnounce(ctx context.Context, groupJID string, on bool) error {
	return s.setting(ctx, groupJID, func(g *Group, u *event.GroupUpdate) bool {
		changed := g.Announce != on
		g.Announce, u.Announce = on, &on
		return changed
	})
}

// SetGroupLocked implements session.GroupSession.
func (s *Session) SetGroupLocked(ctx context.Context, groupJID string, on bool) error {
	return s.setting(ctx, groupJID, func(g *Group, u *event.GroupUpdate) bool {
		changed := g.Locked != on
		g.Locked, u.Locked = on, &on
		return changed
	})
}

// SetGroupJoinApproval implements session.GroupSession.
func (s *Session) SetGroupJoinApproval(ctx context.Context, groupJID string, on bool) error {
	return s.setting(ctx, groupJID, func(g *Group, u *event.GroupUpdate) bool {
		changed := g.JoinApproval != on
		g.JoinApproval, u.JoinApproval = on, &on
		return changed
	})
}

// UpdateGroupParticipants implements session.GroupSession. Only admins may
// change membership; nobody but the owner demotes or removes an admin, and
// the owner stays.
func (s *Session) UpdateGroupParticipants(ctx context.Context, groupJID string, action session.ParticipantAction, participants []string) ([]session.ParticipantResult, error) {
	if err := s.online(); err != nil {
		return nil, err
	}
	switch action {
	case session.ParticipantAdd, session.ParticipantRemove, session.ParticipantPromote, session.ParticipantDemote:
	default:
		return nil, fmt.Errorf("%w: unknown participant action %q", session.ErrInvalidRequest, action)
	}
	jids := make([]string, len(participants))
	for i, p := range participants {
		j, err := s.n.canonical(p)
		if err != nil {
			return nil, err
		}
		jids[i] = j
	}
	me := s.jid.String()
	var results []session.ParticipantResult
	_, err := s.n.change(ctx, s, groupJID, false, func(g *Group) (*groupChange, error) {
		if err := s.adminOnly(g); err != nil {
			return nil, err
		}
		results = make([]session.ParticipantResult, len(jids))
		ch := &groupChange{self: map[string]string{}}
		u := &ch.update
		for i, j := range jids {
			st := session.ParticipantOK
			m := g.member(j)
			switch action {
			case session.ParticipantAdd:
				switch {
				case m != nil:
					st = session.ParticipantAlreadyIn
				case len(g.Members) >= session.MaxGroupSize:
					st = session.ParticipantGroupFull
				default:
					g.Members = append(g.Members, Member{JID: j, Role: string(event.GroupMember)})
					g.removeRequest(j)
					u.Added = append(u.Added, j)
					ch.self[j] = event.GroupSelfAdded
				}
			case session.ParticipantRemove:
				switch {
				case m == nil:
					st = session.ParticipantNotIn
				case j == me || j == g.Owner || (m.Role != string(event.GroupMember) && me != g.Owner):
					st = session.ParticipantNotAllowed
				default:
					g.removeMember(j)
					u.Removed = append(u.Removed, j)
					ch.self[j] = event.GroupSelfRemoved
				}
			case session.ParticipantPromote:
				switch {
				case m == nil:
					st = session.ParticipantNotIn
				case m.Role == string(event.GroupMember):
					m.Role = string(event.GroupAdmin)
					u.Promoted = append(u.Promoted, j)
				}
			case session.ParticipantDemote:
				switch {
				case m == nil:
					st = session.ParticipantNotIn
				case j == g.Owner || (j != me && me != g.Owner && m.Role != string(event.GroupMember)):
					st = session.ParticipantNotAllowed
				case m.Role == string(event.GroupAdmin):
					m.Role = string(event.GroupMember)
					u.Demoted = append(u.Demoted, j)
				}
			}
			results[i] = session.ParticipantResult{JID: j, Status: st}
		}
		ch.quiet = len(u.Added)+len(u.Removed)+len(u.Promoted)+len(u.Demoted) == 0
		return ch, nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// GroupInviteLink implements session.GroupSession (admins only).
func (s *Session) GroupInviteLink(ctx context.Context, groupJID string, reset bool) (string, error) {
	if err := s.online(); err != nil {
		return "", err
	}
	g, err := s.n.change(ctx, s, groupJID, false, func(g *Group) (*groupChange, error) {
		if err := s.adminOnly(g); err != nil {
			return nil, err
		}
		if g.InviteCode != "" && !reset {
			return &groupChange{quiet: true}, nil
		}
		revoked := g.InviteCode != ""
		g.Invites++
		g.InviteCode = InviteCodeFor(g.JID, g.Invites)
		if !revoked {
			return &groupChange{quiet: true}, nil
		}
		return &groupChange{update: event.GroupUpdate{InviteLink: InviteLinkPrefix + g.InviteCode}}, nil
	})
	if err != nil {
		return "", err
	}
	return InviteLinkPrefix + g.InviteCode, nil
}

// byInvite finds the group whose current invite code is code.
func (n *Network) byInvite(ctx context.Context, link string) (*Group, error) {
	code, err := ParseInviteCode(link)
	if err != nil {
		return nil, err
	}
	n.grp.mu.Lock()
	defer n.grp.mu.Unlock()
	if err := n.loadGroups(ctx); err != nil {
		return nil, err
	}
	for _, g := range n.grp.byJID {
		if g.InviteCode == code {
			return g.clone(), nil
		}
	}
	return nil, fmt.Errorf("invite %s: %w", code, session.ErrInviteInvalid)
}

// GroupInfoFromLink implements session.GroupSession.
func (s *Session) GroupInfoFromLink(ctx context.Context, code string) (*event.GroupInfo, error) {
	if err := s.online(); err != nil {
		return nil, err
	}
	g, err := s.n.byInvite(ctx, code)
	if err != nil {
		return nil, err
	}
	return s.n.info(g), nil
}

// JoinGroupWithLink implements session.GroupSession. A member joining
// again gets the group's JID and nothing changes.
func (s *Session) JoinGroupWithLink(ctx context.Context, code string) (string, error) {
	if err := s.online(); err != nil {
		return "", err
	}
	found, err := s.n.byInvite(ctx, code)
	if err != nil {
		return "", err
	}
	me := s.jid.String()
	requested := false
	_, err = s.n.change(ctx, s, found.JID, true, func(g *Group) (*groupChange, error) {
		if g.InviteCode != found.InviteCode {
			return nil, fmt.Errorf("invite: %w", session.ErrInviteInvalid)
		}
		switch {
		case g.member(me) != nil:
			return &groupChange{quiet: true}, nil
		case len(g.Members) >= session.MaxGroupSize:
			return nil, fmt.Errorf("group %s: %w", g.JID, session.ErrGroupFull)
		case g.JoinApproval:
			requested = true
			if !slices.ContainsFunc(g.Requests, func(r JoinRequest) bool { return r.JID == me }) {
				g.Requests = append(g.Requests, JoinRequest{JID: me, At: time.Now().UTC().Truncate(time.Millisecond)})
			}
			return &groupChange{quiet: true}, nil
		}
		g.Members = append(g.Members, Member{JID: me, Role: string(event.GroupMember)})
		return &groupChange{update: event.GroupUpdate{Added: []string{me}, JoinReason: JoinReasonInvite},
			self: map[string]string{me: event.GroupSelfJoined}}, nil
	})
	if err != nil {
		return "", err
	}
	if requested {
		return found.JID, fmt.Errorf("group %s: %w", found.JID, session.ErrJoinRequested)
	}
	return found.JID, nil
}

// GroupJoinRequests implements session.GroupSession (admins only).
func (s *Session) GroupJoinRequests(ctx context.Context, groupJID string) ([]session.JoinRequest, error) {
	if err := s.online(); err != nil {
		return nil, err
	}
	g, err := s.n.group(ctx, groupJID)
	if err != nil {
		return nil, err
	}
	if g == nil || g.member(s.jid.String()) == nil {
		return nil, fmt.Errorf("group %s: %w", groupJID, session.ErrGroupNotFound)
	}
	if err := s.adminOnly(g); err != nil {
		return nil, err
	}
	out := make([]session.JoinRequest, 0, len(g.Requests))
	for _, r := range g.Requests {
		f := s.n.forms(r.JID, "")
		out = append(out, session.JoinRequest{JID: r.JID, PN: f.PN, RequestedAt: r.At})
	}
	return out, nil
}

// UpdateGroupJoinRequests implements session.GroupSession (admins only).
// A participant without a pending request gets ParticipantFailed.
func (s *Session) UpdateGroupJoinRequests(ctx context.Context, groupJID string, approve bool, participants []string) ([]session.ParticipantResult, error) {
	if err := s.online(); err != nil {
		return nil, err
	}
	jids := make([]string, len(participants))
	for i, p := range participants {
		j, err := s.n.canonical(p)
		if err != nil {
			return nil, err
		}
		jids[i] = j
	}
	var results []session.ParticipantResult
	_, err := s.n.change(ctx, s, groupJID, false, func(g *Group) (*groupChange, error) {
		if err := s.adminOnly(g); err != nil {
			return nil, err
		}
		results = make([]session.ParticipantResult, len(jids))
		ch := &groupChange{self: map[string]string{}}
		for i, j := range jids {
			st := session.ParticipantOK
			switch {
			case g.member(j) != nil:
				g.removeRequest(j)
				st = session.ParticipantAlreadyIn
			case !g.removeRequest(j):
				st = session.ParticipantFailed
			case approve && len(g.Members) >= session.MaxGroupSize:
				g.Requests = append(g.Requests, JoinRequest{JID: j, At: time.Now().UTC().Truncate(time.Millisecond)})
				st = session.ParticipantGroupFull
			case approve:
				g.Members = append(g.Members, Member{JID: j, Role: string(event.GroupMember)})
				ch.update.Added = append(ch.update.Added, j)
				ch.self[j] = event.GroupSelfJoined
			}
			results[i] = session.ParticipantResult{JID: j, Status: st}
		}
		if len(ch.update.Added) > 0 {
			ch.update.JoinReason = JoinReasonApproved
		} else {
			ch.quiet = true
		}
		return ch, nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// groupMembers is the member list of a group for sending to it: the
// account must be a member, and an admin when the group is announce-only.
func (n *Network) groupMembers(ctx context.Context, from *Session, groupJID string) ([]string, error) {
	g, err := n.group(ctx, groupJID)
	if err != nil {
		return nil, err
	}
	if g == nil || g.member(from.jid.String()) == nil {
		return nil, fmt.Errorf("%w: %s: %v", session.ErrInvalidRequest, groupJID, session.ErrGroupNotFound)
	}
	if g.Announce && !g.isAdmin(from.jid.String()) {
		return nil, fmt.Errorf("%w: group %s is announce-only: %v", session.ErrInvalidRequest, groupJID, session.ErrNotGroupAdmin)
	}
	return g.memberJIDs(), nil
}

var _ session.GroupSession = (*Session)(nil)
