package sim

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// broadcastJID recognises the broadcast addresses: status@broadcast (a
// status post) and a broadcast list (…@broadcast).
func broadcastJID(to string) (types.JID, bool) {
	j, err := types.ParseJID(to)
	if err != nil || j.Server != types.BroadcastServer || j.User == "" {
		return types.EmptyJID, false
	}
	return j, true
}

// checkBroadcast checks a send to a broadcast address: a status post
// names who sees it (user JIDs); a list send names nobody (the list's
// members are the list's).
func checkBroadcast(to types.JID, req *session.SendRequest) error {
	if to != types.StatusBroadcastJID {
		if len(req.StatusRecipients) > 0 {
			return fmt.Errorf("%w: status recipients go with status@broadcast, not %s", session.ErrInvalidRequest, to)
		}
		return nil
	}
	if len(req.StatusRecipients) == 0 {
		return fmt.Errorf("%w: a status post needs its recipients", session.ErrInvalidRequest)
	}
	for _, r := range req.StatusRecipients {
		if _, err := parseRecipient(r); err != nil {
			return fmt.Errorf("status recipient: %w", err)
		}
	}
	if req.Text == "" && req.Media == nil {
		return fmt.Errorf("%w: a status post is text or media", session.ErrInvalidRequest)
	}
	return nil
}

// withMentionAll returns req with every other member of the group it goes
// to mentioned, when it asks for mention-all; members are the group's
// (nil: not a group).
func (s *Session) withMentionAll(req *session.SendRequest, members []string) (*session.SendRequest, error) {
	if !req.MentionAll {
		return req, nil
	}
	if members == nil {
		return nil, fmt.Errorf("%w: mention-all is for groups, not %s", session.ErrInvalidRequest, req.To)
	}
	out := *req
	out.Mentions = slices.Clone(req.Mentions)
	for _, m := range members {
		if m != s.jid.String() && m != s.lid.String() && !slices.Contains(out.Mentions, m) {
			out.Mentions = append(out.Mentions, m)
		}
	}
	return &out, nil
}

// routeStatus shows a status post to its recipients that are sim accounts
// of this network (a status message from the poster) and schedules the
// receipts the poster gets: WhatsApp reports a status as delivered once
// the server has fanned it out.
func (n *Network) routeStatus(from *Session, recipients []string, msg *waE2E.Message, sent types.MessageInfo) {
	for _, r := range recipients {
		j, err := parseRecipient(r)
		if err != nil {
			continue
		}
		id, ok := n.accountFor(j)
		if !ok || id == from.acct.ID {
			continue
		}
		info := types.MessageInfo{
			MessageSource: types.MessageSource{Chat: types.StatusBroadcastJID, Sender: from.jid, SenderAlt: from.lid},
			ID:            sent.ID,
			Timestamp:     sent.Timestamp,
			PushName:      from.pushName(),
			Type:          sent.Type,
		}
		n.inbox(id).add(time.Now(), func(ctx context.Context, rs *Session) error {
			ev, err := rs.normalizer(event.SourcePhone).Message(&events.Message{Info: info, Message: msg, RawMessage: msg})
			if err != nil {
				rs.log.Error("sim status not normalisable; dropped", slog.String("message_id", sent.ID), slog.Any("error", err))
				return nil
			}
			return rs.sink.Emit(ctx, ev)
		})
	}
	n.scheduleReceipts(n.inbox(from.acct.ID), from.acct.ID, sent.Chat, sent.ID, time.Now().Add(n.opts.DeliveredDelay))
}
