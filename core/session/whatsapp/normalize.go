// Package whatsapp is the whatsmeow session driver. This file turns
// whatsmeow events into event.Event values.
package whatsapp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/wildcathub/wildcat/core/event"
)

// Normalizer turns whatsmeow events of one account into Wildcat events.
//
// It is a pure function of its input (plus Now for the few events WhatsApp
// does not timestamp): it never talks to WhatsApp. The consequences, which
// the driver handles with its live client:
//   - poll votes arrive encrypted; decrypt with Client.DecryptPollVote and
//     fill the result in with ApplyPollVote;
//   - history-sync messages must first be turned into *events.Message with
//     Client.ParseWebMessage (it needs the account's own JID), then passed to
//     a Normalizer whose Source is event.SourceHistory;
//   - server acks are not whatsmeow events; build them with ServerAck once
//     SendMessage returns.
type Normalizer struct {
	AccountID string
	// Source is stamped on every event; zero means event.SourcePhone.
	Source event.Source
	// Now timestamps presence, typing and history-sync events, which carry
	// no WhatsApp time; nil means time.Now.
	Now func() time.Time
	// Own and OwnLID are the account's own JIDs, by which group changes
	// that concern the account itself are told (GroupUpdate.Self); zero:
	// not told.
	Own, OwnLID types.JID
}

// NormalizeMessage normalises a live message of accountID. See
// Normalizer.Message.
func NormalizeMessage(accountID string, evt *events.Message) (*event.Event, error) {
	n := Normalizer{AccountID: accountID}
	return n.Message(evt)
}

// maxWrapperDepth bounds unwrapping, so a hostile chain of nested wrappers
// costs a bounded amount of work; real messages nest two or three deep.
const maxWrapperDepth = 16

// Message normalises a message event into message.received, message.sent,
// message.reaction, message.edited or message.revoked.
//
// It accepts events whatsmeow has already unwrapped (evt.Message is the
// content and evt.IsEphemeral etc. are set) as well as raw ones whose
// Message still holds ephemeral / view-once / document-with-caption / edit
// wrappers. Content it does not understand becomes type "unknown"; the raw
// proto is kept either way. It errs only on input it cannot give a
// deterministic id (no account, no message id) or cannot serialise.
func (n *Normalizer) Message(evt *events.Message) (*event.Event, error) {
	if evt == nil {
		return nil, errors.New("normalise message: nil event")
	}
	info := &evt.Info
	if n.AccountID == "" {
		return nil, fmt.Errorf("normalise message %q: empty account id", info.ID)
	}
	if info.ID == "" {
		return nil, fmt.Errorf("normalise message from %s in %s: empty message id", info.Sender, info.Chat)
	}

	raw := evt.RawMessage
	if raw == nil {
		raw = evt.Message
	}
	var rawBytes []byte
	if raw != nil {
		var err error
		// Deterministic so that a redelivered message stores identical bytes;
		// AllowPartial because a missing proto2 required field in some
		// sub-message must not cost us the whole message.
		rawBytes, err = proto.MarshalOptions{Deterministic: true, AllowPartial: true}.Marshal(raw)
		if err != nil {
			return nil, fmt.Errorf("normalise message %q: marshal raw proto: %w", info.ID, err)
		}
	}

	content := evt.Message
	if content == nil {
		content = evt.RawMessage
	}
	content, wrap := unwrap(content)

	msg := &event.Message{
		AccountID: n.AccountID,
		MessageID: info.ID,
		ChatID:    jidString(info.Chat),
		From:      jidString(info.Sender),
		FromMe:    info.IsFromMe,
		PushName:  info.PushName,
		Raw:       rawBytes,
	}
	if !info.Timestamp.IsZero() {
		msg.Timestamp = info.Timestamp.Unix()
	}
	msg.FromLID, msg.FromPN = splitAddress(info.Sender, info.SenderAlt)
	if isUserJID(info.Chat) {
		// In a DM the chat is the other party: its alternate address is the
		// sender's when they wrote to us, the recipient's when we wrote.
		alt := info.SenderAlt
		if info.IsFromMe {
			alt = info.RecipientAlt
		}
		msg.ChatLID, msg.ChatPN = splitAddress(info.Chat, alt)
	}
	msg.IsGroup = info.Chat.Server == types.GroupServer
	msg.IsStatus = info.Chat.Server == types.BroadcastServer && info.Chat.User == types.StatusBroadcastJID.User
	msg.IsBroadcast = info.Chat.IsBroadcastList()

	parts := describe(content)
	parts.apply(msg)

	ci := contextInfo(content)
	if ci.GetStanzaID() != "" {
		q := &event.Quoted{
			MessageID:   ci.GetStanzaID(),
			Participant: ci.GetParticipant(),
		}
		if remote := ci.GetRemoteJID(); remote != "" && remote != msg.ChatID {
			q.ChatID = remote
		}
		if qm := ci.GetQuotedMessage(); qm != nil {
			qc, _ := unwrap(qm)
			qp := describe(qc)
			q.Type, q.Text = qp.typ, qp.text
		}
		msg.Quoted = q
	}
	msg.Mentions = append([]string(nil), ci.GetMentionedJID()...)
	if len(msg.Mentions) == 0 {
		msg.Mentions = nil
	}
	msg.IsForwarded = ci.GetIsForwarded()
	msg.IsEphemeral = evt.IsEphemeral || wrap.ephemeral || ci.GetExpiration() > 0
	msg.IsViewOnce = evt.IsViewOnce || wrap.viewOnce || parts.viewOnce
	// An edit wrapper around ordinary content (rather than around the edit
	// protocol message) is whatsmeow's history rendering of an edited
	// message: the id is the original's and the content is the final one.
	msg.Edited = (evt.IsEdit || wrap.edit) && parts.typ != event.TypeEdit
	msg.Revoked = evt.SourceWebMsg.GetMessageStubType() == waWeb.WebMessageInfo_REVOKE

	ev := &event.Event{
		ID:        event.MessageEventID(n.AccountID, info.ID),
		Kind:      event.KindMessageReceived,
		AccountID: n.AccountID,
		Timestamp: utc(info.Timestamp),
		ChatID:    msg.ChatID,
		Source:    n.source(),
		Message:   msg,
	}
	if info.IsFromMe {
		ev.Kind = event.KindMessageSent
	}
	switch {
	case parts.reaction != nil:
		ev.Kind = event.KindMessageReaction
		ev.Reaction = parts.reaction
		if !info.IsFromMe {
			ourView(ev.Reaction, info, msg)
		}
	case parts.edit != nil:
		ev.Kind = event.KindMessageEdited
		ev.Edit = parts.edit
	case parts.revoke != nil:
		ev.Kind = event.KindMessageRevoked
		r := parts.revoke
		r.By = msg.From
		// In groups WhatsApp marks admin deletions with edit="8"; the key's
		// participant differing from the revoker says the same for older
		// clients.
		r.Admin = info.Edit == types.EditAttributeAdminRevoke ||
			(r.TargetSender != "" && r.TargetSender != msg.From && r.TargetSender != msg.FromLID && r.TargetSender != msg.FromPN)
		ev.Revoke = r
	}
	sanitizeStrings(reflect.ValueOf(ev))
	return ev, nil
}

// ApplyPollVote records the decrypted selection of a poll vote (from
// whatsmeow's Client.DecryptPollVote) in a normalised poll_vote message.
func ApplyPollVote(msg *event.Message, vote *waE2E.PollVoteMessage) error {
	if msg == nil || msg.PollVote == nil {
		return errors.New("apply poll vote: message is not a poll vote")
	}
	selected := make([]string, 0, len(vote.GetSelectedOptions()))
	for _, h := range vote.GetSelectedOptions() {
		selected = append(selected, hex.EncodeToString(h))
	}
	msg.PollVote.SelectedOptions = selected
	msg.PollVote.Decrypted = true
	return nil
}

// Receipt normalises a receipt into one message.status event per message
// id. One event per id keeps each event idempotent on its own and lets the
// store apply Status.Advances per message; WhatsApp batches ids when a chat
// with many unread messages is opened, and splitting costs only events.
//
// Receipt types that are not progress of a message return no events:
// "sender" (our own other devices got a message we sent), "retry" (handled
// inside whatsmeow), server errors, inactive, peer and history-sync receipts.
// read-self and played-self map to read and played with Status.Self set.
func (n *Normalizer) Receipt(evt *events.Receipt) ([]*event.Event, error) {
	if evt == nil {
		return nil, errors.New("normalise receipt: nil event")
	}
	if n.AccountID == "" {
		return nil, errors.New("normalise receipt: empty account id")
	}
	var (
		status event.MessageStatus
		self   bool
	)
	switch evt.Type {
	case types.ReceiptTypeDelivered:
		status = event.StatusDelivered
	case types.ReceiptTypeRead:
		status = event.StatusRead
	case types.ReceiptTypeReadSelf:
		status, self = event.StatusRead, true
	case types.ReceiptTypePlayed:
		status = event.StatusPlayed
	case types.ReceiptTypePlayedSelf:
		status, self = event.StatusPlayed, true
	default:
		return nil, nil
	}
	from := jidString(evt.Sender)
	_, fromPN := splitAddress(evt.Sender, evt.SenderAlt)
	chat := jidString(evt.Chat)
	out := make([]*event.Event, 0, len(evt.MessageIDs))
	seen := make(map[string]bool, len(evt.MessageIDs))
	for _, id := range evt.MessageIDs {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, &event.Event{
			ID:        event.StatusEventID(n.AccountID, id, status, from),
			Kind:      event.KindMessageStatus,
			AccountID: n.AccountID,
			Timestamp: utc(evt.Timestamp),
			ChatID:    chat,
			Source:    n.source(),
			Status: &event.Status{
				MessageID:     id,
				Status:        status,
				From:          from,
				FromPN:        fromPN,
				ChatID:        chat,
				Self:          self,
				MessageSender: jidString(evt.MessageSender),
			},
		})
	}
	for _, ev := range out {
		sanitizeStrings(reflect.ValueOf(ev))
	}
	return out, nil
}

// ServerAck builds the message.status event for a message the WhatsApp
// server accepted (whatsmeow reports it as SendMessage's return, not as an
// event).
func (n *Normalizer) ServerAck(chat types.JID, messageID types.MessageID, at time.Time) (*event.Event, error) {
	if n.AccountID == "" || messageID == "" {
		return nil, fmt.Errorf("server ack for message %q of account %q: empty id", messageID, n.AccountID)
	}
	chatID := jidString(chat)
	return &event.Event{
		ID:        event.StatusEventID(n.AccountID, messageID, event.StatusSent, ""),
		Kind:      event.KindMessageStatus,
		AccountID: n.AccountID,
		Timestamp: utc(at),
		ChatID:    chatID,
		Source:    n.source(),
		Status: &event.Status{
			MessageID: messageID,
			Status:    event.StatusSent,
			ChatID:    chatID,
		},
	}, nil
}

// Presence normalises a contact's online/offline update.
func (n *Normalizer) Presence(evt *events.Presence) (*event.Event, error) {
	if evt == nil {
		return nil, errors.New("normalise presence: nil event")
	}
	if n.AccountID == "" {
		return nil, errors.New("normalise presence: empty account id")
	}
	at := n.now()
	jid := jidString(evt.From)
	p := &event.Presence{JID: jid, Available: !evt.Unavailable}
	if !evt.LastSeen.IsZero() {
		ls := evt.LastSeen.UTC()
		p.LastSeen = &ls
	}
	return &event.Event{
		ID:        event.PresenceEventID(n.AccountID, jid, p.Available, at),
		Kind:      event.KindPresenceUpdate,
		AccountID: n.AccountID,
		Timestamp: at,
		ChatID:    jid,
		Source:    n.source(),
		Presence:  p,
	}, nil
}

// ChatPresence normalises a typing / recording / paused notification.
func (n *Normalizer) ChatPresence(evt *events.ChatPresence) (*event.Event, error) {
	if evt == nil {
		return nil, errors.New("normalise chat presence: nil event")
	}
	if n.AccountID == "" {
		return nil, errors.New("normalise chat presence: empty account id")
	}
	var state event.TypingState
	switch {
	case evt.State == types.ChatPresencePaused:
		state = event.TypingPaused
	case evt.State == types.ChatPresenceComposing && evt.Media == types.ChatPresenceMediaAudio:
		state = event.TypingRecording
	case evt.State == types.ChatPresenceComposing:
		state = event.TypingComposing
	default:
		return nil, fmt.Errorf("normalise chat presence in %s: unknown state %q", evt.Chat, evt.State)
	}
	at := n.now()
	t := &event.Typing{
		ChatID: jidString(evt.Chat),
		From:   jidString(evt.Sender),
		State:  state,
	}
	_, t.FromPN = splitAddress(evt.Sender, evt.SenderAlt)
	return &event.Event{
		ID:        event.TypingEventID(n.AccountID, t.ChatID, t.From, state, at),
		Kind:      event.KindChatTyping,
		AccountID: n.AccountID,
		Timestamp: at,
		ChatID:    t.ChatID,
		Source:    n.source(),
		Typing:    t,
	}, nil
}

// GroupInfo normalises a group metadata or membership change. Community
// link/unlink, suspension and unknown changes are not modelled yet; they are
// dropped from the payload, not the event.
func (n *Normalizer) GroupInfo(evt *events.GroupInfo) (*event.Event, error) {
	if evt == nil {
		return nil, errors.New("normalise group info: nil event")
	}
	if n.AccountID == "" {
		return nil, errors.New("normalise group info: empty account id")
	}
	g := &event.GroupUpdate{
		JID:        jidString(evt.JID),
		InviteLink: derefString(evt.NewInviteLink),
		JoinReason: evt.JoinReason,
		Added:      jidStrings(evt.Join),
		Promoted:   jidStrings(evt.Promote),
		Demoted:    jidStrings(evt.Demote),
	}
	var actors []types.JID
	if evt.Sender != nil {
		g.Actor = jidString(*evt.Sender)
		actors = append(actors, evt.Sender.ToNonAD())
		if evt.Sender.Server == types.HiddenUserServer {
			g.ActorLID = g.Actor
		}
	}
	if evt.SenderPN != nil {
		g.ActorPN = jidString(*evt.SenderPN)
		actors = append(actors, evt.SenderPN.ToNonAD())
	}
	// WhatsApp reports leaving and being removed alike; the actor tells
	// them apart: who leaves on their own is their own actor (for the
	// account, in either of its forms).
	for _, j := range evt.Leave {
		if j.IsEmpty() {
			continue
		}
		if slices.Contains(actors, j.ToNonAD()) || (n.isOwn(j) && slices.ContainsFunc(actors, n.isOwn)) {
			g.Left = append(g.Left, jidString(j))
		} else {
			g.Removed = append(g.Removed, jidString(j))
		}
	}
	g.Participants = participantForms(evt.Join, evt.Leave, evt.Promote, evt.Demote)
	if evt.MembershipApprovalMode != nil {
		on := evt.MembershipApprovalMode.IsJoinApprovalRequired
		g.JoinApproval = &on
	}
	g.Self = n.selfChange(evt)
	if evt.Name != nil {
		g.Name = evt.Name.Name
	}
	if evt.Topic != nil {
		g.Topic = evt.Topic.Topic
		g.TopicDeleted = evt.Topic.TopicDeleted
	}
	if evt.Locked != nil {
		g.Locked = &evt.Locked.IsLocked
	}
	if evt.Announce != nil {
		g.Announce = &evt.Announce.IsAnnounce
	}
	if evt.Ephemeral != nil {
		var timer uint32
		if evt.Ephemeral.IsEphemeral {
			timer = evt.Ephemeral.DisappearingTimer
		}
		g.EphemeralSeconds = &timer
	}
	if evt.Delete != nil {
		g.Deleted = evt.Delete.Deleted
	}
	at := evt.Timestamp
	if at.IsZero() {
		at = n.now()
	}
	sanitizeStrings(reflect.ValueOf(g))
	return &event.Event{
		ID:        event.GroupEventID(n.AccountID, at, g),
		Kind:      event.KindGroupUpdate,
		AccountID: n.AccountID,
		Timestamp: utc(at),
		ChatID:    g.JID,
		Source:    n.source(),
		Group:     g,
	}, nil
}

// HistorySync normalises the progress of one history-sync blob. The
// messages inside are not normalised here (see Normalizer).
func (n *Normalizer) HistorySync(evt *events.HistorySync) (*event.Event, error) {
	if evt == nil || evt.Data == nil {
		return nil, errors.New("normalise history sync: no data")
	}
	if n.AccountID == "" {
		return nil, errors.New("normalise history sync: empty account id")
	}
	d := evt.Data
	h := &event.HistorySync{
		Type:              strings.ToLower(d.GetSyncType().String()),
		Progress:          d.GetProgress(),
		ChunkOrder:        d.GetChunkOrder(),
		ConversationCount: len(d.GetConversations()),
	}
	var ids []string
	for _, conv := range d.GetConversations() {
		for _, m := range conv.GetMessages() {
			ids = append(ids, conv.GetID()+"/"+m.GetMessage().GetKey().GetID())
		}
	}
	h.MessageCount = len(ids)
	return &event.Event{
		ID:        event.HistoryEventID(n.AccountID, h, ids),
		Kind:      event.KindHistorySync,
		AccountID: n.AccountID,
		Timestamp: n.now(),
		Source:    n.source(),
		History:   h,
	}, nil
}

func (n *Normalizer) source() event.Source {
	if n.Source == "" {
		return event.SourcePhone
	}
	return n.Source
}

func (n *Normalizer) now() time.Time {
	if n.Now == nil {
		return time.Now().UTC()
	}
	return n.Now().UTC()
}

// wrappers records which wrapper messages unwrap removed.
type wrappers struct {
	ephemeral, viewOnce, edit bool
}

// unwrap strips the container messages WhatsApp puts around content. It is
// the same set whatsmeow's UnwrapRaw handles plus a few newer containers,
// so it is a no-op on an event whatsmeow already unwrapped.
func unwrap(m *waE2E.Message) (*waE2E.Message, wrappers) {
	var w wrappers
	for range maxWrapperDepth {
		var inner *waE2E.Message
		switch {
		case m.GetDeviceSentMessage().GetMessage() != nil:
			inner = m.GetDeviceSentMessage().GetMessage()
		case m.GetEphemeralMessage().GetMessage() != nil:
			inner, w.ephemeral = m.GetEphemeralMessage().GetMessage(), true
		case m.GetViewOnceMessage().GetMessage() != nil:
			inner, w.viewOnce = m.GetViewOnceMessage().GetMessage(), true
		case m.GetViewOnceMessageV2().GetMessage() != nil:
			inner, w.viewOnce = m.GetViewOnceMessageV2().GetMessage(), true
		case m.GetViewOnceMessageV2Extension().GetMessage() != nil:
			inner, w.viewOnce = m.GetViewOnceMessageV2Extension().GetMessage(), true
		case m.GetDocumentWithCaptionMessage().GetMessage() != nil:
			inner = m.GetDocumentWithCaptionMessage().GetMessage()
		case m.GetEditedMessage().GetMessage() != nil:
			inner, w.edit = m.GetEditedMessage().GetMessage(), true
		case m.GetBotInvokeMessage().GetMessage() != nil:
			inner = m.GetBotInvokeMessage().GetMessage()
		case m.GetLottieStickerMessage().GetMessage() != nil:
			inner = m.GetLottieStickerMessage().GetMessage()
		case m.GetGroupMentionedMessage().GetMessage() != nil:
			inner = m.GetGroupMentionedMessage().GetMessage()
		case m.GetPollCreationMessageV4().GetMessage() != nil:
			inner = m.GetPollCreationMessageV4().GetMessage()
		default:
			return m, w
		}
		m = inner
	}
	return m, w
}

// content is what describe learns from one unwrapped message.
type content struct {
	typ         event.MessageType
	text        string
	media       *event.Media
	location    *event.Location
	contacts    []event.Contact
	poll        *event.Poll
	pollVote    *event.PollVote
	linkPreview *event.LinkPreview
	viewOnce    bool

	reaction *event.Reaction
	edit     *event.Edit
	revoke   *event.Revoke
}

func (c *content) apply(msg *event.Message) {
	msg.Type = c.typ
	msg.Text = c.text
	msg.HasMedia = c.typ.HasMedia()
	msg.Media = c.media
	msg.Location = c.location
	msg.Contacts = c.contacts
	msg.Poll = c.poll
	msg.PollVote = c.pollVote
	msg.LinkPreview = c.linkPreview
}

// describe classifies unwrapped content. The order of the cases only matters
// for malformed messages that set several content fields; the first wins.
func describe(m *waE2E.Message) content {
	switch {
	case m == nil:
		return content{typ: event.TypeUnknown}
	case m.Conversation != nil:
		return content{typ: event.TypeText, text: m.GetConversation()}
	case m.ExtendedTextMessage != nil:
		x := m.GetExtendedTextMessage()
		c := content{typ: event.TypeText, text: x.GetText()}
		if x.GetMatchedText() != "" || x.GetTitle() != "" {
			c.linkPreview = &event.LinkPreview{URL: x.GetMatchedText(), Title: x.GetTitle(), Description: x.GetDescription()}
		}
		return c
	case m.ImageMessage != nil:
		x := m.GetImageMessage()
		return content{
			typ:      event.TypeImage,
			text:     x.GetCaption(),
			viewOnce: x.GetViewOnce(),
			media: withFile(x, event.Media{
				Caption: x.GetCaption(),
				Width:   x.GetWidth(), Height: x.GetHeight(),
			}),
		}
	case m.VideoMessage != nil:
		c := video(m.GetVideoMessage())
		if c.media.GIF {
			c.typ = event.TypeGIF
		}
		return c
	case m.PtvMessage != nil:
		c := video(m.GetPtvMessage())
		c.typ, c.media.PTV = event.TypePTV, true
		return c
	case m.AudioMessage != nil:
		x := m.GetAudioMessage()
		c := content{
			typ:      event.TypeAudio,
			viewOnce: x.GetViewOnce(),
			media: withFile(x, event.Media{
				DurationSeconds: x.GetSeconds(), Voice: x.GetPTT(),
			}),
		}
		if x.GetPTT() {
			c.typ = event.TypeVoice
		}
		return c
	case m.DocumentMessage != nil:
		x := m.GetDocumentMessage()
		return content{
			typ:  event.TypeDocument,
			text: x.GetCaption(),
			media: withFile(x, event.Media{
				Caption:  x.GetCaption(),
				Filename: x.GetFileName(), PageCount: x.GetPageCount(),
			}),
		}
	case m.StickerMessage != nil:
		x := m.GetStickerMessage()
		return content{
			typ: event.TypeSticker,
			media: withFile(x, event.Media{
				Width: x.GetWidth(), Height: x.GetHeight(),
				IsAnimated: x.GetIsAnimated() || x.GetIsLottie(),
			}),
		}
	case m.LocationMessage != nil:
		x := m.GetLocationMessage()
		c := content{
			typ:  event.TypeLocation,
			text: x.GetComment(),
			location: &event.Location{
				Latitude: finite(x.GetDegreesLatitude()), Longitude: finite(x.GetDegreesLongitude()),
				Name: x.GetName(), Address: x.GetAddress(), URL: x.GetURL(),
				Live: x.GetIsLive(), AccuracyMeters: x.GetAccuracyInMeters(),
				SpeedMps: float32(finite(float64(x.GetSpeedInMps()))), Heading: x.GetDegreesClockwiseFromMagneticNorth(),
				Caption: x.GetComment(),
			},
		}
		if x.GetIsLive() {
			c.typ = event.TypeLiveLocation
		}
		return c
	case m.LiveLocationMessage != nil:
		x := m.GetLiveLocationMessage()
		return content{
			typ:  event.TypeLiveLocation,
			text: x.GetCaption(),
			location: &event.Location{
				Latitude: finite(x.GetDegreesLatitude()), Longitude: finite(x.GetDegreesLongitude()),
				Live: true, AccuracyMeters: x.GetAccuracyInMeters(),
				SpeedMps: float32(finite(float64(x.GetSpeedInMps()))), Heading: x.GetDegreesClockwiseFromMagneticNorth(),
				Sequence: x.GetSequenceNumber(), Caption: x.GetCaption(),
			},
		}
	case m.ContactMessage != nil:
		x := m.GetContactMessage()
		return content{
			typ:      event.TypeContact,
			contacts: []event.Contact{{DisplayName: x.GetDisplayName(), VCard: x.GetVcard()}},
		}
	case m.ContactsArrayMessage != nil:
		x := m.GetContactsArrayMessage()
		c := content{typ: event.TypeContacts}
		for _, ct := range x.GetContacts() {
			if ct == nil {
				continue
			}
			c.contacts = append(c.contacts, event.Contact{DisplayName: ct.GetDisplayName(), VCard: ct.GetVcard()})
		}
		return c
	case m.ReactionMessage != nil:
		x := m.GetReactionMessage()
		return content{
			typ: event.TypeReaction,
			reaction: &event.Reaction{
				TargetID:          x.GetKey().GetID(),
				TargetChatID:      x.GetKey().GetRemoteJID(),
				TargetSender:      x.GetKey().GetParticipant(),
				TargetFromMe:      x.GetKey().GetFromMe(),
				Emoji:             x.GetText(),
				Removed:           x.GetText() == "",
				SenderTimestampMs: x.GetSenderTimestampMS(),
			},
		}
	case m.PollCreationMessage != nil:
		return poll(m.GetPollCreationMessage())
	case m.PollCreationMessageV2 != nil:
		return poll(m.GetPollCreationMessageV2())
	case m.PollCreationMessageV3 != nil:
		return poll(m.GetPollCreationMessageV3())
	case m.PollCreationMessageV5 != nil:
		return poll(m.GetPollCreationMessageV5())
	case m.PollUpdateMessage != nil:
		x := m.GetPollUpdateMessage()
		key := x.GetPollCreationMessageKey()
		return content{
			typ: event.TypePollVote,
			pollVote: &event.PollVote{
				PollMessageID:     key.GetID(),
				PollChatID:        key.GetRemoteJID(),
				PollCreator:       key.GetParticipant(),
				PollFromMe:        key.GetFromMe(),
				EncPayload:        x.GetVote().GetEncPayload(),
				EncIV:             x.GetVote().GetEncIV(),
				SenderTimestampMs: x.GetSenderTimestampMS(),
			},
		}
	case m.ProtocolMessage != nil:
		return protocol(m.GetProtocolMessage())
	default:
		return content{typ: event.TypeUnknown}
	}
}

func video(x *waE2E.VideoMessage) content {
	return content{
		typ:      event.TypeVideo,
		text:     x.GetCaption(),
		viewOnce: x.GetViewOnce(),
		media: withFile(x, event.Media{
			Caption:         x.GetCaption(),
			DurationSeconds: x.GetSeconds(), Width: x.GetWidth(), Height: x.GetHeight(),
			GIF: x.GetGifPlayback(),
		}),
	}
}

func poll(x *waE2E.PollCreationMessage) content {
	p := &event.Poll{
		Name:            x.GetName(),
		Options:         []event.PollOption{},
		SelectableCount: x.GetSelectableOptionsCount(),
	}
	for _, o := range x.GetOptions() {
		if o == nil {
			continue
		}
		// Votes name options by SHA-256 of the option text (whatsmeow's
		// HashPollOptions); precomputing it lets consumers match votes.
		sum := sha256.Sum256([]byte(o.GetOptionName()))
		p.Options = append(p.Options, event.PollOption{Name: o.GetOptionName(), Hash: hex.EncodeToString(sum[:])})
	}
	return content{typ: event.TypePoll, poll: p}
}

func protocol(x *waE2E.ProtocolMessage) content {
	switch x.GetType() {
	case waE2E.ProtocolMessage_MESSAGE_EDIT:
		inner, _ := unwrap(x.GetEditedMessage())
		nc := describe(inner)
		newMsg := &event.Message{}
		nc.apply(newMsg)
		return content{
			typ:  event.TypeEdit,
			text: nc.text,
			edit: &event.Edit{
				TargetID:   x.GetKey().GetID(),
				Text:       nc.text,
				Message:    newMsg,
				EditedAtMs: x.GetTimestampMS(),
			},
		}
	case waE2E.ProtocolMessage_REVOKE:
		return content{
			typ: event.TypeRevoke,
			revoke: &event.Revoke{
				TargetID:     x.GetKey().GetID(),
				TargetSender: x.GetKey().GetParticipant(),
			},
		}
	default:
		return content{typ: event.TypeProtocol}
	}
}

// contextInfo finds the ContextInfo (reply, mentions, forwarding) of a
// message. Every content type has its own contextInfo field, so rather than
// list the dozens of types by hand this looks for the first set sub-message
// that has one; new content types then work without code changes.
func contextInfo(m *waE2E.Message) *waE2E.ContextInfo {
	if m == nil {
		return nil
	}
	// Range visits only the fields that are set (usually one), where a
	// walk over the descriptor's dozens of fields asked each in turn.
	var found *waE2E.ContextInfo
	var at protoreflect.FieldNumber
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() || (found != nil && fd.Number() > at) {
			return true
		}
		sub := v.Message()
		cfd := sub.Descriptor().Fields().ByName("contextInfo")
		if cfd == nil || !sub.Has(cfd) {
			return true
		}
		if ci, ok := sub.Get(cfd).Message().Interface().(*waE2E.ContextInfo); ok {
			found, at = ci, fd.Number() // the lowest-numbered, whatever the visiting order
		}
		return true
	})
	return found
}

// splitAddress sorts a JID and its alternate into LID and phone-number
// form; either result is empty when WhatsApp did not give that form.
func splitAddress(jids ...types.JID) (lid, pn string) {
	for _, j := range jids {
		switch j.Server {
		case types.HiddenUserServer:
			if lid == "" {
				lid = jidString(j)
			}
		case types.DefaultUserServer:
			if pn == "" {
				pn = jidString(j)
			}
		}
	}
	return lid, pn
}

// ourView turns the key of a reaction someone else sent, which names the
// target from the reactor's side (whatsmeow's BuildMessageKey: the chat as
// the reactor sees it, fromMe meaning the reactor's own message), into the
// account's side. In a one-to-one chat the reactor's chat is our own JID
// and their "not mine" is ours; in a group the chat is the group for
// everyone, and only the reactor's own message changes hands.
func ourView(r *event.Reaction, info *types.MessageInfo, msg *event.Message) {
	theirs := r.TargetFromMe // the reactor reacted to their own message
	if isUserJID(info.Chat) {
		r.TargetChatID = msg.ChatID
		r.TargetFromMe = !theirs
		r.TargetSender = ""
		if theirs {
			r.TargetSender = msg.From
		}
		return
	}
	if theirs {
		r.TargetFromMe, r.TargetSender = false, msg.From
	}
}

func isUserJID(j types.JID) bool {
	return j.Server == types.DefaultUserServer || j.Server == types.HiddenUserServer
}

// jidString renders a JID without its device part: events are about users
// and chats, not about which of a user's devices was involved.
func jidString(j types.JID) string {
	if j.IsEmpty() {
		return ""
	}
	return j.ToNonAD().String()
}

func jidStrings(js []types.JID) []string {
	if len(js) == 0 {
		return nil
	}
	out := make([]string, 0, len(js))
	for _, j := range js {
		if s := jidString(j); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func hexOf(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return hex.EncodeToString(b)
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// finite maps NaN and infinities, which a buggy or hostile client can put
// in a location, to 0: encoding/json cannot render them, and one bad
// coordinate must not make the whole event undeliverable.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// sanitizeStrings replaces invalid UTF-8 in every string reachable from v.
// WhatsApp's protos are proto2, whose strings are not validated, so a
// sender can put arbitrary bytes in a caption or group name; BSON and JSON
// both require UTF-8, and a message the store rejects would be redelivered
// forever. The exact bytes survive in Message.Raw.
func sanitizeStrings(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			sanitizeStrings(v.Elem())
		}
	case reflect.Struct:
		for _, i := range exportedFields(v.Type()) {
			sanitizeStrings(v.Field(i))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // bytes, not text
		}
		for i := range v.Len() {
			sanitizeStrings(v.Index(i))
		}
	case reflect.String:
		if s := v.String(); !utf8.ValidString(s) && v.CanSet() {
			v.SetString(strings.ToValidUTF8(s, "\uFFFD"))
		}
	}
}

// exportedFields lists the indexes of t's exported fields, once per type:
// asking reflect for each field's StructField on every event was most of
// sanitizeStrings' cost.
func exportedFields(t reflect.Type) []int {
	if f, ok := exportedFieldsOf.Load(t); ok {
		return f.([]int)
	}
	var f []int
	for i := range t.NumField() {
		if t.Field(i).IsExported() {
			f = append(f, i)
		}
	}
	exportedFieldsOf.Store(t, f)
	return f
}

var exportedFieldsOf sync.Map // reflect.Type → []int

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// mediaFile is what every WhatsApp media sub-message carries about its file.
type mediaFile interface {
	GetMimetype() string
	GetFileLength() uint64
	GetFileSHA256() []byte
	GetFileEncSHA256() []byte
	GetMediaKey() []byte
	GetMediaKeyTimestamp() int64
	GetDirectPath() string
	GetURL() string
}

// withFile fills m's file fields from x, so each media type only names what
// is particular to it.
func withFile(x mediaFile, m event.Media) *event.Media {
	m.Mimetype, m.Size = x.GetMimetype(), x.GetFileLength()
	m.SHA256, m.FileEncSHA256 = hexOf(x.GetFileSHA256()), hexOf(x.GetFileEncSHA256())
	m.MediaKey, m.MediaKeyTimestamp = x.GetMediaKey(), x.GetMediaKeyTimestamp()
	m.DirectPath, m.URL = x.GetDirectPath(), x.GetURL()
	return &m
}
