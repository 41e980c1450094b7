package sim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
)

// Vote is a contact's vote on a poll (Inbound.Vote): the options chosen,
// by name; none withdraws the contact's vote. Inbound.Target must be the
// stored poll.
type Vote struct {
	Options []string
}

// pollMessage is a poll creation as a WhatsApp client sends it: the
// question, the options and a fresh message secret, from which the keys
// of the votes on it are derived.
func pollMessage(p *session.PollSend) (*waE2E.Message, error) {
	if p.Name == "" || len(p.Options) < 2 {
		return nil, fmt.Errorf("%w: a poll needs a name and at least two options", session.ErrInvalidRequest)
	}
	if int(p.SelectableCount) > len(p.Options) {
		return nil, fmt.Errorf("%w: selectable count %d is more than the %d options", session.ErrInvalidRequest, p.SelectableCount, len(p.Options))
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	pc := &waE2E.PollCreationMessage{Name: proto.String(p.Name), SelectableOptionsCount: proto.Uint32(p.SelectableCount)}
	for _, o := range p.Options {
		pc.Options = append(pc.Options, &waE2E.PollCreationMessage_Option{OptionName: proto.String(o)})
	}
	m := &waE2E.Message{MessageContextInfo: &waE2E.MessageContextInfo{MessageSecret: secret}}
	if p.SelectableCount == 1 {
		m.PollCreationMessageV3 = pc // single choice, as WhatsApp's clients send it
	} else {
		m.PollCreationMessage = pc
	}
	return m, nil
}

// injectVote delivers a contact's vote on a stored poll to a sim account:
// a poll update message as the contact's client sends it, normalised like
// any received message, with the selection filled in as the driver's
// decryption would (the sim network carries it in the clear: there is no
// secret to derive a key from on the contact's side).
func (n *Network) injectVote(ctx context.Context, s *Session, in *Inbound, chat, sender types.JID, at time.Time) (*event.Event, error) {
	poll := in.Target
	if poll == nil || poll.Type != event.TypePoll || poll.Poll == nil {
		return nil, fmt.Errorf("%w: a vote needs the stored poll it votes on", session.ErrInvalidRequest)
	}
	hashes := make([][]byte, 0, len(in.Vote.Options))
	for _, name := range in.Vote.Options {
		if !slices.ContainsFunc(poll.Poll.Options, func(o event.PollOption) bool { return o.Name == name }) {
			return nil, fmt.Errorf("%w: %q is not an option of poll %s", session.ErrInvalidRequest, name, poll.MessageID)
		}
		sum := sha256.Sum256([]byte(name))
		hashes = append(hashes, sum[:])
	}
	if c := int(poll.Poll.SelectableCount); c > 0 && len(hashes) > c {
		return nil, fmt.Errorf("%w: poll %s takes at most %d options, not %d", session.ErrInvalidRequest, poll.MessageID, c, len(hashes))
	}
	// The key as the voter's client builds it: fromMe when the voter wrote
	// the poll; in a group the participant is the poll's author.
	key := &waCommon.MessageKey{RemoteJID: proto.String(s.jid.String()), FromMe: proto.Bool(!poll.FromMe), ID: proto.String(poll.MessageID)}
	if chat.Server == types.GroupServer {
		key.RemoteJID = proto.String(chat.String())
		author := poll.From
		if poll.FromMe {
			author = s.jid.String()
		}
		key.Participant = proto.String(author)
	}
	payload, iv := make([]byte, 32), make([]byte, 12)
	_, _ = rand.Read(payload)
	_, _ = rand.Read(iv)
	msg := &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{
		PollCreationMessageKey: key,
		Vote:                   &waE2E.PollEncValue{EncPayload: payload, EncIV: iv},
		SenderTimestampMS:      proto.Int64(voteClock(in.Timestamp)),
	}}
	id := in.ID
	if id == "" {
		id = newMessageID()
	}
	info := types.MessageInfo{
		MessageSource: types.MessageSource{Chat: chat, Sender: sender, SenderAlt: n.altOf(sender), IsGroup: chat.Server == types.GroupServer},
		ID:            id,
		Timestamp:     at,
		PushName:      in.PushName,
		Type:          "poll_update",
	}
	ev, err := s.normalizer(event.SourcePhone).Message(&events.Message{Info: info, Message: msg, RawMessage: msg})
	if err != nil {
		return nil, fmt.Errorf("normalise injected vote: %w", err)
	}
	if err := whatsapp.ApplyPollVote(ev.Message, &waE2E.PollVoteMessage{SelectedOptions: hashes}); err != nil {
		return nil, err
	}
	if err := s.sink.Emit(ctx, ev); err != nil {
		return nil, fmt.Errorf("store injected vote: %w", err)
	}
	return ev, nil
}

// lastVoteMs makes the sim's vote times strictly increasing: a voter's
// votes are ordered by them, and two injected within one millisecond must
// still count in the order they were made.
var lastVoteMs atomic.Int64

// voteClock is when a vote was cast, in Unix milliseconds: at (a
// backdated injection) or now, after every earlier vote of now.
func voteClock(at time.Time) int64 {
	if !at.IsZero() {
		return at.UnixMilli()
	}
	for {
		last, now := lastVoteMs.Load(), time.Now().UnixMilli()
		next := max(now, last+1)
		if lastVoteMs.CompareAndSwap(last, next) {
			return next
		}
	}
}
