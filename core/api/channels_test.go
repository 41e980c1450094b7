package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// channelSessions answers Channels by account id: "sim" has channels, the
// others fail as their name says.
type channelSessions struct{}

func (channelSessions) Channels(_ context.Context, id string) (session.ChannelSession, error) {
	switch id {
	case "sim":
		return oneChannel{}, nil
	case "wa":
		return nil, fmt.Errorf("account %q: %w", id, session.ErrChannelsUnsupported)
	case "offline":
		return nil, fmt.Errorf("account %q has no session: %w", id, session.ErrWrongState)
	}
	return nil, fmt.Errorf("account %q: %w", id, session.ErrAccountNotFound)
}

type oneChannel struct{}

func (oneChannel) Channels(context.Context) ([]*session.Channel, error) { return nil, nil }
func (oneChannel) ChannelMessages(context.Context, string, int, int) ([]*event.Message, error) {
	return nil, nil
}

// TestChannelRoutesAnswerWhyNot: a driver without channels is a 501, an
// account without a running session a 409, an unknown one a 404; a
// session with none lists [] (not null).
func TestChannelRoutesAnswerWhyNot(t *testing.T) {
	s := New(Options{Channels: channelSessions{}})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	base := "http://" + s.Addr() + "/v1/accounts/"
	for _, tt := range []struct {
		path   string
		status int
		slug   string
	}{
		{"wa/channels", http.StatusNotImplemented, "channels-unsupported"},
		{"wa/channels/1@newsletter/messages", http.StatusNotImplemented, "channels-unsupported"},
		{"offline/channels", http.StatusConflict, "wrong-state"},
		{"nobody/channels/1@newsletter/messages", http.StatusNotFound, "not-found"},
	} {
		resp, body := do(t, "GET", base+tt.path, "", "")
		var p Problem
		if resp.StatusCode != tt.status || json.Unmarshal(body, &p) != nil || p.Type != "urn:wildcat:problem:"+tt.slug {
			t.Errorf("%s: %d %s, want %d %s", tt.path, resp.StatusCode, body, tt.status, tt.slug)
		}
	}
	for _, path := range []string{"sim/channels", "sim/channels/1@newsletter/messages"} {
		resp, body := do(t, "GET", base+path, "", "")
		if resp.StatusCode != http.StatusOK || (string(body) != `{"channels":[]}`+"\n" && string(body) != `{"messages":[],"nextBefore":null}`+"\n") {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
}
