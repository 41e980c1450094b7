package sim

import (
	"context"
	"log/slog"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wildcathub/wildcat/core/event"
)

// groupJID recognises a group JID (…@g.us).
func groupJID(s string) (types.JID, bool) {
	j, err := types.ParseJID(s)
	if err != nil || j.Server != types.GroupServer || j.User == "" {
		return types.EmptyJID, false
	}
	return j, true
}

// routeGroup fans a message sent to a group out to every other member
// that is a sim account of this network, as a received message of the
// group chat from the sender, and schedules the receipts the sender gets
// back (from the first other member, as WhatsApp reports the first).
func (n *Network) routeGroup(from *Session, group types.JID, members []string, msg *waE2E.Message, sent types.MessageInfo) {
	info := types.MessageInfo{
		MessageSource: types.MessageSource{Chat: group, Sender: from.jid, SenderAlt: from.lid, IsGroup: true},
		ID:            sent.ID,
		Timestamp:     sent.Timestamp,
		PushName:      from.pushName(),
		Type:          sent.Type,
	}
	n.fanOut(group, members, from.jid.String(), msg, info)
	var first types.JID
	for _, m := range members {
		if m != from.jid.String() {
			first, _ = types.ParseJID(m)
			break
		}
	}
	if first.IsEmpty() {
		return
	}
	box := n.inbox(from.acct.ID)
	receipt := func(typ types.ReceiptType) func(ctx context.Context, s *Session) error {
		return func(ctx context.Context, s *Session) error {
			evs, err := s.normalizer(event.SourcePhone).Receipt(&events.Receipt{
				MessageSource: types.MessageSource{Chat: group, Sender: first, SenderAlt: n.altOf(first), IsGroup: true},
				MessageIDs:    []types.MessageID{sent.ID},
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
	delivered := time.Now().Add(n.opts.DeliveredDelay)
	box.add(delivered, receipt(types.ReceiptTypeDelivered))
	if n.opts.ReadDelay >= 0 {
		box.add(delivered.Add(n.opts.ReadDelay), receipt(types.ReceiptTypeRead))
	}
}

// fanOut queues a group message for every sim account among members but
// the sender (skip).
func (n *Network) fanOut(group types.JID, members []string, skip string, msg *waE2E.Message, info types.MessageInfo) {
	for _, m := range members {
		if m == skip {
			continue
		}
		j, err := types.ParseJID(m)
		if err != nil {
			continue
		}
		id, ok := n.accountFor(j)
		if !ok {
			continue
		}
		n.inbox(id).add(time.Now(), func(ctx context.Context, rs *Session) error {
			ev, err := rs.normalizer(event.SourcePhone).Message(&events.Message{Info: info, Message: msg, RawMessage: msg})
			if err != nil {
				rs.log.Error("sim group delivery not normalisable; dropped", slog.String("message_id", info.ID), slog.String("group", group.String()), slog.Any("error", err))
				return nil
			}
			return rs.sink.Emit(ctx, ev)
		})
	}
}
