package whatsapp

import (
	"context"
	"fmt"
	"log/slog"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// Send implements session.Session: upload media, build the message, send
// it, then emit message.sent and the server ack as events.
func (s *Session) Send(ctx context.Context, req *session.SendRequest) (*session.SendResult, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: no request", session.ErrInvalidRequest)
	}
	s.mu.Lock()
	snd, own, cli := s.send, s.own, s.cli
	s.mu.Unlock()
	if snd == nil || own.IsEmpty() || (cli != nil && !cli.IsLoggedIn()) {
		return nil, fmt.Errorf("send from %s: %w (not connected)", s.acct.ID, session.ErrWrongState)
	}
	chat, err := ParseRecipient(req.To)
	if err != nil {
		return nil, err
	}
	if err := broadcastSupported(chat, req); err != nil {
		return nil, err
	}
	if req.MentionAll {
		if chat.Server != types.GroupServer {
			return nil, fmt.Errorf("%w: mention-all needs a group chat, not %s", session.ErrInvalidRequest, chat)
		}
		if cli == nil {
			return nil, fmt.Errorf("send from %s: %w (not connected)", s.acct.ID, session.ErrWrongState)
		}
		all, err := s.groupMentions(ctx, cli, chat, own)
		if err != nil {
			return nil, err
		}
		r := *req
		r.Mentions = append(append([]string(nil), req.Mentions...), all...)
		req = &r
	}

	var up *whatsmeow.UploadResponse
	if m := req.Media; m != nil {
		if len(m.Data) == 0 {
			return nil, fmt.Errorf("%w: media has no bytes", session.ErrInvalidRequest)
		}
		if m.Mimetype == "" {
			return nil, fmt.Errorf("%w: media needs a mimetype", session.ErrInvalidRequest)
		}
		kind, err := uploadKind(m.Kind)
		if err != nil {
			return nil, err
		}
		r, err := snd.Upload(ctx, m.Data, kind)
		if err != nil {
			return nil, fmt.Errorf("upload %s for %s: %w", m.Kind, chat, err)
		}
		up = &r
	}
	msg, err := builder{own: own, now: s.now}.build(req, chat, up)
	if err != nil {
		return nil, err
	}

	id := req.ID
	if id == "" {
		id = cli.GenerateMessageID() // nil-safe: whatsmeow falls back to random bytes
	}
	resp, err := snd.SendMessage(ctx, chat, msg, whatsmeow.SendRequestExtra{ID: id})
	if err != nil {
		return nil, fmt.Errorf("send %s to %s: %w", id, chat, err)
	}

	src := req.Source
	if src == "" {
		src = event.SourceAPI
	}
	n := Normalizer{AccountID: s.acct.ID, Source: src}
	ev, err := n.Message(&events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: chat, Sender: own, IsFromMe: true, IsGroup: chat.Server == types.GroupServer},
			ID:            resp.ID,
			Timestamp:     resp.Timestamp,
		},
		Message:    msg,
		RawMessage: msg,
	})
	if err != nil {
		return nil, fmt.Errorf("message %s sent but not normalised: %w", resp.ID, err)
	}
	res := &session.SendResult{MessageID: resp.ID, Timestamp: resp.Timestamp, Event: ev}
	if err := s.emit(ctx, ev); err != nil {
		return res, fmt.Errorf("message %s sent but not stored: %w", resp.ID, err)
	}
	if ack, err := n.ServerAck(chat, resp.ID, resp.Timestamp); err == nil {
		if err := s.emit(ctx, ack); err != nil {
			s.log.Warn("server ack not stored", slog.String("message_id", resp.ID), slog.Any("error", err))
		}
	}
	return res, nil
}

// broadcastSupported refuses what whatsmeow cannot send: it sends status
// posts to the audience of the account's status privacy setting (whom it
// finds itself) and cannot send to other broadcast lists at all.
func broadcastSupported(chat types.JID, req *session.SendRequest) error {
	if chat.Server != types.BroadcastServer {
		if len(req.StatusRecipients) > 0 {
			return fmt.Errorf("%w: status recipients are only for status@broadcast", session.ErrInvalidRequest)
		}
		return nil
	}
	if chat != types.StatusBroadcastJID {
		return fmt.Errorf("%w: whatsmeow cannot send to broadcast lists (%v); send to each recipient instead", session.ErrInvalidRequest, whatsmeow.ErrBroadcastListUnsupported)
	}
	if len(req.StatusRecipients) > 0 {
		return fmt.Errorf("%w: whatsmeow cannot choose the recipients of a status post; it posts to the audience of the account's status privacy setting (leave statusRecipients empty)", session.ErrInvalidRequest)
	}
	return nil
}
