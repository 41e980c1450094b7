package whatsapp

import (
	"context"
	"log/slog"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/event"
)

// handle receives every whatsmeow event. Its result is whatsmeow's success
// status: false for a message means "not stored", so the client withholds
// the ack and WhatsApp delivers the message again.
func (s *Session) handle(raw any) bool {
	s.mu.Lock()
	ctx := s.runCtx
	s.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	// Storing must not be cut short by a Disconnect racing the handler:
	// a half-stored message would be acked.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()

	switch evt := raw.(type) {
	case *events.Message:
		return s.onMessage(ctx, evt, s.norm)
	case *events.Receipt:
		evs, err := s.norm.Receipt(evt)
		return s.emitAll(ctx, evs, err, "receipt")
	case *events.HistorySync:
		return s.onHistory(ctx, evt)
	case *events.Presence:
		ev, err := s.norm.Presence(evt)
		return s.emitAll(ctx, []*event.Event{ev}, err, "presence")
	case *events.ChatPresence:
		ev, err := s.norm.ChatPresence(evt)
		return s.emitAll(ctx, []*event.Event{ev}, err, "chat presence")
	case *events.GroupInfo:
		n := s.ownNorm()
		ev, err := n.GroupInfo(evt)
		if err == nil {
			s.completeGroupUpdate(ctx, ev.Group)
		}
		return s.emitAll(ctx, []*event.Event{ev}, err, "group info")
	case *events.JoinedGroup:
		n := s.ownNorm()
		ev, err := n.JoinedGroup(evt)
		if err == nil {
			s.completeGroupUpdate(ctx, ev.Group)
		}
		return s.emitAll(ctx, []*event.Event{ev}, err, "joined group")
	case *events.Picture:
		ev, err := s.norm.Picture(evt)
		return s.emitAll(ctx, []*event.Event{ev}, err, "picture")
	case *events.MediaRetry:
		s.onMediaRetry(ctx, evt)

	case *events.Connected:
		s.mu.Lock()
		cli := s.cli
		s.mu.Unlock()
		st := event.AccountState{State: event.AccountConnected}
		if cli != nil && cli.Store.ID != nil {
			s.mu.Lock()
			s.own = cli.Store.ID.ToNonAD()
			s.mu.Unlock()
			st.JID, st.PushName = cli.Store.ID.ToNonAD().String(), cli.Store.PushName
		}
		s.emitAccount(ctx, event.KindAccountConnected, st)
	case *events.PairSuccess:
		s.log.Info("paired", slog.String("jid", evt.ID.String()), slog.String("platform", evt.Platform))
	case *events.PairError:
		s.log.Warn("pairing failed", slog.Any("error", evt.Error))
	case *events.Disconnected:
		s.emitAccount(ctx, event.KindAccountDisconnected, event.AccountState{State: event.AccountDisconnected, Reason: "connection lost"})
		s.reconnect()
	case *events.KeepAliveTimeout:
		s.log.Warn("keepalive timed out", slog.Int("error_count", evt.ErrorCount))
	case *events.LoggedOut:
		// whatsmeow has already deleted the auth state.
		s.halt()
		reason := "logged out from the phone"
		if evt.Reason != 0 {
			reason += ": " + evt.Reason.String()
		}
		s.emitAccount(ctx, event.KindAccountLoggedOut, event.AccountState{State: event.AccountLoggedOut, Reason: reason})
	case *events.StreamReplaced:
		// Another client took over this session; reconnecting would only
		// fight it.
		s.halt()
		s.emitAccount(ctx, event.KindAccountDisconnected, event.AccountState{State: event.AccountDisconnected, Reason: "stream replaced: the same session connected elsewhere"})
	case *events.TemporaryBan:
		s.halt()
		s.emitAccount(ctx, event.KindAccountDisconnected, event.AccountState{State: event.AccountDisconnected, Reason: "temporarily banned: " + evt.String()})
	case *events.ClientOutdated:
		s.halt()
		s.emitAccount(ctx, event.KindAccountDisconnected, event.AccountState{State: event.AccountDisconnected, Reason: "WhatsApp rejected this client version; update wildcatd"})
	case *events.ConnectFailure:
		s.emitAccount(ctx, event.KindAccountDisconnected, event.AccountState{State: event.AccountDisconnected, Reason: "connect failure: " + evt.Reason.String()})
		s.reconnect()
	case *events.UndecryptableMessage:
		s.log.Warn("undecryptable message; WhatsApp will retry", slog.String("message_id", evt.Info.ID), slog.String("chat", evt.Info.Chat.String()))
	}
	return true
}

// onMessage stores one message. Poll votes are decrypted here because only
// the live client holds the poll's secret.
func (s *Session) onMessage(ctx context.Context, evt *events.Message, n Normalizer) bool {
	if onlySenderKey(evt.Message) {
		// The 1:1 copy of a group sender key, which whatsmeow has already
		// processed; the message itself follows under the same ID, and
		// storing this first would make it look like a duplicate.
		return true
	}
	ev, err := n.Message(evt)
	if err != nil {
		// Not storable at all (no id): acking is the only way to stop an
		// endless redelivery; the raw event is logged for inspection.
		s.log.Error("message cannot be normalised; dropped", slog.String("message_id", evt.Info.ID), slog.Any("error", err))
		return true
	}
	if ev.Message != nil && ev.Message.PollVote != nil && !ev.Message.PollVote.Decrypted && evt.Message.GetPollUpdateMessage() != nil {
		s.mu.Lock()
		cli := s.cli
		s.mu.Unlock()
		if cli != nil {
			if vote, err := cli.DecryptPollVote(ctx, evt); err == nil {
				_ = ApplyPollVote(ev.Message, vote)
			} else {
				s.log.Warn("poll vote not decrypted; stored encrypted", slog.String("message_id", evt.Info.ID), slog.Any("error", err))
			}
		}
	}
	return s.emit(ctx, ev) == nil
}

func (s *Session) emitAll(ctx context.Context, evs []*event.Event, err error, what string) bool {
	if err != nil {
		s.log.Warn("cannot normalise "+what, slog.Any("error", err))
		return true
	}
	for _, ev := range evs {
		if ev == nil {
			continue
		}
		if s.emit(ctx, ev) != nil {
			return false
		}
	}
	return true
}

// onHistory stores every message of a history-sync blob (source history),
// then reports progress. A failure leaves the notification unacked, so the
// phone sends it again; storing is idempotent.
func (s *Session) onHistory(ctx context.Context, evt *events.HistorySync) bool {
	s.mu.Lock()
	cli := s.cli
	s.mu.Unlock()
	if cli != nil && evt.Data != nil {
		for _, conv := range evt.Data.GetConversations() {
			chat, err := types.ParseJID(conv.GetID())
			if err != nil {
				continue
			}
			for _, hm := range conv.GetMessages() {
				msg, err := cli.ParseWebMessage(chat, hm.GetMessage())
				if err != nil {
					s.log.Debug("skip unparseable history message", slog.String("chat", chat.String()), slog.Any("error", err))
					continue
				}
				if !s.onMessage(ctx, msg, s.hist) {
					return false
				}
			}
		}
	}
	ev, err := s.norm.HistorySync(evt)
	return s.emitAll(ctx, []*event.Event{ev}, err, "history sync")
}

// onlySenderKey reports whether m carries nothing but a group sender key
// (and the message context that may travel with it).
func onlySenderKey(m *waE2E.Message) bool {
	if m.GetSenderKeyDistributionMessage() == nil {
		return false
	}
	rest := proto.Clone(m).(*waE2E.Message)
	rest.SenderKeyDistributionMessage = nil
	rest.MessageContextInfo = nil
	return proto.Size(rest) == 0
}

// ownNorm is the live normalizer with the account's own JIDs, so group
// changes that concern the account say so.
func (s *Session) ownNorm() Normalizer {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.norm
	n.Own = s.own
	if s.cli != nil {
		n.OwnLID = s.cli.Store.GetLID().ToNonAD()
	}
	return n
}

// completeGroupUpdate fills in what the normalizer cannot know: the other
// form (phone number or LID) of each participant, from the mappings
// whatsmeow keeps, and the whole group when the account was added by a
// plain membership change. Both are best effort: the event is stored
// either way.
func (s *Session) completeGroupUpdate(ctx context.Context, g *event.GroupUpdate) {
	s.mu.Lock()
	cli := s.cli
	s.mu.Unlock()
	if g == nil || cli == nil {
		return
	}
	for i := range g.Participants {
		p := &g.Participants[i]
		jid, err := types.ParseJID(p.JID)
		if err != nil {
			continue
		}
		alt, err := cli.Store.GetAltJID(ctx, jid)
		if err != nil || alt.IsEmpty() {
			continue
		}
		lid, pn := splitAddress(jid, alt)
		p.LID, p.PN = lid, pn
	}
	if g.Info != nil {
		for i := range g.Info.Participants {
			p := &g.Info.Participants[i]
			if p.PN != "" && p.LID != "" {
				continue
			}
			jid, err := types.ParseJID(p.JID)
			if err != nil {
				continue
			}
			if alt, err := cli.Store.GetAltJID(ctx, jid); err == nil && !alt.IsEmpty() {
				p.LID, p.PN = splitAddress(jid, alt)
			}
		}
	}
	if g.Info == nil && (g.Self == event.GroupSelfAdded || g.Self == event.GroupSelfJoined) {
		jid, err := types.ParseJID(g.JID)
		if err != nil {
			return
		}
		ictx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		info, err := cli.GetGroupInfo(ictx, jid)
		if err != nil {
			s.log.Warn("group info of a group joined not fetched", slog.String("group", g.JID), slog.Any("error", err))
			return
		}
		g.Info = GroupInfoOf(info)
	}
}
