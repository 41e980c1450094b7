package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

var _ session.GroupSession = (*Session)(nil)

// groupErr turns what whatsmeow and WhatsApp answer into the contract's
// errors, so the API answers 404/403/409 rather than 500.
func groupErr(op string, group string, err error) error {
	var cause error
	switch {
	case errors.Is(err, whatsmeow.ErrGroupNotFound), errors.Is(err, whatsmeow.ErrNotInGroup),
		errors.Is(err, whatsmeow.ErrIQNotFound), errors.Is(err, whatsmeow.ErrIQForbidden):
		cause = session.ErrGroupNotFound
	case errors.Is(err, whatsmeow.ErrGroupInviteLinkUnauthorized), errors.Is(err, whatsmeow.ErrIQNotAuthorized):
		cause = session.ErrNotGroupAdmin
	case errors.Is(err, whatsmeow.ErrIQResourceLimit):
		cause = session.ErrGroupFull
	case errors.Is(err, whatsmeow.ErrInviteLinkInvalid), errors.Is(err, whatsmeow.ErrInviteLinkRevoked):
		cause = session.ErrInviteInvalid
	case errors.Is(err, whatsmeow.ErrInvalidImageFormat), errors.Is(err, whatsmeow.ErrIQNotAcceptable), errors.Is(err, whatsmeow.ErrIQBadRequest):
		cause = session.ErrInvalidRequest
	}
	if cause == nil {
		return fmt.Errorf("%s %s: %w", op, group, err)
	}
	return fmt.Errorf("%s %s: %w (%v)", op, group, cause, err)
}

// parseGroup checks that groupJID names a group.
func parseGroup(groupJID string) (types.JID, error) {
	j, err := types.ParseJID(strings.TrimSpace(groupJID))
	if err != nil || j.User == "" || j.Server != types.GroupServer {
		return types.EmptyJID, fmt.Errorf("%w: %q is not a group JID (…@g.us)", session.ErrInvalidRequest, groupJID)
	}
	return j, nil
}

// parseParticipants turns phone numbers or user JIDs into user JIDs.
func parseParticipants(in []string) ([]types.JID, error) {
	out := make([]types.JID, 0, len(in))
	for _, p := range in {
		j, err := ParseRecipient(p)
		if err != nil {
			return nil, err
		}
		if j.Server != types.DefaultUserServer && j.Server != types.HiddenUserServer {
			return nil, fmt.Errorf("%w: participant %q is not a user", session.ErrInvalidRequest, p)
		}
		out = append(out, j)
	}
	return out, nil
}

// JoinedGroups implements session.GroupSession.
func (s *Session) JoinedGroups(ctx context.Context) ([]*event.GroupInfo, error) {
	cli, err := s.loggedIn()
	if err != nil {
		return nil, err
	}
	infos, err := cli.GetJoinedGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the groups of %s: %w", s.acct.ID, err)
	}
	out := make([]*event.GroupInfo, 0, len(infos))
	for _, info := range infos {
		out = append(out, GroupInfoOf(info))
	}
	return out, nil
}

// GroupInfo implements session.GroupSession.
func (s *Session) GroupInfo(ctx context.Context, groupJID string) (*event.GroupInfo, error) {
	cli, jid, err := s.groupCall(groupJID)
	if err != nil {
		return nil, err
	}
	info, err := cli.GetGroupInfo(ctx, jid)
	if err != nil {
		return nil, groupErr("group info of", groupJID, err)
	}
	return GroupInfoOf(info), nil
}

// CreateGroup implements session.GroupSession.
func (s *Session) CreateGroup(ctx context.Context, req session.CreateGroupRequest) (*event.GroupInfo, error) {
	cli, err := s.loggedIn()
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len([]rune(name)) > session.MaxGroupSubject {
		return nil, fmt.Errorf("%w: a group name needs 1 to %d characters", session.ErrInvalidRequest, session.MaxGroupSubject)
	}
	parts, err := parseParticipants(req.Participants)
	if err != nil {
		return nil, err
	}
	info, err := cli.CreateGroup(ctx, whatsmeow.ReqCreateGroup{Name: name, Participants: parts})
	if err != nil {
		return nil, groupErr("create group", name, err)
	}
	return GroupInfoOf(info), nil
}

// LeaveGroup implements session.GroupSession.
func (s *Session) LeaveGroup(ctx context.Context, groupJID string) error {
	cli, jid, err := s.groupCall(groupJID)
	if err != nil {
		return err
	}
	if err := cli.LeaveGroup(ctx, jid); err != nil {
		return groupErr("leave group", groupJID, err)
	}
	return nil
}

// SetGroupSubject implements session.GroupSession.
func (s *Session) SetGroupSubject(ctx context.Context, groupJID, subject string) error {
	cli, jid, err := s.groupCall(groupJID)
	if err != nil {
		return err
	}
	if subject == "" || len([]rune(subject)) > session.MaxGroupSubject {
		return fmt.Errorf("%w: a group subject needs 1 to %d characters", session.ErrInvalidRequest, session.MaxGroupSubject)
	}
	if err := cli.SetGroupName(ctx, jid, subject); err != nil {
		return groupErr("set the subject of", groupJID, err)
	}
	return nil
}

// SetGroupDescription implements session.GroupSession.
func (s *Session) SetGroupDescription(ctx context.Context, groupJID, description string) error {
	cli, jid, err := s.groupCall(groupJID)
	if err != nil {
		return err
	}
	if len([]rune(description)) > session.MaxGroupDescription {
		return fmt.Errorf("%w: a group description has at most %d characters", session.ErrInvalidRequest, session.MaxGroupDescription)
	}
	// whatsmeow looks the current description's ID up itself; an empty
	// topic deletes it.
	if err := cli.SetGroupTopic(ctx, jid, "", "", description); err != nil {
		return groupErr("set the description of", groupJID, err)
	}
	return nil
}

// SetGroupPicture implements session.GroupSession.
func (s *Session) SetGroupPicture(ctx context.Context, groupJID string, jpeg []byte) (string, error) {
	cli, jid, err := s.groupCall(groupJID)
	if err != nil {
		return "", err
	}
	if jpeg != nil && (len(jpeg) < 3 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) {
		return "", fmt.Errorf("%w: a group picture must be a JPEG", session.ErrInvalidRequest)
	}
	id, err := cli.SetGroupPhoto(ctx, jid, jpeg)
	if err != nil {
		return "", groupErr("set the picture of", groupJID, err)
	}
	if jpeg == nil {
		return "", nil
	}
	return id, nil
}

// SetGroupAnnounce implements session.GroupSession.
func (s *Session) SetGroupAnnounce(ctx context.Context, groupJID string, on bool) error {
	return s.groupSetting(ctx, groupJID, "announce", func(cli *whatsmeow.Client, jid types.JID) error {
		return cli.SetGroupAnnounce(ctx, jid, on)
	})
}

// SetGroupLocked implements session.GroupSession.
func (s *Session) SetGroupLocked(ctx context.Context, groupJID string, on bool) error {
	return s.groupSetting(ctx, groupJID, "locked", func(cli *whatsmeow.Client, jid types.JID) error {
		return cli.SetGroupLocked(ctx, jid, on)
	})
}

// SetGroupJoinApproval implements session.GroupSession.
func (s *Session) SetGroupJoinApproval(ctx context.Context, groupJID string, on bool) error {
	return s.groupSetting(ctx, groupJID, "join approval", func(cli *whatsmeow.Client, jid types.JID) error {
		return cli.SetGroupJoinApprovalMode(ctx, jid, on)
	})
}

func (s *Session) groupSetting(ctx context.Context, groupJID, what string, set func(*whatsmeow.Client, types.JID) error) error {
	cli, jid, err := s.groupCall(groupJID)
	if err != nil {
		return err
	}
	if err := set(cli, jid); err != nil {
		return groupErr("set "+what+" of", groupJID, err)
	}
	return nil
}

// UpdateGroupParticipants implements session.GroupSession.
func (s *Session) UpdateGroupParticipants(ctx context.Context, groupJID string, action session.ParticipantAction, participants []string) ([]session.ParticipantResult, error) {
	cli, jid, err := s.groupCall(groupJID)
	if err != nil {
		return nil, err
	}
	var change whatsmeow.ParticipantChange
	switch action {
	case session.ParticipantAdd:
		change = whatsmeow.ParticipantChangeAdd
	case session.ParticipantRemove:
		change = whatsmeow.ParticipantChangeRemove
	case session.ParticipantPromote:
		change = whatsmeow.ParticipantChangePromote
	case session.ParticipantDemote:
		change = whatsmeow.ParticipantChangeDemote
	default:
		return nil, fmt.Errorf("%w: unknown participant action %q", session.ErrInvalidRequest, action)
	}
	parts, err := parseParticipants(participants)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: no participants", session.ErrInvalidRequest)
	}
	answer, err := cli.UpdateGroupParticipants(ctx, jid, parts, change)
	if err != nil {
		return nil, groupErr(string(action)+" participants of", groupJID, err)
	}
	return participantResults(parts, answer, action), nil
}

// participantResults puts WhatsApp's answers in the order asked.
func participantResults(asked []types.JID, answer []types.GroupParticipant, action session.ParticipantAction) []session.ParticipantResult {
	out := make([]session.ParticipantResult, len(asked))
	for i, jid := range asked {
		out[i] = session.ParticipantResult{JID: jid.String(), Status: session.ParticipantFailed}
		for _, p := range answer {
			if p.JID.ToNonAD() != jid && p.PhoneNumber.ToNonAD() != jid && p.LID.ToNonAD() != jid {
				continue
			}
			out[i].Status = participantStatus(action, p.Error, p.AddRequest != nil)
			if p.AddRequest != nil {
				out[i].InviteCode = p.AddRequest.Code
				out[i].InviteExpires = p.AddRequest.Expiration.UTC()
			}
			break
		}
	}
	return out
}

// participantStatus maps WhatsApp's per-participant code.
func participantStatus(action session.ParticipantAction, code int, inviteOffered bool) session.ParticipantStatus {
	switch code {
	case 0, 200:
		return session.ParticipantOK
	case 409:
		return session.ParticipantAlreadyIn
	case 404:
		if action == session.ParticipantAdd {
			return session.ParticipantNotOnWhatsApp
		}
		return session.ParticipantNotIn
	case 403:
		if inviteOffered {
			return session.ParticipantInviteSent
		}
		return session.ParticipantNotAllowed
	case 401, 408:
		return session.ParticipantNotAllowed
	case 419:
		return session.ParticipantGroupFull
	}
	return session.ParticipantFailed
}

// GroupInviteLink implements session.GroupSession.
func (s *Session) GroupInviteLink(ctx context.Context, groupJID string, reset bool) (string, error) {
	cli, jid, err := s.groupCall(groupJID)
	if err != nil {
		return "", err
	}
	link, err := cli.GetGroupInviteLink(ctx, jid, reset)
	if err != nil {
		return "", groupErr("invite link of", groupJID, err)
	}
	return link, nil
}

// inviteCode accepts a code or a https://chat.whatsapp.com/ link.
func inviteCode(code string) (string, error) {
	code = strings.TrimPrefix(strings.TrimSpace(code), whatsmeow.InviteLinkPrefix)
	if code == "" || strings.ContainsAny(code, "/?# ") {
		return "", fmt.Errorf("%w: %q is not an invite code or link", session.ErrInvalidRequest, code)
	}
	return code, nil
}

// inviteErr reads WhatsApp's answers about an invite code: 406 (unknown)
// and 410 (revoked) both mean the link does not work.
func inviteErr(op, code string, err error) error {
	if errors.Is(err, whatsmeow.ErrInviteLinkInvalid) || errors.Is(err, whatsmeow.ErrInviteLinkRevoked) {
		return fmt.Errorf("%s %s: %w (%v)", op, code, session.ErrInviteInvalid, err)
	}
	return groupErr(op, code, err)
}

// GroupInfoFromLink implements session.GroupSession.
func (s *Session) GroupInfoFromLink(ctx context.Context, code string) (*event.GroupInfo, error) {
	cli, err := s.loggedIn()
	if err != nil {
		return nil, err
	}
	if code, err = inviteCode(code); err != nil {
		return nil, err
	}
	info, err := cli.GetGroupInfoFromLink(ctx, code)
	if err != nil {
		return nil, inviteErr("group of invite", code, err)
	}
	return GroupInfoOf(info), nil
}

// JoinGroupWithLink implements session.GroupSession.
func (s *Session) JoinGroupWithLink(ctx context.Context, code string) (string, error) {
	cli, err := s.loggedIn()
	if err != nil {
		return "", err
	}
	if code, err = inviteCode(code); err != nil {
		return "", err
	}
	jid, err := cli.JoinGroupWithLink(ctx, code)
	if err != nil {
		return "", inviteErr("join by invite", code, err)
	}
	// whatsmeow answers with the group's JID both when the account joined
	// and when it only asked to; the group tells which.
	if _, err := cli.GetGroupInfo(ctx, jid); errors.Is(err, whatsmeow.ErrNotInGroup) {
		return jid.String(), fmt.Errorf("join %s: %w", jid, session.ErrJoinRequested)
	}
	return jid.String(), nil
}

// GroupJoinRequests implements session.GroupSession.
func (s *Session) GroupJoinRequests(ctx context.Context, groupJID string) ([]session.JoinRequest, error) {
	cli, jid, err := s.groupCall(groupJID)
	if err != nil {
		return nil, err
	}
	reqs, err := cli.GetGroupRequestParticipants(ctx, jid)
	if err != nil {
		return nil, groupErr("join requests of", groupJID, err)
	}
	out := make([]session.JoinRequest, 0, len(reqs))
	for _, r := range reqs {
		jr := session.JoinRequest{JID: jidString(r.JID), RequestedAt: r.RequestedAt.UTC()}
		switch r.JID.Server {
		case types.DefaultUserServer:
			jr.PN = jr.JID
		case types.HiddenUserServer:
			if pn, err := cli.Store.LIDs.GetPNForLID(ctx, r.JID); err == nil && !pn.IsEmpty() {
				jr.PN = jidString(pn)
			}
		}
		out = append(out, jr)
	}
	return out, nil
}

// UpdateGroupJoinRequests implements session.GroupSession.
func (s *Session) UpdateGroupJoinRequests(ctx context.Context, groupJID string, approve bool, participants []string) ([]session.ParticipantResult, error) {
	cli, jid, err := s.groupCall(groupJID)
	if err != nil {
		return nil, err
	}
	parts, err := parseParticipants(participants)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: no participants", session.ErrInvalidRequest)
	}
	action := whatsmeow.ParticipantChangeReject
	if approve {
		action = whatsmeow.ParticipantChangeApprove
	}
	answer, err := cli.UpdateGroupRequestParticipants(ctx, jid, parts, action)
	if err != nil {
		return nil, groupErr(string(action)+" join requests of", groupJID, err)
	}
	return participantResults(parts, answer, session.ParticipantAction(action)), nil
}

// groupCall is the logged-in client and the parsed group of a group call.
func (s *Session) groupCall(groupJID string) (*whatsmeow.Client, types.JID, error) {
	jid, err := parseGroup(groupJID)
	if err != nil {
		return nil, types.EmptyJID, err
	}
	cli, err := s.loggedIn()
	if err != nil {
		return nil, types.EmptyJID, err
	}
	return cli, jid, nil
}

// groupMentions are the participants of a group to mention all of them,
// the account itself left out.
func (s *Session) groupMentions(ctx context.Context, cli *whatsmeow.Client, group types.JID, own types.JID) ([]string, error) {
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	info, err := cli.GetGroupInfo(ictx, group)
	if err != nil {
		return nil, groupErr("participants of", group.String(), err)
	}
	ownLID := cli.Store.GetLID()
	var out []string
	for _, p := range info.Participants {
		if u := p.JID.User; u == own.User || (!ownLID.IsEmpty() && u == ownLID.User) {
			continue
		}
		out = append(out, jidString(p.JID))
	}
	return out, nil
}
