package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/bounded"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outgoing"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
)

// simInboundRequest is a message an external contact sends to a sim
// account. Exactly one of text, media, location and reaction is set.
type simInboundRequest struct {
	From string `json:"from"`
	// Group is the group (…@g.us) the contact writes in; From must be a
	// participant. Empty: a one-to-one message.
	Group     string       `json:"group"`
	PushName  string       `json:"pushName"`
	ID        string       `json:"id"`
	Timestamp int64        `json:"timestamp"` // Unix seconds; 0 means now
	Text      string       `json:"text"`
	Media     *simMedia    `json:"media"`
	Location  *simLocation `json:"location"`
	Reaction  *simReaction `json:"reaction"`
	ReplyTo   string       `json:"replyTo"`
	Vote      *simVote     `json:"vote"`
}

// simVote is the contact's vote on a poll stored for the account: the
// options chosen, by name; none withdraws their vote.
type simVote struct {
	PollID  string   `json:"pollId"`
	Options []string `json:"options"`
}

type simMedia struct {
	// Kind is image, video, gif, audio, voice, document or sticker; when
	// empty it follows from mimetype.
	Kind     string `json:"kind"`
	Data     string `json:"data"` // base64; empty sends placeholder bytes
	Mimetype string `json:"mimetype"`
	Filename string `json:"filename"`
	Caption  string `json:"caption"`
	Seconds  uint32 `json:"seconds"`
}

type simLocation struct {
	Lat     *float64 `json:"lat"`
	Lng     *float64 `json:"lng"`
	Name    string   `json:"name"`
	Address string   `json:"address"`
}

type simReaction struct {
	MessageID string `json:"messageId"`
	Emoji     string `json:"emoji"`
}

var messageIDPattern = bounded.MustCompile(`^[A-Za-z0-9._-]+$`, 1, 128)

var mediaKinds = map[string]session.MediaKind{
	"image": session.MediaImage, "video": session.MediaVideo, "gif": session.MediaGIF,
	"audio": session.MediaAudio, "voice": session.MediaVoice, "document": session.MediaDocument,
	"sticker": session.MediaSticker,
}

// Bounds of a backdated sim message: WhatsApp did not exist before 2009,
// and clocks disagree by minutes, not days.
const (
	minSimTimestamp = 1230768000 // 2009-01-01T00:00:00Z
	maxSimFuture    = 24 * time.Hour
)

// toInbound validates the request and turns it into the sim's form; every
// refusal names the field.
func (req *simInboundRequest) toInbound() (*sim.Inbound, error) {
	if strings.TrimSpace(req.From) == "" {
		return nil, Invalid("from", "must not be empty; send the contact's number with country code, e.g. 15551234567")
	}
	if _, err := sim.ParseAddress(req.From); err != nil {
		return nil, Invalid("from", "%s", strings.TrimPrefix(err.Error(), session.ErrInvalidRequest.Error()+": "))
	}
	if req.ID != "" && !messageIDPattern.MatchString(req.ID) {
		return nil, Invalid("id", "%q is not a message id (1 to 128 letters, digits, '.', '_' or '-')", req.ID)
	}
	if req.Timestamp < 0 {
		return nil, Invalid("timestamp", "must be Unix seconds, not negative")
	}
	// A timestamp far from now would pin its chat first (or last) for good.
	if req.Timestamp > 0 && (req.Timestamp < minSimTimestamp || req.Timestamp > time.Now().Add(maxSimFuture).Unix()) {
		return nil, Invalid("timestamp", "must be Unix seconds between %d (2009-01-01) and a day from now, got %d", minSimTimestamp, req.Timestamp)
	}
	contents := 0
	for _, set := range []bool{req.Text != "", req.Media != nil, req.Location != nil, req.Reaction != nil, req.Vote != nil} {
		if set {
			contents++
		}
	}
	if contents != 1 {
		return nil, Invalid("body", "send exactly one of text, media, location, reaction or vote (got %d)", contents)
	}
	if req.Group != "" {
		if u, server, _ := strings.Cut(req.Group, "@"); server != "g.us" || !groupUserPattern.MatchString(u) {
			return nil, Invalid("group", "%q is not a group JID (digits@g.us)", req.Group)
		}
	}
	in := &sim.Inbound{From: req.From, Group: req.Group, PushName: req.PushName, ID: req.ID, Text: req.Text, ReplyTo: req.ReplyTo}
	if req.Timestamp > 0 {
		in.Timestamp = time.Unix(req.Timestamp, 0)
	}
	if req.ReplyTo != "" && req.Text == "" && req.Media == nil {
		return nil, Invalid("replyTo", "only text and media can be replies")
	}
	if req.ReplyTo != "" && !messageIDPattern.MatchString(req.ReplyTo) {
		return nil, Invalid("replyTo", "%q is not a message id", req.ReplyTo)
	}
	switch {
	case req.Media != nil:
		m, err := req.Media.toSend()
		if err != nil {
			return nil, err
		}
		in.Media = m
	case req.Location != nil:
		l := req.Location
		if l.Lat == nil || *l.Lat < -90 || *l.Lat > 90 {
			return nil, Invalid("location.lat", "must be a latitude from -90 to 90")
		}
		if l.Lng == nil || *l.Lng < -180 || *l.Lng > 180 {
			return nil, Invalid("location.lng", "must be a longitude from -180 to 180")
		}
		in.Location = &event.Location{Latitude: *l.Lat, Longitude: *l.Lng, Name: l.Name, Address: l.Address}
	case req.Reaction != nil:
		if !messageIDPattern.MatchString(req.Reaction.MessageID) {
			return nil, Invalid("reaction.messageId", "must name the message reacted to")
		}
		in.Reaction = &session.ReactionSend{MessageID: req.Reaction.MessageID, Emoji: req.Reaction.Emoji}
	case req.Vote != nil:
		if req.Group != "" {
			return nil, Invalid("group", "a vote is cast in its poll's chat; leave group out")
		}
		if !messageIDPattern.MatchString(req.Vote.PollID) {
			return nil, Invalid("vote.pollId", "must name the poll voted on")
		}
		if len(req.Vote.Options) > outgoing.MaxPollOptions {
			return nil, Invalid("vote.options", "a poll has at most %d options", outgoing.MaxPollOptions)
		}
		in.Vote = &sim.Vote{Options: req.Vote.Options}
	}
	return in, nil
}

// votable checks a vote against the stored poll it names; every refusal
// names the field.
func votable(v *sim.Vote, poll *messages.Message) error {
	if poll.Type != event.TypePoll || poll.Poll == nil {
		return unprocessable("vote.pollId", "message %s is a %s, not a poll", poll.MessageID, poll.Type)
	}
	for i, o := range v.Options {
		if !slices.ContainsFunc(poll.Poll.Options, func(p event.PollOption) bool { return p.Name == o }) {
			return unprocessable(fmt.Sprintf("vote.options[%d]", i), "%q is not an option of poll %s", o, poll.MessageID)
		}
	}
	if c := int(poll.Poll.SelectableCount); c > 0 && len(v.Options) > c {
		return unprocessable("vote.options", "poll %s takes at most %d options, not %d", poll.MessageID, c, len(v.Options))
	}
	return nil
}

func (m *simMedia) toSend() (*session.MediaSend, error) {
	kind := m.Kind
	if kind == "" {
		switch mt := strings.ToLower(m.Mimetype); {
		case mt == "":
			return nil, Invalid("media.kind", "name the kind (image, video, gif, audio, voice, document, sticker) or send a mimetype")
		case strings.HasPrefix(mt, "image/"):
			kind = "image"
		case strings.HasPrefix(mt, "video/"):
			kind = "video"
		case strings.HasPrefix(mt, "audio/"):
			kind = "audio"
		default:
			kind = "document"
		}
	}
	mk, ok := mediaKinds[kind]
	if !ok {
		return nil, Invalid("media.kind", "%q is not one of image, video, gif, audio, voice, document, sticker", kind)
	}
	var data []byte
	if m.Data != "" {
		var err error
		if data, err = base64.StdEncoding.DecodeString(m.Data); err != nil {
			return nil, Invalid("media.data", "not valid base64: %v", err)
		}
	}
	if m.Mimetype != "" && !strings.Contains(m.Mimetype, "/") {
		return nil, Invalid("media.mimetype", "%q is not a MIME type such as image/jpeg", m.Mimetype)
	}
	return &session.MediaSend{Kind: mk, Data: data, Mimetype: m.Mimetype, Filename: m.Filename, Caption: m.Caption, Seconds: m.Seconds}, nil
}

// simInbound injects a message from an external contact into a sim
// account: it goes through normalisation and storage like any received
// message, and the answer (201) comes once it is stored.
func (h *accountRoutes) simInbound(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	var req simInboundRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	// A running sim session is the common case (a load generator, a demo):
	// it needs no read of the account. Anything else is looked up for the
	// precise answer.
	if !h.sim.Hosts(id) {
		a, err := h.accounts.GetAccount(r.Context(), id)
		if err != nil {
			return accountError(err)
		}
		if a.Driver != config.DriverSim {
			return &Error{Status: http.StatusConflict, Slug: "not-sim", Title: "Not a sim account",
				Detail: fmt.Sprintf("account %q uses the %s driver; only sim accounts accept injected messages", id, a.Driver)}
		}
	}
	in, err := req.toInbound()
	if err != nil {
		return err
	}
	// What it replies or reacts to, when stored: a reply's quote then
	// names that message's author and shows its text.
	target := in.ReplyTo
	if in.Reaction != nil {
		target = in.Reaction.MessageID
	}
	if in.Vote != nil {
		target = req.Vote.PollID
		if h.messages == nil {
			return unprocessable("vote.pollId", "this server keeps no messages to vote on")
		}
	}
	if target != "" && h.messages != nil {
		m, err := h.messages.Get(r.Context(), id, target)
		switch {
		case err == nil:
			in.Target = &m.Message
		case !errors.Is(err, messages.ErrNotFound):
			return err
		case in.Vote != nil:
			return unprocessable("vote.pollId", "no message %q is stored for this account", target)
		}
		if in.Vote != nil {
			if err := votable(in.Vote, m); err != nil {
				return err
			}
			if m.IsGroup {
				in.Group = m.ChatID // the vote is cast in the poll's group
			} else if voter, _ := sim.ParseAddress(in.From); !slices.Contains([]string{m.ChatID, m.ChatPN, m.ChatLID}, voter.String()) {
				return unprocessable("from", "%s is not in the chat of poll %s (%s)", voter, m.MessageID, m.ChatID)
			}
		}
	}
	ev, err := h.sim.Inject(r.Context(), id, in)
	if err != nil {
		switch {
		case errors.Is(err, sim.ErrNotParticipant):
			return Invalid("from", "%s", err.Error())
		case errors.Is(err, session.ErrGroupNotFound):
			return &Error{Status: http.StatusNotFound, Slug: "group-not-found", Title: "Group not found", Field: "group", Detail: errDetail(err), Err: err}
		}
		if errors.Is(err, session.ErrInvalidRequest) {
			return Invalid("body", "%s", err.Error())
		}
		return accountError(err)
	}
	return WriteJSON(w, http.StatusCreated, map[string]string{"eventId": ev.ID, "messageId": ev.Message.MessageID, "kind": string(ev.Kind)})
}
