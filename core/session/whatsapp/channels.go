package whatsapp

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

var _ session.ChannelSession = (*Session)(nil)

// maxChannelPage bounds one read of a channel's messages.
const maxChannelPage = 100

// Channels implements session.ChannelSession with whatsmeow's
// GetSubscribedNewsletters.
func (s *Session) Channels(ctx context.Context) ([]*session.Channel, error) {
	cli, err := s.loggedIn()
	if err != nil {
		return nil, err
	}
	list, err := cli.GetSubscribedNewsletters(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the channels of %s: %w", s.acct.ID, err)
	}
	out := make([]*session.Channel, 0, len(list))
	for _, n := range list {
		if n == nil {
			continue
		}
		ch := &session.Channel{
			JID:         n.ID.String(),
			Name:        n.ThreadMeta.Name.Text,
			Description: n.ThreadMeta.Description.Text,
			Subscribers: n.ThreadMeta.SubscriberCount,
			Role:        string(types.NewsletterRoleSubscriber),
		}
		if n.ViewerMeta != nil && n.ViewerMeta.Role != "" {
			ch.Role = string(n.ViewerMeta.Role)
		}
		out = append(out, ch)
	}
	return out, nil
}

// ChannelMessages implements session.ChannelSession with whatsmeow's
// GetNewsletterMessages; the messages are normalised like any other, with
// the channel as chat and sender.
func (s *Session) ChannelMessages(ctx context.Context, channelJID string, count int, before int) ([]*event.Message, error) {
	cli, err := s.loggedIn()
	if err != nil {
		return nil, err
	}
	jid, err := types.ParseJID(strings.TrimSpace(channelJID))
	if err != nil || jid.User == "" || jid.Server != types.NewsletterServer {
		return nil, fmt.Errorf("%w: %q is not a channel JID (…@newsletter)", session.ErrInvalidRequest, channelJID)
	}
	if count <= 0 || count > maxChannelPage {
		return nil, fmt.Errorf("%w: count must be 1 to %d", session.ErrInvalidRequest, maxChannelPage)
	}
	if before < 0 {
		return nil, fmt.Errorf("%w: before must not be negative", session.ErrInvalidRequest)
	}
	msgs, err := cli.GetNewsletterMessages(ctx, jid, &whatsmeow.GetNewsletterMessagesParams{Count: count, Before: types.MessageServerID(before)})
	if err != nil {
		return nil, fmt.Errorf("messages of channel %s: %w", jid, err)
	}
	slices.SortFunc(msgs, func(a, b *types.NewsletterMessage) int { return b.MessageServerID - a.MessageServerID })
	out := make([]*event.Message, 0, len(msgs))
	for _, m := range msgs {
		if m == nil || m.Message == nil {
			continue
		}
		ev, err := s.norm.Message(&events.Message{
			Info: types.MessageInfo{
				MessageSource: types.MessageSource{Chat: jid, Sender: jid},
				ID:            m.MessageID,
				ServerID:      m.MessageServerID,
				Timestamp:     m.Timestamp,
				Type:          m.Type,
			},
			Message: m.Message,
		})
		if err != nil {
			continue // no ID: nothing to show it by
		}
		out = append(out, ev.Message)
	}
	return out, nil
}
