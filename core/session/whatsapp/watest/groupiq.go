package watest

import (
	"slices"
	"strconv"
	"strings"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// IQ errors of the group server, in whatsmeow's terms: 404 no such group,
// 403 the account is not in it, 401 it is not an admin, 406 an unknown
// invite code, 410 a revoked one.
var (
	errGroupNotFound  = &iqError{404, "item-not-found"}
	errNotInGroup     = &iqError{403, "forbidden"}
	errNotAdmin       = &iqError{401, "not-authorized"}
	errBadRequest     = &iqError{400, "bad-request"}
	errInviteInvalid  = &iqError{406, "not-acceptable"}
	errInviteRevoked  = &iqError{410, "gone"}
	errSubjectTooLong = &iqError{406, "not-acceptable"}
)

// maxSubject is WhatsApp's limit on a group subject, in characters.
const maxSubject = 100

// groupIQ answers a w:g2 IQ. The returned function, if any, runs after the
// answer went out: WhatsApp notifies the members after it answered.
func (s *Server) groupIQ(c *conn, node *waBinary.Node) (content []waBinary.Node, after func(), iqErr *iqError) {
	typ, _ := node.Attrs["type"].(string)
	to, _ := node.Attrs["to"].(types.JID)
	children := node.GetChildren()
	if len(children) == 0 {
		return nil, nil, errBadRequest
	}
	child := children[0]
	s.mu.Lock()
	a := c.account
	s.mu.Unlock()
	if a == nil {
		return nil, nil, &iqError{401, "not-authorized"}
	}
	me := a.jid.ToNonAD()

	if to == types.GroupServerJID {
		switch {
		case child.Tag == "create" && typ == "set":
			return s.createGroup(me, &child)
		case child.Tag == "participating":
			return s.participating(me), nil, nil
		case child.Tag == "leave":
			gid, _ := child.GetChildByTag("group").Attrs["id"].(types.JID)
			return s.leaveGroup(me, gid)
		case child.Tag == "invite" && typ == "get":
			return s.groupByInvite(child.AttrGetter().OptionalString("code"))
		case child.Tag == "invite" && typ == "set":
			return s.joinByInvite(me, child.AttrGetter().OptionalString("code"))
		}
		return nil, nil, errBadRequest
	}

	s.mu.Lock()
	g := s.groups[to.User]
	var isMember, isAdmin, locked bool
	if g != nil {
		if m := g.member(me); m != nil {
			isMember, isAdmin = true, m.role != RoleMember
		}
		locked = g.locked
	}
	s.mu.Unlock()
	switch {
	case g == nil:
		return nil, nil, errGroupNotFound
	case !isMember:
		return nil, nil, errNotInGroup
	}

	switch child.Tag {
	case "query":
		s.mu.Lock()
		defer s.mu.Unlock()
		return []waBinary.Node{g.node()}, nil, nil
	case "add", "remove", "promote", "demote":
		if !isAdmin {
			return nil, nil, errNotAdmin
		}
		return s.changeParticipants(me, g, &child)
	case "subject":
		subject, _ := child.Content.([]byte)
		if locked && !isAdmin {
			return nil, nil, errNotAdmin
		}
		if len([]rune(string(subject))) > maxSubject {
			return nil, nil, errSubjectTooLong
		}
		s.mu.Lock()
		g.subject, g.subjectAt, g.subjectBy = string(subject), time.Now(), me
		note := waBinary.Node{Tag: "subject", Attrs: waBinary.Attrs{
			"subject": g.subject, "s_t": strconv.FormatInt(g.subjectAt.Unix(), 10), "s_o": me,
		}}
		s.mu.Unlock()
		return nil, s.announceLater(g, me, note), nil
	case "description":
		if locked && !isAdmin {
			return nil, nil, errNotAdmin
		}
		ag := child.AttrGetter()
		id := ag.OptionalString("id")
		note := waBinary.Node{Tag: "description", Attrs: waBinary.Attrs{"id": id}}
		s.mu.Lock()
		if body, ok := child.GetOptionalChildByTag("body"); ok {
			text, _ := body.Content.([]byte)
			g.desc, g.descID = string(text), id
			note.Content = []waBinary.Node{{Tag: "body", Content: text}}
		} else {
			g.desc, g.descID = "", id
			note.Content = []waBinary.Node{{Tag: "delete"}}
		}
		s.mu.Unlock()
		return nil, s.announceLater(g, me, note), nil
	case "locked", "unlocked", "announcement", "not_announcement":
		if !isAdmin {
			return nil, nil, errNotAdmin
		}
		s.mu.Lock()
		switch child.Tag {
		case "locked", "unlocked":
			g.locked = child.Tag == "locked"
		default:
			g.announce = child.Tag == "announcement"
		}
		s.mu.Unlock()
		note := waBinary.Node{Tag: child.Tag}
		if strings.HasSuffix(child.Tag, "announcement") {
			note.Attrs = waBinary.Attrs{"v_id": strconv.FormatInt(time.Now().UnixNano(), 10)}
		}
		return nil, s.announceLater(g, me, note), nil
	case "membership_approval_mode":
		if !isAdmin {
			return nil, nil, errNotAdmin
		}
		state, _ := child.GetChildByTag("group_join").Attrs["state"].(string)
		s.mu.Lock()
		g.approval = state == "on"
		s.mu.Unlock()
		if state == "on" {
			return nil, s.announceLater(g, me, waBinary.Node{Tag: "membership_approval_mode"}), nil
		}
		return nil, nil, nil
	case "invite":
		if !isAdmin {
			return nil, nil, errNotAdmin
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if typ == "set" {
			g.revoked = append(g.revoked, g.invite)
			g.invite = inviteCode()
		}
		return []waBinary.Node{{Tag: "invite", Attrs: waBinary.Attrs{"code": g.invite}}}, nil, nil
	case "membership_approval_requests":
		if !isAdmin {
			return nil, nil, errNotAdmin
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var reqs []waBinary.Node
		for _, r := range g.requests {
			reqs = append(reqs, waBinary.Node{Tag: "membership_approval_request", Attrs: waBinary.Attrs{
				"jid": r.jid, "request_time": strconv.FormatInt(r.at.Unix(), 10),
			}})
		}
		return []waBinary.Node{{Tag: "membership_approval_requests", Content: reqs}}, nil, nil
	case "membership_requests_action":
		if !isAdmin {
			return nil, nil, errNotAdmin
		}
		return s.answerJoinRequests(me, g, &child)
	}
	return nil, nil, errBadRequest
}

// announceLater returns a function that tells every member account of g
// about a change by actor.
func (s *Server) announceLater(g *group, actor types.JID, change waBinary.Node) func() {
	return func() {
		s.mu.Lock()
		to := g.accountMembersLocked(s)
		s.mu.Unlock()
		s.announceTo(to, g.jid, actor, []waBinary.Node{change})
	}
}

// createGroup creates a group with the account as its super-admin.
func (s *Server) createGroup(me types.JID, create *waBinary.Node) ([]waBinary.Node, func(), *iqError) {
	ag := create.AttrGetter()
	subject := ag.OptionalString("subject")
	if subject == "" || len([]rune(subject)) > maxSubject {
		return nil, nil, errSubjectTooLong
	}
	s.mu.Lock()
	g := s.newGroupLocked(subject, me)
	var results []waBinary.Node
	for _, p := range create.GetChildren() {
		switch p.Tag {
		case "participant":
			jid, ok := p.Attrs["jid"].(types.JID)
			if !ok {
				continue
			}
			jid = jid.ToNonAD()
			if code := s.addErrorLocked(g, jid); code != 0 {
				results = append(results, s.participantError(g, jid, code))
				continue
			}
			g.members = append(g.members, &groupMember{jid: jid})
		case "locked":
			g.locked = true
		case "announcement":
			g.announce = true
		case "membership_approval_mode":
			g.approval = true
		}
	}
	n := g.node()
	n.Content = append(n.GetChildren(), results...)
	jid, members := g.jid, g.memberJIDs()
	s.mu.Unlock()
	after := func() { s.notifyCreate(jid, me, "", members) }
	return []waBinary.Node{n}, after, nil
}

// addErrorLocked is why jid cannot be added to g, or 0.
func (s *Server) addErrorLocked(g *group, jid types.JID) int {
	switch {
	case jid.Server != types.DefaultUserServer || jid.User == "":
		return GroupErrNotFound
	case g.member(jid) != nil:
		return GroupErrAlreadyIn
	case g.left[jid]:
		return GroupErrRecentlyLeft
	case g.sizeLimit > 0 && len(g.members) >= g.sizeLimit:
		return GroupErrFull
	}
	if c := s.contacts[jid.User]; c != nil && c.refuseAdds {
		return GroupErrNotAllowed
	}
	return 0
}

func (s *Server) participantError(g *group, jid types.JID, code int) waBinary.Node {
	p := waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": jid, "error": strconv.Itoa(code)}}
	if code == GroupErrNotAllowed {
		p.Content = []waBinary.Node{{Tag: "add_request", Attrs: waBinary.Attrs{
			"code":       g.invite,
			"expiration": strconv.FormatInt(time.Now().Add(72*time.Hour).Unix(), 10),
		}}}
	}
	return p
}

func (s *Server) participating(me types.JID) []waBinary.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	var groups []waBinary.Node
	for _, g := range s.groups {
		if g.member(me) != nil {
			groups = append(groups, g.node())
		}
	}
	slices.SortFunc(groups, func(x, y waBinary.Node) int {
		return strings.Compare(x.Attrs["id"].(string), y.Attrs["id"].(string))
	})
	return []waBinary.Node{{Tag: "groups", Content: groups}}
}

func (s *Server) leaveGroup(me, gid types.JID) ([]waBinary.Node, func(), *iqError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[gid.User]
	if g == nil {
		return nil, nil, errGroupNotFound
	}
	if g.member(me) == nil {
		return nil, nil, errNotInGroup
	}
	// The leaver is told too, as WhatsApp tells every device of theirs.
	to := g.accountMembersLocked(s)
	g.removeMember(me)
	g.left[me] = true
	after := func() { s.announceTo(to, gid, me, []waBinary.Node{participantsNode("remove", "", []types.JID{me})}) }
	return []waBinary.Node{{Tag: "leave", Content: []waBinary.Node{{Tag: "group", Attrs: waBinary.Attrs{"id": gid}}}}}, after, nil
}

func (s *Server) inviteLocked(code string) (*group, *iqError) {
	if g := s.groupByInviteLocked(code); g != nil {
		return g, nil
	}
	for _, g := range s.groups {
		if slices.Contains(g.revoked, code) {
			return nil, errInviteRevoked
		}
	}
	return nil, errInviteInvalid
}

func (s *Server) groupByInvite(code string) ([]waBinary.Node, func(), *iqError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.inviteLocked(code)
	if err != nil {
		return nil, nil, err
	}
	return []waBinary.Node{g.node()}, nil, nil
}

func (s *Server) joinByInvite(me types.JID, code string) ([]waBinary.Node, func(), *iqError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.inviteLocked(code)
	if err != nil {
		return nil, nil, err
	}
	if g.approval && g.member(me) == nil {
		g.requests = append(g.requests, joinRequest{jid: me, at: time.Now()})
		return []waBinary.Node{{Tag: "membership_approval_request", Attrs: waBinary.Attrs{"jid": g.jid}}}, nil, nil
	}
	answer := []waBinary.Node{{Tag: "group", Attrs: waBinary.Attrs{"jid": g.jid}}}
	if g.member(me) != nil {
		return answer, nil, nil
	}
	if g.sizeLimit > 0 && len(g.members) >= g.sizeLimit {
		return nil, nil, &iqError{419, "resource-limit"}
	}
	g.members = append(g.members, &groupMember{jid: me})
	gid := g.jid
	return answer, func() { s.announceMembership(gid, me, "add", "invite", []types.JID{me}) }, nil
}

// changeParticipants adds, removes, promotes or demotes, answering for
// each participant as WhatsApp does, then tells the members.
func (s *Server) changeParticipants(me types.JID, g *group, action *waBinary.Node) ([]waBinary.Node, func(), *iqError) {
	s.mu.Lock()
	var results []waBinary.Node
	var changed []types.JID
	for _, p := range action.GetChildren() {
		jid, ok := p.Attrs["jid"].(types.JID)
		if p.Tag != "participant" || !ok {
			continue
		}
		jid = jid.ToNonAD()
		code := 0
		m := g.member(jid)
		switch action.Tag {
		case "add":
			code = s.addErrorLocked(g, jid)
			if code == 0 {
				g.members = append(g.members, &groupMember{jid: jid})
			}
		case "remove":
			switch {
			case m == nil:
				code = GroupErrNotFound
			case m.role == RoleSuperAdmin:
				code = GroupErrNotAllowed
			default:
				g.removeMember(jid)
			}
		case "promote", "demote":
			switch {
			case m == nil:
				code = GroupErrNotFound
			case m.role == RoleSuperAdmin:
				code = GroupErrNotAllowed
			case action.Tag == "promote":
				m.role = RoleAdmin
			default:
				m.role = RoleMember
			}
		}
		if code != 0 {
			results = append(results, s.participantError(g, jid, code))
			continue
		}
		changed = append(changed, jid)
		results = append(results, waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": jid}})
	}
	// A removed account still hears of its removal.
	var removedAccts []*Account
	if action.Tag == "remove" {
		for _, j := range changed {
			if a := s.accountByJIDLocked(j); a != nil {
				removedAccts = append(removedAccts, a)
			}
		}
	}
	gid := g.jid
	s.mu.Unlock()
	tag := action.Tag
	after := func() {
		if len(changed) == 0 {
			return
		}
		s.announceMembership(gid, me, tag, "", changed)
		s.announceTo(removedAccts, gid, me, []waBinary.Node{participantsNode("remove", "", changed)})
	}
	return []waBinary.Node{{Tag: action.Tag, Content: results}}, after, nil
}

func (s *Server) answerJoinRequests(me types.JID, g *group, node *waBinary.Node) ([]waBinary.Node, func(), *iqError) {
	children := node.GetChildren()
	if len(children) == 0 {
		return nil, nil, errBadRequest
	}
	action := children[0]
	s.mu.Lock()
	var results []waBinary.Node
	var approved []types.JID
	for _, p := range action.GetChildren() {
		jid, ok := p.Attrs["jid"].(types.JID)
		if p.Tag != "participant" || !ok {
			continue
		}
		jid = jid.ToNonAD()
		i := slices.IndexFunc(g.requests, func(r joinRequest) bool { return r.jid == jid })
		if i < 0 {
			code := GroupErrNotFound
			if g.member(jid) != nil {
				code = GroupErrAlreadyIn
			}
			results = append(results, waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": jid, "error": strconv.Itoa(code)}})
			continue
		}
		g.requests = slices.Delete(g.requests, i, i+1)
		if action.Tag == "approve" {
			g.members = append(g.members, &groupMember{jid: jid})
			approved = append(approved, jid)
		}
		results = append(results, waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": jid}})
	}
	gid := g.jid
	s.mu.Unlock()
	after := func() { s.announceMembership(gid, me, "add", "approval", approved) }
	return []waBinary.Node{{Tag: "membership_requests_action", Content: []waBinary.Node{{Tag: action.Tag, Content: results}}}}, after, nil
}

// groupPicture answers w:profile:picture set for a group: a new picture
// (or its removal), announced with a "picture" notification.
func (s *Server) groupPicture(c *conn, node *waBinary.Node) ([]waBinary.Node, func(), *iqError) {
	target, _ := node.Attrs["target"].(types.JID)
	s.mu.Lock()
	a := c.account
	g := s.groups[target.User]
	s.mu.Unlock()
	if a == nil || target.Server != types.GroupServer {
		return nil, nil, errBadRequest
	}
	me := a.jid.ToNonAD()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case g == nil:
		return nil, nil, errGroupNotFound
	case g.member(me) == nil:
		return nil, nil, errNotInGroup
	case g.locked && g.member(me).role == RoleMember:
		return nil, nil, errNotAdmin
	}
	change := waBinary.Node{Tag: "delete", Attrs: waBinary.Attrs{"jid": g.jid, "author": me}}
	var content []waBinary.Node
	if pic, ok := node.GetOptionalChildByTag("picture"); ok {
		if data, _ := pic.Content.([]byte); len(data) < 3 || data[0] != 0xFF || data[1] != 0xD8 {
			return nil, nil, &iqError{406, "not-acceptable"} // not a JPEG
		}
		s.nextID++
		g.pictureID = strconv.Itoa(1000000 + s.nextID)
		change = waBinary.Node{Tag: "set", Attrs: waBinary.Attrs{"jid": g.jid, "author": me, "id": g.pictureID}}
		content = []waBinary.Node{{Tag: "picture", Attrs: waBinary.Attrs{"id": g.pictureID}}}
	} else {
		g.pictureID = ""
	}
	to := g.accountMembersLocked(s)
	after := func() {
		for _, acct := range to {
			id := s.newID("pic-")
			s.deliver(&delivery{key: notificationKey(id), id: id, to: acct, node: waBinary.Node{
				Tag: "notification",
				Attrs: waBinary.Attrs{
					"from": g.jid, "id": id, "type": "picture",
					"t": strconv.FormatInt(time.Now().Unix(), 10),
				},
				Content: []waBinary.Node{change},
			}})
		}
	}
	return content, after, nil
}
