package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/bounded"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// Groups hands out an account's group calls; the session Manager
// implements it (session.ErrGroupsUnsupported for a driver without them).
type Groups interface {
	Groups(ctx context.Context, accountID string) (session.GroupSession, error)
}

type groupRoutes struct {
	groups Groups
}

// groupError maps the group calls' errors to problems; anything else goes
// through accountError.
func groupError(err error) error {
	switch {
	case errors.Is(err, session.ErrGroupNotFound):
		return &Error{Status: http.StatusNotFound, Slug: "group-not-found", Title: "Group not found", Field: "groupId", Detail: errDetail(err), Err: err}
	case errors.Is(err, session.ErrNotGroupAdmin):
		return &Error{Status: http.StatusForbidden, Slug: "not-group-admin", Title: "Not an admin of the group", Detail: errDetail(err), Err: err}
	case errors.Is(err, session.ErrGroupFull):
		return &Error{Status: http.StatusConflict, Slug: "group-full", Title: "Group is full", Field: "participants", Detail: errDetail(err), Err: err}
	case errors.Is(err, session.ErrInviteInvalid):
		return &Error{Status: http.StatusNotFound, Slug: "invite-invalid", Title: "Invite link is invalid", Field: "code", Detail: errDetail(err), Err: err}
	case errors.Is(err, session.ErrGroupsUnsupported):
		return &Error{Status: http.StatusNotImplemented, Slug: "groups-unsupported", Title: "Groups not supported", Detail: errDetail(err), Err: err}
	}
	return accountError(err)
}

// session returns the account's group calls.
func (h *groupRoutes) session(r *http.Request) (session.GroupSession, error) {
	gs, err := h.groups.Groups(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return nil, groupError(err)
	}
	return gs, nil
}

// group is the session and the group JID a route on one group acts on.
func (h *groupRoutes) group(r *http.Request) (session.GroupSession, string, error) {
	jid, err := groupParam(r)
	if err != nil {
		return nil, "", err
	}
	gs, err := h.session(r)
	return gs, jid, err
}

var groupUserPattern = regexp.MustCompile(`^[0-9]{1,20}(-[0-9]{1,20})?$`)

// groupParam is the {groupId} path parameter as a group JID: the JID, or
// its user part alone.
func groupParam(r *http.Request) (string, error) {
	v := mux.Vars(r)["groupId"]
	user, server, hasServer := strings.Cut(v, "@")
	if (hasServer && server != "g.us") || !groupUserPattern.MatchString(user) {
		return "", Invalid("groupId", "%q is not a group JID (digits@g.us)", v)
	}
	return user + "@g.us", nil
}

// participantsParam resolves phone numbers and JIDs to user JIDs, without
// duplicates; between 1 and max of them.
func participantsParam(field string, list []string, max int) ([]string, error) {
	if len(list) == 0 {
		return nil, Invalid(field, "name at least one participant (a phone number with country code or a JID)")
	}
	if len(list) > max {
		return nil, Invalid(field, "at most %d participants, got %d", max, len(list))
	}
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for i, p := range list {
		j, err := normaliseJID(p)
		if err == nil && !strings.HasSuffix(j, "@s.whatsapp.net") && !strings.HasSuffix(j, "@lid") {
			err = fmt.Errorf("%q is not a person: use a phone number or a user JID (…@s.whatsapp.net, …@lid)", p)
		}
		if err != nil {
			return nil, Invalid(fmt.Sprintf("%s[%d]", field, i), "%s", err.Error())
		}
		if !seen[j] {
			seen[j] = true
			out = append(out, j)
		}
	}
	return out, nil
}

func checkSubject(field, s string) error {
	if strings.TrimSpace(s) == "" {
		return Invalid(field, "must not be empty")
	}
	if n := utf8.RuneCountInString(s); n > session.MaxGroupSubject {
		return Invalid(field, "at most %d characters (WhatsApp's limit), got %d", session.MaxGroupSubject, n)
	}
	return nil
}

func checkDescription(s string) error {
	if n := utf8.RuneCountInString(s); n > session.MaxGroupDescription {
		return Invalid("description", "at most %d characters (WhatsApp's limit), got %d", session.MaxGroupDescription, n)
	}
	return nil
}

func (h *groupRoutes) list(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	gs, err := h.session(r)
	if err != nil {
		return err
	}
	all, err := gs.JoinedGroups(r.Context())
	if err != nil {
		return groupError(err)
	}
	if all == nil {
		all = []*event.GroupInfo{}
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"groups": all})
}

func (h *groupRoutes) get(w http.ResponseWriter, r *http.Request) error {
	gs, jid, err := h.group(r)
	if err != nil {
		return err
	}
	g, err := gs.GroupInfo(r.Context(), jid)
	if err != nil {
		return groupError(err)
	}
	return WriteJSON(w, http.StatusOK, g)
}

type createGroupRequest struct {
	Subject      string   `json:"subject"`
	Participants []string `json:"participants"`
}

func (h *groupRoutes) create(w http.ResponseWriter, r *http.Request) error {
	var req createGroupRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkSubject("subject", req.Subject); err != nil {
		return err
	}
	// The account itself is the group's first member.
	ps, err := participantsParam("participants", req.Participants, session.MaxGroupSize-1)
	if err != nil {
		return err
	}
	gs, err := h.session(r)
	if err != nil {
		return err
	}
	g, err := gs.CreateGroup(r.Context(), session.CreateGroupRequest{Name: req.Subject, Participants: ps})
	if err != nil {
		return groupError(err)
	}
	w.Header().Set("Location", "/v1/accounts/"+mux.Vars(r)["id"]+"/groups/"+g.JID)
	return WriteJSON(w, http.StatusCreated, g)
}

func (h *groupRoutes) leave(w http.ResponseWriter, r *http.Request) error {
	gs, jid, err := h.group(r)
	if err != nil {
		return err
	}
	if err := gs.LeaveGroup(r.Context(), jid); err != nil {
		return groupError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// updateGroupRequest changes the fields it sets; description "" removes it.
type updateGroupRequest struct {
	Subject      *string `json:"subject"`
	Description  *string `json:"description"`
	Announce     *bool   `json:"announce"`
	Locked       *bool   `json:"locked"`
	JoinApproval *bool   `json:"joinApproval"`
}

// update answers PATCH …/groups/{groupId}: each field set is one change on
// WhatsApp, made in the order subject, description, announce, locked,
// joinApproval; the answer is the group afterwards.
func (h *groupRoutes) update(w http.ResponseWriter, r *http.Request) error {
	jid, err := groupParam(r)
	if err != nil {
		return err
	}
	var req updateGroupRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Subject == nil && req.Description == nil && req.Announce == nil && req.Locked == nil && req.JoinApproval == nil {
		return Invalid("body", "set at least one of subject, description, announce, locked, joinApproval")
	}
	if req.Subject != nil {
		if err := checkSubject("subject", *req.Subject); err != nil {
			return err
		}
	}
	if req.Description != nil {
		if err := checkDescription(*req.Description); err != nil {
			return err
		}
	}
	gs, err := h.session(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	// An unknown group fails the first step, before anything changed.
	steps := []struct {
		set bool
		do  func() error
	}{
		{req.Subject != nil, func() error { return gs.SetGroupSubject(ctx, jid, *req.Subject) }},
		{req.Description != nil, func() error { return gs.SetGroupDescription(ctx, jid, *req.Description) }},
		{req.Announce != nil, func() error { return gs.SetGroupAnnounce(ctx, jid, *req.Announce) }},
		{req.Locked != nil, func() error { return gs.SetGroupLocked(ctx, jid, *req.Locked) }},
		{req.JoinApproval != nil, func() error { return gs.SetGroupJoinApproval(ctx, jid, *req.JoinApproval) }},
	}
	for _, s := range steps {
		if s.set {
			if err := s.do(); err != nil {
				return groupError(err)
			}
		}
	}
	g, err := gs.GroupInfo(ctx, jid)
	if err != nil {
		return groupError(err)
	}
	return WriteJSON(w, http.StatusOK, g)
}

type pictureRequest struct {
	// JPEG is the picture, base64.
	JPEG string `json:"jpeg"`
}

func (h *groupRoutes) setPicture(w http.ResponseWriter, r *http.Request) error {
	jid, err := groupParam(r)
	if err != nil {
		return err
	}
	var req pictureRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	img, err := base64.StdEncoding.DecodeString(req.JPEG)
	if err != nil {
		return Invalid("jpeg", "not valid base64: %v", err)
	}
	if len(img) < 3 || img[0] != 0xFF || img[1] != 0xD8 || img[2] != 0xFF {
		return Invalid("jpeg", "must be a JPEG image (base64)")
	}
	gs, err := h.session(r)
	if err != nil {
		return err
	}
	id, err := gs.SetGroupPicture(r.Context(), jid, img)
	if err != nil {
		return groupError(err)
	}
	return WriteJSON(w, http.StatusOK, map[string]string{"pictureId": id})
}

func (h *groupRoutes) deletePicture(w http.ResponseWriter, r *http.Request) error {
	gs, jid, err := h.group(r)
	if err != nil {
		return err
	}
	if _, err := gs.SetGroupPicture(r.Context(), jid, nil); err != nil {
		return groupError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type participantsRequest struct {
	Action       string   `json:"action"`
	Participants []string `json:"participants"`
}

func (h *groupRoutes) participants(w http.ResponseWriter, r *http.Request) error {
	jid, err := groupParam(r)
	if err != nil {
		return err
	}
	var req participantsRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	action := session.ParticipantAction(req.Action)
	switch action {
	case session.ParticipantAdd, session.ParticipantRemove, session.ParticipantPromote, session.ParticipantDemote:
	default:
		return Invalid("action", "%q is not one of add, remove, promote, demote", req.Action)
	}
	ps, err := participantsParam("participants", req.Participants, session.MaxGroupSize)
	if err != nil {
		return err
	}
	gs, err := h.session(r)
	if err != nil {
		return err
	}
	res, err := gs.UpdateGroupParticipants(r.Context(), jid, action, ps)
	if err != nil {
		return groupError(err)
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"results": orEmptyResults(res)})
}

func orEmptyResults(res []session.ParticipantResult) []session.ParticipantResult {
	if res == nil {
		return []session.ParticipantResult{}
	}
	return res
}

func (h *groupRoutes) inviteLink(reset bool) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		jid, err := groupParam(r)
		if err != nil {
			return err
		}
		gs, err := h.session(r)
		if err != nil {
			return err
		}
		link, err := gs.GroupInviteLink(r.Context(), jid, reset)
		if err != nil {
			return groupError(err)
		}
		return WriteJSON(w, http.StatusOK, map[string]string{"link": link, "code": strings.TrimPrefix(link, inviteLinkPrefix)})
	}
}

const inviteLinkPrefix = "https://chat.whatsapp.com/"

var invitePattern = bounded.MustCompile(`^[A-Za-z0-9_-]+$`, 8, 64)

// inviteCode takes an invite code or link.
func inviteCode(field, s string) (string, error) {
	code := strings.TrimPrefix(strings.TrimSpace(s), inviteLinkPrefix)
	if !invitePattern.MatchString(code) {
		return "", Invalid(field, "%q is not an invite code or a %s<code> link", s, inviteLinkPrefix)
	}
	return code, nil
}

func (h *groupRoutes) preview(w http.ResponseWriter, r *http.Request) error {
	code, err := inviteCode("code", mux.Vars(r)["code"])
	if err != nil {
		return err
	}
	gs, err := h.session(r)
	if err != nil {
		return err
	}
	g, err := gs.GroupInfoFromLink(r.Context(), code)
	if err != nil {
		return groupError(err)
	}
	return WriteJSON(w, http.StatusOK, g)
}

type joinRequest struct {
	// Link is the invite link or its code.
	Link string `json:"link"`
}

// join answers 200 with the group joined, or 202 when the group needs an
// admin's approval and a request was sent.
func (h *groupRoutes) join(w http.ResponseWriter, r *http.Request) error {
	var req joinRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	code, err := inviteCode("link", req.Link)
	if err != nil {
		return err
	}
	gs, err := h.session(r)
	if err != nil {
		return err
	}
	jid, err := gs.JoinGroupWithLink(r.Context(), code)
	switch {
	case errors.Is(err, session.ErrJoinRequested):
		return WriteJSON(w, http.StatusAccepted, map[string]any{"jid": jid, "requested": true})
	case errors.Is(err, session.ErrInviteInvalid):
		e := groupError(err).(*Error)
		e.Field = "link"
		return e
	case err != nil:
		return groupError(err)
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"jid": jid, "requested": false})
}

func (h *groupRoutes) requests(w http.ResponseWriter, r *http.Request) error {
	gs, jid, err := h.group(r)
	if err != nil {
		return err
	}
	reqs, err := gs.GroupJoinRequests(r.Context(), jid)
	if err != nil {
		return groupError(err)
	}
	if reqs == nil {
		reqs = []session.JoinRequest{}
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"requests": reqs})
}

func (h *groupRoutes) answerRequests(w http.ResponseWriter, r *http.Request) error {
	jid, err := groupParam(r)
	if err != nil {
		return err
	}
	var req participantsRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Action != "approve" && req.Action != "reject" {
		return Invalid("action", "%q is not one of approve, reject", req.Action)
	}
	ps, err := participantsParam("participants", req.Participants, session.MaxGroupSize)
	if err != nil {
		return err
	}
	gs, err := h.session(r)
	if err != nil {
		return err
	}
	res, err := gs.UpdateGroupJoinRequests(r.Context(), jid, req.Action == "approve", ps)
	if err != nil {
		return groupError(err)
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"results": orEmptyResults(res)})
}
