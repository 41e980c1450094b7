package watest

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// Contact is another WhatsApp user, on a phone without companions (device
// 0 only), who messages the paired accounts and receives their messages.
type Contact struct {
	srv      *Server
	jid      types.JID
	pushName string
	signal   *signalStore
	mu       sync.Mutex // serialises Signal operations, which read-modify-write sessions
	received chan *ReceivedMessage

	inbox map[types.MessageID]*Account // guarded by srv.mu: who sent what, for receipts
	// refuseAdds: privacy settings that keep others from adding the
	// contact to groups (guarded by srv.mu).
	refuseAdds bool
}

// RefuseGroupAdds gives the contact the privacy setting that keeps others
// from adding them to groups: an add answers 403 with an invite code.
func (c *Contact) RefuseGroupAdds() {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	c.refuseAdds = true
}

// ReceivedMessage is a message a contact received from a companion.
type ReceivedMessage struct {
	ID   types.MessageID
	From types.JID // the sending companion device
	// Chat is the group the message was sent to; empty for a message to
	// the contact alone.
	Chat types.JID
	// Type is the stanza's type attribute: text, media, reaction, poll…
	Type    string
	Message *waE2E.Message
	// Err is set when the double could not decrypt or parse the message;
	// Message is then nil.
	Err error
}

const inboxSize = 1024

// Contact returns the contact with the given phone number, creating it on
// first use. Contacts also come into being when a client looks a number up
// or fetches its pre-keys: every number is on WhatsApp.
func (s *Server) Contact(phone string) *Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.contacts[phone]; c != nil {
		return c
	}
	c := &Contact{
		srv:      s,
		jid:      types.NewJID(phone, types.DefaultUserServer),
		pushName: "Contact " + phone,
		signal:   newSignalStore(mrand.Uint32N(16380) + 1),
		received: make(chan *ReceivedMessage, inboxSize),
		inbox:    map[types.MessageID]*Account{},
	}
	s.contacts[phone] = c
	return c
}

// JID is the contact's JID (phone@s.whatsapp.net).
func (c *Contact) JID() types.JID { return c.jid }

// PushName is the display name the contact's messages carry.
func (c *Contact) PushName() string { return c.pushName }

// Received delivers what companions send to the contact, decrypted, in the
// order the double received it.
func (c *Contact) Received() <-chan *ReceivedMessage { return c.received }

// NextMessage waits for the next message the contact receives. A message
// the double could not decrypt is returned with its error.
func (c *Contact) NextMessage(ctx context.Context) (*ReceivedMessage, error) {
	select {
	case m := <-c.received:
		if m.Err != nil {
			return m, fmt.Errorf("watest: message %s to %s: %w", m.ID, c.jid, m.Err)
		}
		return m, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("watest: waiting for a message to %s: %w", c.jid, ctx.Err())
	}
}

// SendText sends a plain text message to the account to (its phone JID,
// device JID or LID) and returns its message ID.
func (c *Contact) SendText(ctx context.Context, to types.JID, text string) (types.MessageID, error) {
	return c.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String(text)})
}

// SendMessage encrypts msg for the account's companion and delivers it:
// now if the companion is logged in, otherwise at its next login. The first
// message of a session is a pkmsg built from the companion's published
// pre-keys, later ones are msg. Use Server.WaitAck to see it acknowledged.
func (c *Contact) SendMessage(ctx context.Context, to types.JID, msg *waE2E.Message) (types.MessageID, error) {
	s := c.srv
	s.mu.Lock()
	a := s.accountByJIDLocked(to.ToNonAD())
	s.mu.Unlock()
	if a == nil {
		return "", fmt.Errorf("watest: %s is not a paired account", to)
	}
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("watest: marshal message: %w", err)
	}

	ct, isPreKey, err := c.encryptFor(ctx, a, plaintext)
	if err != nil {
		return "", err
	}

	encAttrs := waBinary.Attrs{"v": "2", "type": "msg"}
	if isPreKey {
		encAttrs["type"] = "pkmsg"
	}
	if mt := mediaTypeOf(msg); mt != "" {
		encAttrs["mediatype"] = mt
	}
	id := whatsmeow.GenerateMessageID()
	node := waBinary.Node{
		Tag: "message",
		Attrs: waBinary.Attrs{
			"from":   c.jid,
			"id":     id,
			"t":      strconv.FormatInt(time.Now().Unix(), 10),
			"type":   stanzaType(msg),
			"notify": c.pushName,
		},
		Content: []waBinary.Node{{Tag: "enc", Attrs: encAttrs, Content: ct}},
	}
	s.mu.Lock()
	s.rememberMediaLocked(id, a, c.jid, msg)
	s.mu.Unlock()
	s.deliver(&delivery{key: messageKey(id), id: id, to: a, node: node})
	return id, nil
}

// encryptFor encrypts plaintext (unpadded) for the account's companion,
// building the session from its published pre-keys the first time.
func (c *Contact) encryptFor(ctx context.Context, a *Account, plaintext []byte) (ct []byte, isPreKey bool, err error) {
	s := c.srv
	c.mu.Lock()
	defer c.mu.Unlock()
	addr := a.jid.SignalAddress()
	var b *bundle
	if ok, _ := c.signal.ContainsSession(ctx, addr); !ok {
		s.mu.Lock()
		b = a.takeBundleLocked()
		s.mu.Unlock()
		if b == nil {
			return nil, false, fmt.Errorf("watest: %s has published no pre-keys", a.jid)
		}
	}
	ct, isPreKey, err = c.signal.encrypt(ctx, addr, b, pad(plaintext))
	if err != nil {
		return nil, false, fmt.Errorf("watest: %w", err)
	}
	return ct, isPreKey, nil
}

// SendReceipt sends the client a receipt for a message the contact
// received: types.ReceiptTypeDelivered ("") or types.ReceiptTypeRead, for
// example. Like messages, receipts wait for an offline companion.
func (c *Contact) SendReceipt(ctx context.Context, id types.MessageID, typ types.ReceiptType) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := c.srv
	s.mu.Lock()
	a := c.inbox[id]
	s.mu.Unlock()
	if a == nil {
		return fmt.Errorf("watest: %s received no message %s", c.jid, id)
	}
	attrs := waBinary.Attrs{
		"from": c.jid,
		"id":   id,
		"t":    strconv.FormatInt(time.Now().Unix(), 10),
	}
	if typ != types.ReceiptTypeDelivered {
		attrs["type"] = string(typ)
	}
	s.deliver(&delivery{key: receiptKey(id, typ), id: id, to: a, node: waBinary.Node{Tag: "receipt", Attrs: attrs}})
	return nil
}

// bundle hands out the contact's pre-key bundle with a fresh one-time key.
func (c *Contact) bundle() *bundle {
	pk := c.signal.newPreKey()
	st := c.signal
	return &bundle{
		regID:    st.regID,
		identity: *st.identity.Pub,
		signed:   &publicPreKey{id: st.signed.KeyID, pub: *st.signed.Pub, sig: st.signed.Signature},
		oneTime:  &publicPreKey{id: pk.KeyID, pub: *pk.Pub},
	}
}

// handleClientMessage decrypts what a companion sends to contacts and
// acknowledges it, which is what SendMessage on the client waits for.
func (s *Server) handleClientMessage(c *conn, node *waBinary.Node) {
	ag := node.AttrGetter()
	id := ag.OptionalString("id")
	to, _ := node.Attrs["to"].(types.JID)
	defer func() {
		ack := waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{
			"class": "message",
			"id":    id,
			"t":     strconv.FormatInt(time.Now().Unix(), 10),
		}}
		if !to.IsEmpty() {
			ack.Attrs["from"] = to
		}
		if err := c.send(ack); err != nil {
			s.logf("%v", err)
		}
	}()

	s.mu.Lock()
	a := c.account
	s.mu.Unlock()
	if a == nil {
		s.logf("%s: message %s before login", c.name, id)
		return
	}
	if to.Server == types.GroupServer {
		s.handleClientGroupMessage(c, a, node)
		return
	}
	if to.Server != types.DefaultUserServer {
		s.logf("%s: message %s to %s: only one-to-one chats with contacts and groups are supported", c.name, id, to)
		return
	}

	type target struct {
		jid types.JID
		enc waBinary.Node
	}
	var targets []target
	for _, p := range childrenOf(node.GetChildByTag("participants")) {
		jid, ok := p.Attrs["jid"].(types.JID)
		if p.Tag != "to" || !ok {
			continue
		}
		for _, enc := range p.GetChildrenByTag("enc") {
			targets = append(targets, target{jid, enc})
		}
	}
	for _, enc := range node.GetChildrenByTag("enc") {
		targets = append(targets, target{to, enc})
	}
	for _, t := range targets {
		if t.jid.Server != types.DefaultUserServer || t.jid.Device != 0 || s.Account(t.jid.User) != nil {
			s.logf("%s: message %s: ignoring the copy for %s", c.name, id, t.jid)
			continue
		}
		s.Contact(t.jid.User).receive(c.ctx, a, id, ag.OptionalString("type"), t.enc)
	}
}

func (c *Contact) receive(ctx context.Context, a *Account, id types.MessageID, typ string, enc waBinary.Node) {
	rm := &ReceivedMessage{ID: id, From: a.jid, Type: typ}
	rm.Message, rm.Err = c.decrypt(ctx, a, enc)
	c.push(a, rm)
}

// push hands a received message to the test.
func (c *Contact) push(a *Account, rm *ReceivedMessage) {
	id := rm.ID
	if rm.Err != nil {
		c.srv.logf("%s could not read %s from %s: %v", c.jid, id, a.jid, rm.Err)
	}
	c.srv.mu.Lock()
	c.inbox[id] = a
	c.srv.notify()
	c.srv.mu.Unlock()
	select {
	case c.received <- rm:
	default:
		c.srv.logf("%s: inbox full, dropping %s", c.jid, id)
	}
}

func (c *Contact) decrypt(ctx context.Context, a *Account, enc waBinary.Node) (*waE2E.Message, error) {
	content, ok := enc.Content.([]byte)
	if !ok {
		return nil, errors.New("enc without content")
	}
	encType, _ := enc.Attrs["type"].(string)
	c.mu.Lock()
	plain, err := c.signal.decrypt(ctx, a.jid.SignalAddress(), encType, content)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if v, _ := enc.Attrs["v"].(string); v != "3" {
		if plain, err = unpad(plain); err != nil {
			return nil, err
		}
	}
	var msg waE2E.Message
	if err := proto.Unmarshal(plain, &msg); err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	return &msg, nil
}

// stanzaType is the message stanza's type attribute for msg, as WhatsApp
// clients set it.
func stanzaType(msg *waE2E.Message) string {
	switch {
	case msg.GetReactionMessage() != nil || msg.GetEncReactionMessage() != nil:
		return "reaction"
	case mediaTypeOf(msg) != "":
		return "media"
	}
	return "text"
}

// mediaTypeOf is the enc node's mediatype attribute for msg.
func mediaTypeOf(msg *waE2E.Message) string {
	switch {
	case msg.GetImageMessage() != nil:
		return "image"
	case msg.GetVideoMessage() != nil:
		return "video"
	case msg.GetAudioMessage() != nil:
		if msg.GetAudioMessage().GetPTT() {
			return "ptt"
		}
		return "audio"
	case msg.GetDocumentMessage() != nil:
		return "document"
	case msg.GetStickerMessage() != nil:
		return "sticker"
	case msg.GetLocationMessage() != nil:
		return "location"
	case msg.GetContactMessage() != nil:
		return "vcard"
	}
	return ""
}
