package sim

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// simChannel is a channel of the sim network with its posts, oldest
// first; post i has the server ID firstServerID+i.
type simChannel struct {
	session.Channel
	posts []string
}

const firstServerID = 100

// simChannels are the channels every sim account follows, so that the
// channel routes can be tried without a phone. They are the same on every
// daemon and run.
var simChannels = []simChannel{
	{
		Channel: session.Channel{JID: "120363000000000101@newsletter", Name: "Wildcat News", Description: "Releases and notes of the Wildcat project (simulated)", Subscribers: 1280, Role: "subscriber"},
		posts: []string{
			"Welcome to Wildcat News: this channel lives on the sim network.",
			"Rules are plain JavaScript files, reloaded when they change.",
			"Polls: send one, and the tally follows each vote.",
			"Status posts go to the contacts you choose.",
			"Plugins run out of process and speak gRPC.",
		},
	},
	{
		Channel: session.Channel{JID: "120363000000000102@newsletter", Name: "Sim Weather", Description: "Always sunny on the sim network", Subscribers: 42, Role: "subscriber"},
		posts: []string{
			"Sunny, 22 °C.",
			"Sunny, 23 °C, a light breeze.",
			"Sunny again.",
		},
	},
}

// channelEpoch is when the first post of every sim channel was made; the
// others follow an hour apart.
var channelEpoch = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

// Channels implements session.ChannelSession: the sim's channels.
func (s *Session) Channels(ctx context.Context) ([]*session.Channel, error) {
	if s.getState() != stateConnected {
		return nil, fmt.Errorf("sim account %q is not connected: %w", s.acct.ID, session.ErrWrongState)
	}
	out := make([]*session.Channel, len(simChannels))
	for i := range simChannels {
		c := simChannels[i].Channel
		out[i] = &c
	}
	return out, nil
}

// ChannelMessages implements session.ChannelSession: up to count posts,
// newest first, before the server ID before (0: the newest). A post's
// message id is its server ID.
func (s *Session) ChannelMessages(ctx context.Context, channelJID string, count int, before int) ([]*event.Message, error) {
	if s.getState() != stateConnected {
		return nil, fmt.Errorf("sim account %q is not connected: %w", s.acct.ID, session.ErrWrongState)
	}
	for _, c := range simChannels {
		if c.JID != channelJID {
			continue
		}
		out := []*event.Message{}
		for i := len(c.posts) - 1; i >= 0 && len(out) < count; i-- {
			id := firstServerID + i
			if before > 0 && id >= before {
				continue
			}
			out = append(out, &event.Message{
				AccountID: s.acct.ID, MessageID: strconv.Itoa(id), ChatID: c.JID, From: c.JID,
				Timestamp: channelEpoch.Add(time.Duration(i) * time.Hour).Unix(), Type: event.TypeText, Text: c.posts[i],
			})
		}
		return out, nil
	}
	return nil, fmt.Errorf("channel %s: %w", channelJID, session.ErrChannelNotFound)
}

var _ session.ChannelSession = (*Session)(nil)
