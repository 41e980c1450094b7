package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outgoing"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/throttle"
)

// Sender stores and queues outgoing messages; the outgoing Sender
// implements it.
type Sender interface {
	// Submit returns the stored message and when it will be sent (its
	// paced slot).
	Submit(ctx context.Context, r outgoing.Request) (*messages.Message, time.Time, error)
}

// sendRequest is the body of POST /v1/accounts/{id}/messages. Exactly one
// of text, media, reaction, location, contact(s), edit and revoke is the
// content.
type sendRequest struct {
	// To is a phone number (E.164, + optional) or a JID; optional for
	// reaction, edit and revoke, which default to the target's chat.
	To       string        `json:"to"`
	Text     string        `json:"text"`
	Media    *sendMedia    `json:"media"`
	Caption  string        `json:"caption"`
	ReplyTo  string        `json:"replyTo"`
	Mentions []string      `json:"mentions"`
	Reaction *sendReaction `json:"reaction"`
	Location *sendLocation `json:"location"`
	Contact  *sendContact  `json:"contact"`
	Contacts []sendContact `json:"contacts"`
	Edit     *sendEdit     `json:"edit"`
	Revoke   *sendRevoke   `json:"revoke"`
	Poll     *sendPoll     `json:"poll"`
	// StatusRecipients are who see a status post (to: status@broadcast):
	// phone numbers or JIDs.
	StatusRecipients []string `json:"statusRecipients"`
	// MentionAll mentions every participant of the group the text or
	// media goes to.
	MentionAll bool `json:"mentionAll"`
}

// sendPoll is a poll: a question and 2 to 12 options; selectableCount is
// how many a voter may pick (0 or absent: any number).
type sendPoll struct {
	Name            string   `json:"name"`
	Options         []string `json:"options"`
	SelectableCount *int64   `json:"selectableCount"`
}

// maxStatusRecipients bounds a status post's audience in one request.
const maxStatusRecipients = 1024

// sendMedia names the bytes in exactly one way: an upload's mediaId, a URL
// the daemon fetches, or base64 data.
type sendMedia struct {
	MediaID  string `json:"mediaId"`
	URL      string `json:"url"`
	Data     string `json:"data"`
	Mimetype string `json:"mimetype"`
	Filename string `json:"filename"`
	// Kind is image, video, gif, audio, voice, document or sticker; by
	// default it follows from the mimetype.
	Kind    string `json:"kind"`
	Seconds uint32 `json:"seconds"`
}

type sendReaction struct {
	MessageID string `json:"messageId"`
	// Emoji is the reaction; empty removes ours.
	Emoji string `json:"emoji"`
}

type sendLocation struct {
	Lat     *float64 `json:"lat"`
	Lng     *float64 `json:"lng"`
	Name    string   `json:"name"`
	Address string   `json:"address"`
	URL     string   `json:"url"`
}

// sendContact is a contact card: a vCard, or a name and phone number the
// daemon writes one from.
type sendContact struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
	VCard string `json:"vcard"`
}

type sendEdit struct {
	MessageID string `json:"messageId"`
	Text      string `json:"text"`
}

type sendRevoke struct {
	MessageID string `json:"messageId"`
}

type sendAccepted struct {
	ID        string          `json:"id"`
	MessageID string          `json:"messageId"`
	Status    messages.Status `json:"status"`
	// ScheduledAt is when the message goes: now, or later when the
	// account's send pacing makes it wait.
	ScheduledAt time.Time `json:"scheduledAt"`
}

// unprocessable reports a well-formed request that names something that
// cannot be used: a recipient that is no number, a message that does not
// exist (422).
func unprocessable(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Slug: "unprocessable", Title: "Request cannot be carried out", Field: field, Detail: fmt.Sprintf(format, args...)}
}

// send answers POST /v1/accounts/{id}/messages: it validates the request,
// resolves media, stores the message as pending and queues it (202). The
// message's status then follows: GET …/messages/{messageId}.
func (h *messageRoutes) send(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	var req sendRequest
	body := &countingReader{r: r.Body}
	r.Body = body
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	// The route reads bodies up to the media limit so that inline media
	// fits; anything else gets the JSON limit, as on every other route.
	if body.n > h.maxJSON && (req.Media == nil || req.Media.Data == "") {
		return &Error{Status: http.StatusRequestEntityTooLarge, Slug: "body-too-large", Title: "Request body too large", Field: "body",
			Detail: fmt.Sprintf("the body exceeds %d bytes (http.max_body_bytes); only sends with inline media.data may be larger", h.maxJSON)}
	}
	ctx := r.Context()
	acct, err := h.accounts.GetAccount(ctx, id)
	if err != nil {
		return accountError(err)
	}
	if acct.State != session.StateConnected {
		return &Error{Status: http.StatusConflict, Slug: "not-connected", Title: "Account is not connected",
			Detail: fmt.Sprintf("account %q is %s; messages can be sent once it is connected", id, acct.State)}
	}
	out, err := h.build(ctx, id, &req)
	if err != nil {
		return err
	}
	if own, err := normaliseJID(acct.JID); err == nil {
		out.From = own
	}
	m, at, err := h.sender.Submit(ctx, *out)
	var capped *throttle.CapError
	switch {
	case errors.As(err, &capped):
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(capped.RetryAfter.Seconds()))))
		return &Error{Status: http.StatusTooManyRequests, Slug: "daily-cap", Title: "Daily send cap reached", Detail: capped.Error()}
	case errors.Is(err, outgoing.ErrBusy), errors.Is(err, outgoing.ErrClosed):
		w.Header().Set("Retry-After", "1")
		return Unavailable("%s; try again shortly", err.Error())
	case errors.Is(err, messages.ErrExists):
		return Conflict("%s", err.Error())
	case err != nil:
		return err
	}
	w.Header().Set("Location", "/v1/accounts/"+id+"/messages/"+m.MessageID)
	return WriteJSON(w, http.StatusAccepted, sendAccepted{ID: m.ID, MessageID: m.MessageID, Status: m.Status, ScheduledAt: at.UTC()})
}

// MaxTextChars is the longest text, caption or edit a send may carry
// (outgoing.MaxTextChars, which rule and plugin sends meet too).
const MaxTextChars = outgoing.MaxTextChars

// maxNameChars bounds the short strings of a send (names, addresses, URLs,
// file names).
const maxNameChars = 1024

// checkLengths refuses any string of a send longer than WhatsApp takes, by
// field, before anything is looked up or stored.
func checkLengths(req *sendRequest) error {
	long := func(field, v string, limit int) error {
		if len(v) > limit && utf8.RuneCountInString(v) > limit {
			return Invalid(field, "is %d characters long; WhatsApp takes at most %d", utf8.RuneCountInString(v), limit)
		}
		return nil
	}
	checks := []error{long("text", req.Text, MaxTextChars), long("caption", req.Caption, MaxTextChars), long("to", req.To, maxNameChars), long("replyTo", req.ReplyTo, maxNameChars)}
	if req.Edit != nil {
		checks = append(checks, long("edit.text", req.Edit.Text, MaxTextChars))
	}
	if req.Location != nil {
		checks = append(checks, long("location.name", req.Location.Name, maxNameChars), long("location.address", req.Location.Address, maxNameChars),
			long("location.url", req.Location.URL, maxNameChars))
	}
	if req.Media != nil {
		checks = append(checks, long("media.filename", req.Media.Filename, 255), long("media.mimetype", req.Media.Mimetype, 255),
			long("media.url", req.Media.URL, 2048))
	}
	if req.Poll != nil {
		// The rest of the poll is checked as every send's is (CheckPoll).
		if len(req.Poll.Options) > outgoing.MaxPollOptions {
			return Invalid("poll.options", "has %d options; a poll has %d to %d", len(req.Poll.Options), outgoing.MinPollOptions, outgoing.MaxPollOptions)
		}
	}
	if len(req.StatusRecipients) > maxStatusRecipients {
		return Invalid("statusRecipients", "at most %d recipients", maxStatusRecipients)
	}
	if len(req.Mentions) > 1024 {
		return Invalid("mentions", "at most 1024 mentions")
	}
	if len(req.Contacts) > 256 {
		return Invalid("contacts", "at most 256 contacts")
	}
	cards := req.Contacts
	field := "contacts"
	if req.Contact != nil {
		cards, field = []sendContact{*req.Contact}, "contact"
	}
	for i, c := range cards {
		f := field
		if field == "contacts" {
			f = fmt.Sprintf("contacts[%d]", i)
		}
		checks = append(checks, long(f+".name", c.Name, maxNameChars), long(f+".phone", c.Phone, maxNameChars), long(f+".vcard", c.VCard, MaxTextChars))
	}
	return firstErr(checks)
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// build turns the request into what the sender needs. Every refusal names
// the field at fault.
func (h *messageRoutes) build(ctx context.Context, accountID string, req *sendRequest) (*outgoing.Request, error) {
	if err := checkLengths(req); err != nil {
		return nil, err
	}
	contents := 0
	for _, set := range []bool{req.Text != "", req.Media != nil, req.Reaction != nil, req.Location != nil,
		req.Contact != nil || len(req.Contacts) > 0, req.Edit != nil, req.Revoke != nil, req.Poll != nil} {
		if set {
			contents++
		}
	}
	if contents != 1 {
		return nil, Invalid("body", "send exactly one of text, media, reaction, location, contact, contacts, edit, revoke or poll (got %d)", contents)
	}
	if req.Caption != "" && req.Media == nil {
		return nil, Invalid("caption", "only media has a caption; send text instead")
	}
	if req.Contact != nil && len(req.Contacts) > 0 {
		return nil, Invalid("contacts", "send contact or contacts, not both")
	}
	sr := &session.SendRequest{Source: event.SourceAPI, Text: req.Text}
	out := &outgoing.Request{AccountID: accountID, Send: sr}

	// The target of a reaction, edit or revoke: it must be stored here.
	var target *messages.Message
	targetField, targetID := "", ""
	switch {
	case req.Reaction != nil:
		targetField, targetID = "reaction.messageId", req.Reaction.MessageID
	case req.Edit != nil:
		targetField, targetID = "edit.messageId", req.Edit.MessageID
	case req.Revoke != nil:
		targetField, targetID = "revoke.messageId", req.Revoke.MessageID
	}
	if targetField != "" {
		if !messageIDPattern.MatchString(targetID) {
			return nil, Invalid(targetField, "must name a message of this account")
		}
		var err error
		if target, err = h.lookup(ctx, accountID, targetField, targetID); err != nil {
			return nil, err
		}
	}

	switch {
	case req.To != "":
		to, err := normaliseJID(req.To)
		if err != nil {
			return nil, unprocessable("to", "%s", err.Error())
		}
		if target != nil && to != target.ChatID && to != target.ChatPN && to != target.ChatLID {
			return nil, unprocessable("to", "message %s is in chat %s, not %s", targetID, target.ChatID, to)
		}
		sr.To = to
	case target != nil:
		sr.To = target.ChatID
	default:
		return nil, unprocessable("to", "must not be empty; send a phone number with country code (+15551234567) or a JID")
	}

	if req.ReplyTo != "" {
		if req.Text == "" && req.Media == nil && req.Location == nil && req.Contact == nil && len(req.Contacts) == 0 {
			return nil, Invalid("replyTo", "only text, media, location and contacts can be replies")
		}
		if !messageIDPattern.MatchString(req.ReplyTo) {
			return nil, Invalid("replyTo", "%q is not a message id", req.ReplyTo)
		}
		q, err := h.lookup(ctx, accountID, "replyTo", req.ReplyTo)
		if err != nil {
			return nil, err
		}
		ref := &session.QuoteRef{MessageID: q.MessageID, Message: &q.Message}
		if !q.FromMe {
			ref.Sender = q.From
		}
		sr.ReplyTo = ref
	}
	for i, m := range req.Mentions {
		j, err := normaliseJID(m)
		if err != nil {
			return nil, unprocessable(fmt.Sprintf("mentions[%d]", i), "%s", err.Error())
		}
		sr.Mentions = append(sr.Mentions, j)
	}
	if len(sr.Mentions) > 0 && req.Text == "" && req.Media == nil {
		return nil, Invalid("mentions", "only text and media can mention")
	}
	if err := broadcastAndMentionAll(req, sr); err != nil {
		return nil, err
	}

	switch {
	case req.Media != nil:
		if err := h.resolveMedia(ctx, req, out); err != nil {
			return nil, err
		}
	case req.Reaction != nil:
		sr.Reaction = &session.ReactionSend{MessageID: target.MessageID, FromMe: target.FromMe, Emoji: req.Reaction.Emoji}
		if !target.FromMe {
			sr.Reaction.Sender = target.From
		}
	case req.Location != nil:
		l := req.Location
		if l.Lat == nil || *l.Lat < -90 || *l.Lat > 90 {
			return nil, Invalid("location.lat", "must be a latitude from -90 to 90")
		}
		if l.Lng == nil || *l.Lng < -180 || *l.Lng > 180 {
			return nil, Invalid("location.lng", "must be a longitude from -180 to 180")
		}
		sr.Location = &event.Location{Latitude: *l.Lat, Longitude: *l.Lng, Name: l.Name, Address: l.Address, URL: l.URL}
	case req.Contact != nil || len(req.Contacts) > 0:
		cards := req.Contacts
		field := "contacts"
		if req.Contact != nil {
			cards, field = []sendContact{*req.Contact}, "contact"
		}
		for i, c := range cards {
			f := field
			if field == "contacts" {
				f = fmt.Sprintf("contacts[%d]", i)
			}
			ec, err := c.card(f)
			if err != nil {
				return nil, err
			}
			sr.Contacts = append(sr.Contacts, ec)
		}
	case req.Edit != nil:
		if !target.FromMe {
			return nil, unprocessable("edit.messageId", "only messages this account sent can be edited")
		}
		if strings.TrimSpace(req.Edit.Text) == "" {
			return nil, Invalid("edit.text", "must not be empty")
		}
		sr.Edit = &session.EditSend{MessageID: target.MessageID, Text: req.Edit.Text}
	case req.Revoke != nil:
		sr.Revoke = &session.RevokeSend{MessageID: target.MessageID}
		if !target.FromMe {
			// Deleting someone else's message: a group admin's revoke.
			sr.Revoke.Sender = target.From
		}
	case req.Poll != nil:
		p, err := req.Poll.toSend()
		if err != nil {
			return nil, err
		}
		sr.Poll = p
	}
	return out, nil
}

// toSend checks the poll as every send's poll is checked
// (outgoing.CheckPoll).
func (p *sendPoll) toSend() (*session.PollSend, error) {
	out := &session.PollSend{Name: p.Name, Options: p.Options}
	if c := p.SelectableCount; c != nil {
		if *c < 0 || *c > int64(len(p.Options)) {
			return nil, Invalid("poll.selectableCount", "must be from 0 (any number) to the number of options (%d), got %d", len(p.Options), *c)
		}
		out.SelectableCount = uint32(*c)
	}
	var fe *outgoing.FieldError
	if err := outgoing.CheckPoll(out); errors.As(err, &fe) {
		return nil, Invalid(fe.Field, "%s", fe.Reason)
	} else if err != nil {
		return nil, err
	}
	return out, nil
}

// broadcastAndMentionAll checks and carries over the parts of a send
// that depend on where it goes: a status post (to status@broadcast) names
// its recipients; mention-all is for a group's text or media.
func broadcastAndMentionAll(req *sendRequest, sr *session.SendRequest) error {
	status := sr.To == outgoing.StatusBroadcast
	switch {
	case status && len(req.StatusRecipients) == 0:
		return Invalid("statusRecipients", "a status post (to %s) needs the contacts who see it", outgoing.StatusBroadcast)
	case !status && len(req.StatusRecipients) > 0:
		return Invalid("statusRecipients", "only a status post (to %s) has recipients; a broadcast list has its own", outgoing.StatusBroadcast)
	case status && req.Text == "" && req.Media == nil:
		return Invalid("body", "a status post is text or media")
	case status && req.ReplyTo != "":
		return Invalid("replyTo", "a status post replies to nothing")
	}
	seen := map[string]bool{}
	for i, r := range req.StatusRecipients {
		j, err := normaliseJID(r)
		field := fmt.Sprintf("statusRecipients[%d]", i)
		if err != nil {
			return unprocessable(field, "%s", err.Error())
		}
		if !strings.HasSuffix(j, "@s.whatsapp.net") && !strings.HasSuffix(j, "@lid") {
			return unprocessable(field, "%s is not a contact: a status post goes to people (phone numbers or user JIDs)", j)
		}
		if !seen[j] {
			seen[j] = true
			sr.StatusRecipients = append(sr.StatusRecipients, j)
		}
	}
	if req.MentionAll {
		if !strings.HasSuffix(sr.To, "@g.us") {
			return Invalid("mentionAll", "mentions every participant of a group; %s is not a group", sr.To)
		}
		if req.Text == "" && req.Media == nil {
			return Invalid("mentionAll", "only text and media can mention")
		}
		sr.MentionAll = true
	}
	return nil
}

func (h *messageRoutes) lookup(ctx context.Context, accountID, field, messageID string) (*messages.Message, error) {
	m, err := h.store.Get(ctx, accountID, messageID)
	if errors.Is(err, messages.ErrNotFound) {
		return nil, unprocessable(field, "no message %q is stored for this account", messageID)
	}
	return m, err
}

// card checks a contact and writes its vCard when only a name and a phone
// number are given.
func (c sendContact) card(field string) (event.Contact, error) {
	if strings.TrimSpace(c.Name) == "" {
		return event.Contact{}, Invalid(field+".name", "must not be empty")
	}
	if c.VCard != "" {
		if !strings.HasPrefix(strings.TrimSpace(c.VCard), "BEGIN:VCARD") {
			return event.Contact{}, Invalid(field+".vcard", "is not a vCard (BEGIN:VCARD …)")
		}
		return event.Contact{DisplayName: c.Name, VCard: c.VCard}, nil
	}
	d, err := phoneDigits(c.Phone)
	if err != nil {
		return event.Contact{}, unprocessable(field+".phone", "%s", err.Error())
	}
	// waid lets WhatsApp offer "Message" on the card.
	v := fmt.Sprintf("BEGIN:VCARD\nVERSION:3.0\nFN:%s\nTEL;type=CELL;waid=%s:+%s\nEND:VCARD", vcardEscape(c.Name), d, d)
	return event.Contact{DisplayName: c.Name, VCard: v}, nil
}

func vcardEscape(s string) string {
	return strings.NewReplacer("\\", "\\\\", "\n", "\\n", ",", "\\,", ";", "\\;").Replace(s)
}

// resolveMedia gets the bytes (an upload, a URL or inline data), keeps a
// copy in the media bucket so the stored message can name it, and checks
// the kind against the mimetype.
func (h *messageRoutes) resolveMedia(ctx context.Context, req *sendRequest, out *outgoing.Request) error {
	m := req.Media
	ways := 0
	for _, set := range []bool{m.MediaID != "", m.URL != "", m.Data != ""} {
		if set {
			ways++
		}
	}
	if ways != 1 {
		return Invalid("media", "give exactly one of mediaId, url and data (got %d)", ways)
	}
	if req.Text != "" {
		return Invalid("text", "media carries a caption, not text")
	}
	var (
		data     []byte
		info     *media.Info
		mimetype = m.Mimetype
		filename = m.Filename
	)
	if mimetype != "" && media.BaseType(mimetype) == "" {
		return Invalid("media.mimetype", "%q is not a MIME type such as image/jpeg", mimetype)
	}
	switch {
	case m.MediaID != "":
		b, in, err := h.media.ReadAll(ctx, m.MediaID)
		if errors.Is(err, media.ErrNotFound) {
			return unprocessable("media.mediaId", "no media %q is stored; upload it with POST /v1/media", m.MediaID)
		}
		if err != nil {
			return err
		}
		data, info = b, in
		if mimetype == "" {
			mimetype = in.Mimetype
		}
		if filename == "" {
			filename = in.Filename
		}
	case m.URL != "":
		f, err := h.fetcher.Fetch(ctx, m.URL)
		if err != nil {
			return mediaError("media.url", err)
		}
		data = f.Data
		if mimetype == "" {
			mimetype = f.Mimetype
		}
		if filename == "" {
			filename = f.Filename
		}
	default:
		if mimetype == "" {
			return Invalid("media.mimetype", "inline data needs its mimetype")
		}
		b, err := base64.StdEncoding.DecodeString(m.Data)
		if err != nil {
			return Invalid("media.data", "not valid base64: %v", err)
		}
		if int64(len(b)) > h.media.MaxBytes() {
			return mediaError("media.data", &media.TooLargeError{Limit: h.media.MaxBytes()})
		}
		data = b
	}
	if len(data) == 0 {
		return unprocessable("media", "the media is empty")
	}
	kind := m.Kind
	if kind == "" {
		kind = media.InferKind(mimetype)
	}
	mk, ok := mediaKinds[kind]
	if !ok {
		return Invalid("media.kind", "%q is not one of %s", kind, strings.Join(media.Kinds, ", "))
	}
	if !media.Allowed(kind, mimetype) {
		return &Error{Status: http.StatusUnsupportedMediaType, Slug: "unsupported-media-type", Title: "Unsupported media type", Field: "media.mimetype",
			Detail: fmt.Sprintf("%s cannot be sent as %s; use one of %s", orUnknown(mimetype), kind, strings.Join(media.AllowedTypes(kind), ", "))}
	}
	if (mk == session.MediaAudio || mk == session.MediaVoice || mk == session.MediaSticker) && req.Caption != "" {
		return Invalid("caption", "%s cannot carry a caption", kind)
	}
	if info == nil {
		in, err := h.media.Put(ctx, bytes.NewReader(data), mimetype, filename)
		if err != nil {
			return mediaError("media", err)
		}
		info = in
	}
	out.Send.Media = &session.MediaSend{Kind: mk, Data: data, Mimetype: mimetype, Filename: filename, Caption: req.Caption, Seconds: m.Seconds}
	out.MediaID, out.MediaURL, out.MediaSHA256 = info.ID, mediaPath(info.ID), info.SHA256
	return nil
}

func orUnknown(mimetype string) string {
	if mimetype == "" {
		return "media of unknown type"
	}
	return mimetype
}

// mediaError maps media failures to problems naming field.
func mediaError(field string, err error) error {
	var tooLarge *media.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Slug: "media-too-large", Title: "Media too large", Field: field,
			Detail: fmt.Sprintf("the media exceeds media.max_bytes (%d bytes)", tooLarge.Limit)}
	case errors.Is(err, media.ErrForbiddenAddress):
		return &Error{Status: http.StatusUnprocessableEntity, Slug: "url-refused", Title: "Media URL refused", Field: field,
			Detail: err.Error() + "; the daemon does not fetch from loopback, private or link-local addresses (media.fetch_allow_private)", Err: err}
	case errors.Is(err, media.ErrFetch):
		return unprocessable(field, "%s", err.Error())
	}
	return err
}
