package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// Inbound is a message an external contact sends to a sim account. Exactly
// one of Text, Media, Location or Reaction is the content; ReplyTo quotes
// an earlier message of the chat.
type Inbound struct {
	// From is the sender: a phone number (digits, an optional leading +)
	// or a user JID.
	From string
	// Group, when set, is the group (…@g.us) the message is sent in: the
	// account and From must be members; the other sim members of this
	// network receive it too.
	Group string
	// PushName is the sender's display name.
	PushName string
	// ID fixes the WhatsApp message id; injecting one id twice is a
	// redelivery and is stored once. Empty picks a new id.
	ID string
	// Timestamp defaults to now.
	Timestamp time.Time

	Text     string
	Media    *session.MediaSend // Data may be empty: placeholder bytes are used
	Location *event.Location
	Reaction *session.ReactionSend
	ReplyTo  string
	// Vote is a vote on the poll Target (poll.go); Group is then the
	// poll's group, if it is in one.
	Vote *Vote
	// Target is the stored message ReplyTo or Reaction names, when the
	// caller has it. A quote then names its author (the contact or the
	// account) and carries its text, as a WhatsApp client's quote does; a
	// reaction's key says whose message it is. Without it a quote names no
	// author and has no text, and a reaction is taken to be to one of the
	// account's messages.
	Target *event.Message
}

// Inject delivers an inbound message to a connected sim account, through
// the same normalisation and Sink as any received message, and returns the
// stored event. session.ErrWrongState: the account is not connected;
// session.ErrInvalidRequest: the content cannot be expressed.
func (n *Network) Inject(ctx context.Context, accountID string, in *Inbound) (*event.Event, error) {
	s := n.session(accountID)
	if s == nil || s.getState() != stateConnected {
		return nil, fmt.Errorf("sim account %q is not connected: %w", accountID, session.ErrWrongState)
	}
	from, err := ParseAddress(in.From)
	if err != nil {
		return nil, err
	}
	chat, sender := from, from
	var members []string
	remote := n.opts.NetworkURL != ""
	if remote && (in.Group != "" || in.Vote != nil) {
		return nil, ErrRemoteOnly
	}
	if in.Group != "" {
		gj, ok := groupJID(in.Group)
		if !ok {
			return nil, fmt.Errorf("%w: %q is not a group JID (…@g.us)", session.ErrInvalidRequest, in.Group)
		}
		if members, err = n.injectGroup(ctx, s, gj.String(), from); err != nil {
			return nil, err
		}
		chat = gj
	}
	at := in.Timestamp
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC().Truncate(time.Second)
	if in.Vote != nil {
		return n.injectVote(ctx, s, in, chat, sender, at) // poll.go
	}
	req := &session.SendRequest{Text: in.Text, Media: in.Media, Location: in.Location}
	if in.ReplyTo != "" {
		q := &session.QuoteRef{MessageID: in.ReplyTo}
		if t := in.Target; t != nil {
			q.Sender, q.Message = t.From, t
			if q.Sender == "" && t.FromMe {
				q.Sender = s.jid.String()
			}
		}
		req.ReplyTo = q
	}
	if in.Reaction != nil {
		// The key as the contact's client builds it: fromMe means the
		// contact's own message.
		r := *in.Reaction
		r.FromMe = in.Target != nil && !in.Target.FromMe
		req.Reaction = &r
	}
	// The message as the contact's client puts it on the wire: keys name
	// the chat from their side (the account); normalisation turns them
	// round, as for a real contact.
	keyChat := s.jid
	if members != nil {
		keyChat = chat
	}
	msg, err := n.buildMessage(req, keyChat, at)
	if err != nil {
		return nil, err
	}
	id := in.ID
	if id == "" {
		id = newMessageID()
	}
	info := types.MessageInfo{
		MessageSource: types.MessageSource{Chat: chat, Sender: sender, SenderAlt: n.altOf(sender), IsGroup: members != nil},
		ID:            id,
		Timestamp:     at,
		PushName:      in.PushName,
		Type:          messageType(msg),
	}
	ev, err := s.normalizer(event.SourcePhone).Message(&events.Message{Info: info, Message: msg, RawMessage: msg})
	if err != nil {
		return nil, fmt.Errorf("normalise injected message: %w", err)
	}
	if remote {
		// Through the network, like any inbound message: stored by the
		// session when it arrives, and acknowledged then.
		if err := s.injectRemote(ctx, info, msg); err != nil {
			return nil, err
		}
		return ev, nil
	}
	if err := s.sink.Emit(ctx, ev); err != nil {
		return nil, fmt.Errorf("store injected message: %w", err)
	}
	if members != nil {
		n.fanOut(chat, members, s.jid.String(), msg, info)
	}
	return ev, nil
}

// ErrNotParticipant: an injected group message's sender is not in the
// group.
var ErrNotParticipant = fmt.Errorf("%w: the sender is not a participant of the group", session.ErrInvalidRequest)

// injectGroup checks that the account and from are in the group and
// returns its members but from (who receive the message as well).
func (n *Network) injectGroup(ctx context.Context, s *Session, groupJID string, from types.JID) ([]string, error) {
	g, err := n.group(ctx, groupJID)
	if err != nil {
		return nil, err
	}
	if g == nil || g.member(s.jid.String()) == nil {
		return nil, fmt.Errorf("group %s: %w", groupJID, session.ErrGroupNotFound)
	}
	sender, err := n.canonical(from.String())
	if err != nil {
		return nil, err
	}
	if g.member(sender) == nil {
		return nil, fmt.Errorf("%w: %s, group %s", ErrNotParticipant, from, groupJID)
	}
	return slices.DeleteFunc(g.memberJIDs(), func(m string) bool { return m == sender }), nil
}

// phoneSeparators are what people write between a number's digits. One
// replacer for every call: building one builds its lookup table again.
var phoneSeparators = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "", ".", "")

// ParseAddress turns a phone number ("+1 555 123-4567", "15551234567") or a
// user JID into a JID; session.ErrInvalidRequest when it is neither.
func ParseAddress(s string) (types.JID, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "@") {
		return parseRecipient(s)
	}
	digits := phoneSeparators.Replace(strings.TrimPrefix(s, "+"))
	if !isDigits(digits) || len(digits) < 5 || len(digits) > 15 {
		return types.EmptyJID, fmt.Errorf("%w: %q is not a phone number (5 to 15 digits with country code) or a JID", session.ErrInvalidRequest, s)
	}
	return types.NewJID(digits, types.DefaultUserServer), nil
}
