package sim

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// Send implements session.Session. The message.sent event and the server
// acknowledgement are reported before Send returns; delivery to a sim
// account of this network (or to an external contact, which simply
// "receives" it) and the delivered and read receipts follow on their own.
func (s *Session) Send(ctx context.Context, req *session.SendRequest) (*session.SendResult, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: no request", session.ErrInvalidRequest)
	}
	if s.getState() != stateConnected {
		return nil, fmt.Errorf("sim account %q is not connected: %w", s.acct.ID, session.ErrWrongState)
	}
	if s.n.opts.NetworkURL != "" {
		_, group := groupJID(req.To)
		_, broadcast := broadcastJID(req.To)
		if group || broadcast {
			return nil, ErrRemoteOnly
		}
	}
	var members []string // a group's (groupsend.go)
	to, err := parseRecipient(req.To)
	if gj, ok := groupJID(req.To); ok {
		to, err = gj, nil
		members, err = s.n.groupMembers(ctx, s, gj.String())
	}
	bj, broadcast := broadcastJID(req.To) // status.go
	if broadcast {
		to, err = bj, checkBroadcast(bj, req)
	}
	if err != nil {
		return nil, err
	}
	if req, err = s.withMentionAll(req, members); err != nil {
		return nil, err
	}
	f := s.n.faultsOf(s.acct.ID)
	if f.SendDelay > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(f.SendDelay):
		}
	}
	if f.FailSends != nil {
		return nil, fmt.Errorf("sim send failed: %w", f.FailSends)
	}

	now := time.Now().UTC().Truncate(time.Second)
	msg, err := s.n.buildMessage(req, to, now)
	if err != nil {
		return nil, err
	}
	id := req.ID
	if id == "" {
		id = newMessageID()
	}
	src := req.Source
	if src == "" {
		src = event.SourceAPI
	}
	info := types.MessageInfo{
		MessageSource: types.MessageSource{Chat: to, Sender: s.jid, IsFromMe: true, RecipientAlt: s.n.altOf(to)},
		ID:            id,
		Timestamp:     now,
		PushName:      s.pushName(),
		Type:          messageType(msg),
	}
	norm := s.normalizer(src)
	ev, err := norm.Message(&events.Message{Info: info, Message: msg, RawMessage: msg})
	if err != nil {
		return nil, fmt.Errorf("normalise sent message: %w", err)
	}
	if err := s.sink.Emit(ctx, ev); err != nil {
		return nil, fmt.Errorf("store sent message: %w", err)
	}
	if ack, err := norm.ServerAck(to, id, now); err == nil {
		if err := s.sink.Emit(ctx, ack); err != nil {
			s.log.Warn("sim server ack not stored", slog.String("message_id", id), slog.Any("error", err))
		}
	}
	switch {
	case f.DropSends:
	case s.n.opts.NetworkURL != "":
		if err := s.sendRemote(ctx, info, msg); err != nil {
			return nil, err
		}
	case to == types.StatusBroadcastJID:
		s.n.routeStatus(s, req.StatusRecipients, msg, info)
	case broadcast: // a list: its members are on the phone, not the sim
		s.n.scheduleReceipts(s.n.inbox(s.acct.ID), s.acct.ID, to, id, time.Now().Add(s.n.opts.DeliveredDelay))
	case members != nil:
		s.n.routeGroup(s, to, members, msg, info)
	default:
		s.n.route(s, to, msg, info)
	}
	return &session.SendResult{MessageID: id, Timestamp: now, Event: ev}, nil
}

// route carries a sent message to its recipient and schedules the
// receipts the sender gets back.
func (n *Network) route(from *Session, to types.JID, msg *waE2E.Message, sent types.MessageInfo) {
	recipient, onNetwork := n.accountFor(to)
	senderBox := n.inbox(from.acct.ID)
	receipts := func(deliveredAt time.Time) {
		n.scheduleReceipts(senderBox, from.acct.ID, to, sent.ID, deliveredAt)
	}
	// A note to self has nobody else to arrive at; it just gets receipts.
	if !onNetwork || recipient == from.acct.ID {
		receipts(time.Now().Add(n.opts.DeliveredDelay))
		return
	}
	n.inbox(recipient).add(time.Now(), func(ctx context.Context, rs *Session) error {
		info := types.MessageInfo{
			MessageSource: types.MessageSource{Chat: from.jid, Sender: from.jid, SenderAlt: from.lid},
			ID:            sent.ID,
			Timestamp:     sent.Timestamp,
			PushName:      from.pushName(),
			Type:          sent.Type,
		}
		ev, err := rs.normalizer(event.SourcePhone).Message(&events.Message{Info: info, Message: msg, RawMessage: msg})
		if err != nil {
			// Cannot happen for messages this package built; nothing to retry.
			rs.log.Error("sim delivery not normalisable; dropped", slog.String("message_id", sent.ID), slog.Any("error", err))
			return nil
		}
		if err := rs.sink.Emit(ctx, ev); err != nil {
			return err
		}
		receipts(time.Now().Add(n.opts.DeliveredDelay))
		return nil
	})
}

// scheduleReceipts queues delivered (at deliveredAt) and read (ReadDelay
// later) receipts for a message sent to peer.
func (n *Network) scheduleReceipts(box *inbox, accountID string, peer types.JID, messageID string, deliveredAt time.Time) {
	receipt := func(typ types.ReceiptType) func(ctx context.Context, s *Session) error {
		return func(ctx context.Context, s *Session) error {
			evs, err := s.normalizer(event.SourcePhone).Receipt(&events.Receipt{
				MessageSource: types.MessageSource{Chat: peer, Sender: peer, SenderAlt: n.altOf(peer)},
				MessageIDs:    []types.MessageID{messageID},
				Timestamp:     time.Now(),
				Type:          typ,
			})
			if err != nil {
				return err
			}
			for _, ev := range evs {
				if err := s.sink.Emit(ctx, ev); err != nil {
					return err
				}
			}
			return nil
		}
	}
	box.add(deliveredAt, receipt(types.ReceiptTypeDelivered))
	if n.opts.ReadDelay >= 0 {
		box.add(deliveredAt.Add(n.opts.ReadDelay), receipt(types.ReceiptTypeRead))
	}
}

// MarkRead implements session.Session: a sim account on this network gets
// the read receipts; an external contact has nobody to tell.
func (s *Session) MarkRead(ctx context.Context, chatID, senderID string, messageIDs []string) error {
	if s.getState() != stateConnected {
		return fmt.Errorf("sim account %q is not connected: %w", s.acct.ID, session.ErrWrongState)
	}
	sender, err := parseRecipient(senderID)
	if err != nil {
		return err
	}
	if rc := s.remote(); s.n.opts.NetworkURL != "" {
		if rc == nil {
			return fmt.Errorf("sim account %q is not connected: %w", s.acct.ID, session.ErrWrongState)
		}
		return rc.request(ctx, frame{Op: opRead, Receipt: &wireReceipt{Peer: sender.String(), IDs: messageIDs, Type: string(types.ReceiptTypeRead), Timestamp: time.Now()}})
	}
	peer, ok := s.n.accountFor(sender)
	if !ok {
		return nil
	}
	me, myAlt := s.jid, s.lid
	s.n.inbox(peer).add(time.Now(), func(ctx context.Context, ps *Session) error {
		evs, err := ps.normalizer(event.SourcePhone).Receipt(&events.Receipt{
			MessageSource: types.MessageSource{Chat: me, Sender: me, SenderAlt: myAlt},
			MessageIDs:    messageIDs,
			Timestamp:     time.Now(),
			Type:          types.ReceiptTypeRead,
		})
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := ps.sink.Emit(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	return nil
}

// altOf is the other address (LID for a phone JID and back) of a sim
// account on this network; empty for anyone else.
func (n *Network) altOf(j types.JID) types.JID {
	id, ok := n.accountFor(j)
	if !ok {
		return types.EmptyJID
	}
	if j.Server == types.HiddenUserServer {
		return JID(id)
	}
	return LID(id)
}

// parseRecipient accepts a user JID (phone number or LID). The sim has no
// groups or broadcast lists.
func parseRecipient(to string) (types.JID, error) {
	if to == "" {
		return types.EmptyJID, fmt.Errorf("%w: no recipient", session.ErrInvalidRequest)
	}
	j, err := types.ParseJID(to)
	if err != nil {
		return types.EmptyJID, fmt.Errorf("%w: recipient %q: %v", session.ErrInvalidRequest, to, err)
	}
	if j.Server != types.DefaultUserServer && j.Server != types.HiddenUserServer {
		return types.EmptyJID, fmt.Errorf("%w: the sim reaches users only (…@s.whatsapp.net or …@lid), not %q", session.ErrInvalidRequest, to)
	}
	if !isDigits(j.User) {
		return types.EmptyJID, fmt.Errorf("%w: recipient %q is not a number", session.ErrInvalidRequest, to)
	}
	return j.ToNonAD(), nil
}

// messageType is the stanza type WhatsApp puts in MessageInfo.Type.
func messageType(m *waE2E.Message) string {
	switch {
	case m.GetReactionMessage() != nil:
		return "reaction"
	case m.GetImageMessage() != nil, m.GetVideoMessage() != nil, m.GetAudioMessage() != nil,
		m.GetDocumentMessage() != nil, m.GetStickerMessage() != nil:
		return "media"
	}
	return "text"
}
