package watest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// Channels (newsletters): what an account reads of the channels it
// follows. The double answers whatsmeow's GetSubscribedNewsletters (a
// "w:mex" GraphQL query; the double answers every w:mex query without
// variables with the subscribed list, and others with a GraphQL error) and
// GetNewsletterMessages (a "newsletter" IQ). Channel messages are plaintext
// on WhatsApp, so no encryption is involved. Live channel updates are not
// covered.

// channel is one channel; guarded by srv.mu.
type channel struct {
	jid       types.JID
	name      string
	desc      string
	created   time.Time
	followers map[*Account]string // account → its role
	posts     []channelPost       // oldest first
}

type channelPost struct {
	serverID int
	id       types.MessageID
	at       time.Time
	msg      *waE2E.Message
}

// Channel is a test's handle on a channel of the double.
type Channel struct {
	srv *Server
	jid types.JID
}

// JID is the channel's JID (…@newsletter).
func (c *Channel) JID() types.JID { return c.jid }

// NewChannel creates a channel.
func (s *Server) NewChannel(name, description string) *Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextGroup++
	ch := &channel{
		jid:       types.NewJID(fmt.Sprintf("120363%012d", s.nextGroup), types.NewsletterServer),
		name:      name,
		desc:      description,
		created:   time.Now(),
		followers: map[*Account]string{},
	}
	s.channels = append(s.channels, ch)
	return &Channel{srv: s, jid: ch.jid}
}

func (s *Server) channelLocked(jid types.JID) *channel {
	for _, ch := range s.channels {
		if ch.jid == jid {
			return ch
		}
	}
	return nil
}

// Follow makes the account follow the channel with a role: "subscriber",
// "admin" or "owner".
func (c *Channel) Follow(a *Account, role string) {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	c.srv.channelLocked(c.jid).followers[a] = role
}

// PostText publishes a text in the channel and returns its server ID.
func (c *Channel) PostText(text string) int {
	return c.Post(&waE2E.Message{Conversation: proto.String(text)})
}

// Post publishes msg in the channel and returns its server ID.
func (c *Channel) Post(msg *waE2E.Message) int {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	ch := c.srv.channelLocked(c.jid)
	id := 100 + len(ch.posts)
	ch.posts = append(ch.posts, channelPost{serverID: id, id: whatsmeow.GenerateMessageID(), at: time.Now(), msg: msg})
	return id
}

// mexIQ answers a GraphQL query: the subscribed channels.
func (s *Server) mexIQ(c *conn, node *waBinary.Node) []waBinary.Node {
	q := node.GetChildByTag("query")
	raw, _ := q.Content.([]byte)
	var req struct {
		Variables map[string]any `json:"variables"`
	}
	_ = json.Unmarshal(raw, &req)
	var body any
	if len(req.Variables) > 0 {
		body = map[string]any{"errors": []map[string]any{{"message": "watest: only the subscribed-channels query is answered"}}}
	} else {
		body = map[string]any{"data": map[string]any{"xwa2_newsletter_subscribed": s.subscribed(c)}}
	}
	out, _ := json.Marshal(body)
	return []waBinary.Node{{Tag: "result", Content: out}}
}

func (s *Server) subscribed(c *conn) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, ch := range s.channels {
		role, ok := ch.followers[c.account]
		if !ok {
			continue
		}
		text := func(t string) map[string]any {
			return map[string]any{"text": t, "id": "", "update_time": strconv.FormatInt(ch.created.UnixMicro(), 10)}
		}
		out = append(out, map[string]any{
			"id":    ch.jid.String(),
			"state": map[string]any{"type": "active"},
			"thread_metadata": map[string]any{
				"creation_time":     strconv.FormatInt(ch.created.Unix(), 10),
				"invite":            "",
				"name":              text(ch.name),
				"description":       text(ch.desc),
				"subscribers_count": strconv.Itoa(len(ch.followers)),
				"verification":      "unverified",
				"preview":           map[string]any{},
				"settings":          map[string]any{"reaction_codes": map[string]any{"value": "all"}},
			},
			"viewer_metadata": map[string]any{"mute": "off", "role": role},
		})
	}
	return out
}

// newsletterIQ answers GetNewsletterMessages: up to count messages before
// a server ID, in server order.
func (s *Server) newsletterIQ(c *conn, node *waBinary.Node) ([]waBinary.Node, *iqError) {
	m, ok := node.GetOptionalChildByTag("messages")
	if !ok {
		return nil, errBadRequest
	}
	ag := m.AttrGetter()
	jid := ag.OptionalJIDOrEmpty("jid")
	count := ag.OptionalInt("count")
	before := ag.OptionalInt("before")
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelLocked(jid)
	if ch == nil {
		return nil, errGroupNotFound
	}
	var picked []channelPost
	for i := len(ch.posts) - 1; i >= 0 && (count == 0 || len(picked) < count); i-- {
		if p := ch.posts[i]; before == 0 || p.serverID < before {
			picked = append(picked, p)
		}
	}
	slices.Reverse(picked)
	var msgs []waBinary.Node
	for _, p := range picked {
		plain, _ := proto.Marshal(p.msg)
		msgs = append(msgs, waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{
			"server_id": strconv.Itoa(p.serverID), "id": p.id, "type": stanzaType(p.msg),
			"t": strconv.FormatInt(p.at.Unix(), 10),
		}, Content: []waBinary.Node{{Tag: "plaintext", Content: plain}}})
	}
	return []waBinary.Node{{Tag: "messages", Attrs: waBinary.Attrs{"jid": jid}, Content: msgs}}, nil
}
