package pluginhost

import (
	"context"
	"fmt"
	"io"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/sdk"
)

// ActionKind says what an Action does; the values are the SDK's.
type ActionKind = sdk.ActionKind

// The action kinds an inline plugin can return.
const (
	ActionReply    = sdk.ActionReply
	ActionSend     = sdk.ActionSend
	ActionDrop     = sdk.ActionDrop
	ActionTag      = sdk.ActionTag
	ActionAnnotate = sdk.ActionAnnotate
	ActionRoute    = sdk.ActionRoute
)

// Action is one effect a plugin's Handle asks for, resolved against the
// event so the pipeline can apply it as is.
type Action struct {
	Kind ActionKind
	// Send, for reply and send: a complete request on the event's account,
	// with Source "plugin". A reply's To is the event's chat and, when the
	// plugin asked to quote, ReplyTo is the event's message. Media named by
	// blob id has been read into Data.
	Send *session.SendRequest
	// Tags, for tag.
	Tags []string
	// Key and Value, for annotate.
	Key, Value string
	// Sinks, for route.
	Sinks []string
}

// resolveActions turns the plugin's actions into the pipeline's.
func resolveActions(ctx context.Context, ev *event.Event, in []sdk.Action, blobs *Blobs) ([]Action, error) {
	out := make([]Action, 0, len(in))
	for i, a := range in {
		act := Action{Kind: a.Kind, Tags: a.Tags, Key: a.Key, Value: a.Value, Sinks: a.Sinks}
		switch a.Kind {
		case ActionReply, ActionSend:
			req, err := toSessionRequest(ctx, a.Message, blobs)
			if err != nil {
				return nil, fmt.Errorf("action %d (%s): %w", i, a.Kind, err)
			}
			if a.Kind == ActionReply {
				req.To = ev.ChatID
				if m := ev.Message; m != nil {
					if req.To == "" {
						req.To = m.ChatID
					}
					if a.Quote {
						req.ReplyTo = &session.QuoteRef{MessageID: m.MessageID, Sender: m.From, Message: m}
					}
				}
				if req.To == "" {
					return nil, fmt.Errorf("action %d (reply): the %s event has no chat to reply to", i, ev.Kind)
				}
			} else if req.To == "" {
				return nil, fmt.Errorf("action %d (send): no recipient (SendRequest.To)", i)
			}
			act.Send = req
		case ActionDrop, ActionTag, ActionAnnotate, ActionRoute:
		default:
			return nil, fmt.Errorf("action %d: unknown kind %q", i, a.Kind)
		}
		out = append(out, act)
	}
	return out, nil
}

// toSessionRequest converts an SDK send request, reading a blob-backed
// media's bytes. The source is always "plugin".
func toSessionRequest(ctx context.Context, r *sdk.SendRequest, blobs *Blobs) (*session.SendRequest, error) {
	if r == nil {
		return nil, fmt.Errorf("no message")
	}
	out := &session.SendRequest{
		To: r.To, ID: r.ID, Source: event.SourcePlugin, Text: r.Text,
		Location: r.Location, Contacts: r.Contacts, Mentions: r.Mentions,
	}
	if m := r.Media; m != nil {
		data := m.Data
		if m.BlobID != "" {
			if blobs == nil {
				return nil, unavailable("media from blob " + m.BlobID)
			}
			rc, _, err := blobs.Get(ctx, m.BlobID)
			if err != nil {
				return nil, err
			}
			data, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("read blob %s: %w", m.BlobID, err)
			}
		}
		out.Media = &session.MediaSend{Kind: session.MediaKind(m.Kind), Data: data, Mimetype: m.Mimetype, Filename: m.Filename, Caption: m.Caption, Seconds: m.Seconds}
	}
	if x := r.Reaction; x != nil {
		out.Reaction = &session.ReactionSend{MessageID: x.MessageID, Sender: x.Sender, FromMe: x.FromMe, Emoji: x.Emoji}
	}
	if x := r.Edit; x != nil {
		out.Edit = &session.EditSend{MessageID: x.MessageID, Text: x.Text}
	}
	if x := r.Revoke; x != nil {
		out.Revoke = &session.RevokeSend{MessageID: x.MessageID, Sender: x.Sender}
	}
	if x := r.Poll; x != nil {
		out.Poll = &session.PollSend{Name: x.Name, Options: x.Options, SelectableCount: x.SelectableCount}
	}
	if x := r.ReplyTo; x != nil {
		out.ReplyTo = &session.QuoteRef{MessageID: x.MessageID, Sender: x.Sender}
	}
	return out, nil
}
