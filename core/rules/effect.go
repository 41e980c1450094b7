package rules

import (
	"encoding/base64"
	"encoding/json"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// Effects receives what a rule asks for, as the rule asks for it. Handle
// also returns the same requests as a recorded []Effect, so a caller that
// prefers to act after the call can pass a nil Effects: the daemon's rules
// stage (core/daemon/rules.go) does, mapping them to pipeline actions only
// when the call succeeded (the pipeline then carries out each on its own,
// and records one that fails on the message with the rule's name), and so
// does `wildcatd rules test`, which only prints them.
//
// Calls happen on the goroutine running Handle, in the order the rule made
// them; a rule that throws after ctx.reply has still asked for the reply.
type Effects interface {
	// Reply sends req to the event's chat (req.To is already set).
	Reply(req *session.SendRequest)
	// Send sends req to another chat (to is a JID, also in req.To).
	Send(to string, req *session.SendRequest)
	// React reacts to the event's message.
	React(emoji string)
	// MarkRead marks the event's message as read.
	MarkRead()
	// Drop stops the event: later rules and stages skip it.
	Drop()
	Tag(tags ...string)
	Annotate(key, value string)
	// Route delivers the event to the named sinks only.
	Route(sinks ...string)
}

// EffectKind names what a rule asked for. The values are what `rules test`
// prints and what *.test.json files expect.
type EffectKind string

const (
	EffectReply    EffectKind = "reply"
	EffectSend     EffectKind = "send"
	EffectReact    EffectKind = "react"
	EffectMarkRead EffectKind = "markRead"
	EffectDrop     EffectKind = "drop"
	EffectTag      EffectKind = "tag"
	EffectAnnotate EffectKind = "annotate"
	EffectRoute    EffectKind = "route"
)

// Effect is one recorded request of a rule.
type Effect struct {
	Kind EffectKind
	// Rule is the rule (file base name without .js) that asked.
	Rule string
	// Message is the message of reply, send and react, built for the
	// event's chat (reply, react) or To (send), with Source rule.
	Message *session.SendRequest
	// Media is set when a reply or send named its media by URL or by a
	// stored media id that was not resolved into Message.Media.Data (dry
	// runs); whoever sends the message must resolve it.
	Media *MediaRef
	To    string // send
	Emoji string // react
	Tags  []string
	Key   string // annotate
	Value string // annotate
	Sinks []string
}

// MediaRef is media a rule named by reference instead of by bytes.
type MediaRef struct {
	URL     string `json:"url,omitempty"`
	MediaID string `json:"mediaId,omitempty"`
}

// effectJSON is the printed shape of an Effect: only what the rule decided,
// in the rule API's own vocabulary, so test files stay short and readable.
type effectJSON struct {
	Kind     EffectKind      `json:"kind"`
	To       string          `json:"to,omitempty"`
	Text     string          `json:"text,omitempty"`
	Media    *mediaJSON      `json:"media,omitempty"`
	Quote    bool            `json:"quote,omitempty"`
	Mentions []string        `json:"mentions,omitempty"`
	Location *event.Location `json:"location,omitempty"`
	Contacts []event.Contact `json:"contacts,omitempty"`
	Poll     *pollJSON       `json:"poll,omitempty"`
	Emoji    *string         `json:"emoji,omitempty"`
	Tags     []string        `json:"tags,omitempty"`
	Key      string          `json:"key,omitempty"`
	Value    *string         `json:"value,omitempty"`
	Sinks    []string        `json:"sinks,omitempty"`
}

type pollJSON struct {
	Name            string   `json:"name"`
	Options         []string `json:"options"`
	SelectableCount uint32   `json:"selectableCount,omitempty"`
}

type mediaJSON struct {
	Kind     session.MediaKind `json:"kind"`
	Mimetype string            `json:"mimetype,omitempty"`
	Filename string            `json:"filename,omitempty"`
	Caption  string            `json:"caption,omitempty"`
	URL      string            `json:"url,omitempty"`
	MediaID  string            `json:"mediaId,omitempty"`
	// Data is the base64 of the bytes when the rule gave them inline.
	Data string `json:"data,omitempty"`
}

// MarshalJSON renders the effect as the rule API describes it, e.g.
// {"kind":"reply","text":"hi","quote":true} or {"kind":"route","sinks":["crm"]}.
func (e Effect) MarshalJSON() ([]byte, error) {
	out := effectJSON{Kind: e.Kind, To: e.To, Tags: e.Tags, Key: e.Key, Sinks: e.Sinks}
	switch e.Kind {
	case EffectReact:
		out.Emoji = &e.Emoji
	case EffectAnnotate:
		out.Value = &e.Value
	case EffectReply, EffectSend:
		if m := e.Message; m != nil {
			out.Text, out.Quote, out.Mentions = m.Text, m.ReplyTo != nil, m.Mentions
			out.Location, out.Contacts = m.Location, m.Contacts
			if p := m.Poll; p != nil {
				out.Poll = &pollJSON{Name: p.Name, Options: p.Options, SelectableCount: p.SelectableCount}
			}
			if m.Media != nil {
				mj := &mediaJSON{Kind: m.Media.Kind, Mimetype: m.Media.Mimetype, Filename: m.Media.Filename, Caption: m.Media.Caption}
				if e.Media != nil {
					mj.URL, mj.MediaID = e.Media.URL, e.Media.MediaID
				} else if len(m.Media.Data) > 0 {
					mj.Data = base64.StdEncoding.EncodeToString(m.Media.Data)
				}
				out.Media = mj
			}
		}
	}
	return json.Marshal(out)
}
