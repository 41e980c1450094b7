package watest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mau.fi/libsignal/groups"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/proto"
)

// Group messages use sender keys, as on WhatsApp: each sender has a chain
// per group and hands it (a SenderKeyDistributionMessage) to every member
// device over their 1:1 Signal session (pkmsg/msg); the message itself is
// encrypted once with the chain (skmsg) and the server fans the one
// ciphertext out. Both directions are covered: a contact's group message
// reaches the member accounts as whatsmeow expects it (participant=…, an
// SKDM copy, then the skmsg), and a companion's group message is opened by
// every member contact with the sender key the companion distributed.

// senderKeyName names a sender's chain in a group in the contact's store.
func senderKeyName(group types.JID, sender types.JID) *protocol.SenderKeyName {
	return protocol.NewSenderKeyName(group.String(), sender.SignalAddress())
}

// handleClientGroupMessage opens what a companion sent to a group for
// every member contact.
func (s *Server) handleClientGroupMessage(c *conn, a *Account, node *waBinary.Node) {
	ag := node.AttrGetter()
	id := ag.OptionalString("id")
	typ := ag.OptionalString("type")
	to, _ := node.Attrs["to"].(types.JID)
	s.mu.Lock()
	g := s.groups[to.User]
	var members []types.JID
	if g != nil {
		members = g.memberJIDs()
	}
	s.mu.Unlock()
	if g == nil {
		s.logf("%s: message %s to unknown group %s", c.name, id, to)
		return
	}
	name := senderKeyName(to, a.jid)
	for _, p := range childrenOf(node.GetChildByTag("participants")) {
		jid, ok := p.Attrs["jid"].(types.JID)
		if p.Tag != "to" || !ok {
			continue
		}
		if jid.Server != types.DefaultUserServer || jid.Device != 0 || s.Account(jid.User) != nil {
			if jid.ToNonAD() != a.jid.ToNonAD() { // whatsmeow also sends its own device a copy
				s.logf("%s: message %s: ignoring the copy for %s", c.name, id, jid)
			}
			continue
		}
		ct := s.Contact(jid.User)
		for _, enc := range p.GetChildrenByTag("enc") {
			msg, err := ct.decrypt(c.ctx, a, enc)
			if err != nil {
				s.logf("%s could not read the sender key copy of %s from %s: %v", ct.jid, id, a.jid, err)
				continue
			}
			if skdm := msg.GetSenderKeyDistributionMessage(); skdm != nil {
				if err := ct.processSenderKey(c.ctx, name, skdm.GetAxolotlSenderKeyDistributionMessage()); err != nil {
					s.logf("%s: sender key of %s in %s: %v", ct.jid, a.jid, to, err)
				}
			}
		}
	}
	var skmsg *waBinary.Node
	for _, enc := range node.GetChildrenByTag("enc") {
		if t, _ := enc.Attrs["type"].(string); t == "skmsg" {
			skmsg = &enc
		}
	}
	for _, m := range members {
		if m.Server != types.DefaultUserServer || s.Account(m.User) != nil {
			continue
		}
		ct := s.Contact(m.User)
		rm := &ReceivedMessage{ID: id, From: a.jid, Type: typ, Chat: to}
		if skmsg == nil {
			rm.Err = errors.New("group message without an skmsg")
		} else {
			rm.Message, rm.Err = ct.decryptGroup(c.ctx, name, *skmsg)
		}
		ct.push(a, rm)
	}
}

func (c *Contact) processSenderKey(ctx context.Context, name *protocol.SenderKeyName, raw []byte) error {
	skdm, err := protocol.NewSenderKeyDistributionMessageFromBytes(raw, serializer.SenderKeyDistributionMessage)
	if err != nil {
		return fmt.Errorf("parse sender key distribution message: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return groups.NewGroupSessionBuilder(c.signal, serializer).Process(ctx, name, skdm)
}

func (c *Contact) decryptGroup(ctx context.Context, name *protocol.SenderKeyName, enc waBinary.Node) (*waE2E.Message, error) {
	content, ok := enc.Content.([]byte)
	if !ok {
		return nil, errors.New("skmsg without content")
	}
	msg, err := protocol.NewSenderKeyMessageFromBytes(content, serializer.SenderKeyMessage)
	if err != nil {
		return nil, fmt.Errorf("parse skmsg: %w", err)
	}
	c.mu.Lock()
	builder := groups.NewGroupSessionBuilder(c.signal, serializer)
	plain, err := groups.NewGroupCipher(builder, name, c.signal).Decrypt(ctx, msg)
	c.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("decrypt skmsg: %w", err)
	}
	if v, _ := enc.Attrs["v"].(string); v != "3" {
		if plain, err = unpad(plain); err != nil {
			return nil, err
		}
	}
	var out waE2E.Message
	if err := proto.Unmarshal(plain, &out); err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	return &out, nil
}

// SendGroupText sends a text to a group the contact is in.
func (c *Contact) SendGroupText(ctx context.Context, group types.JID, text string) (types.MessageID, error) {
	return c.SendGroupMessage(ctx, group, &waE2E.Message{Conversation: proto.String(text)})
}

// SendGroupImage uploads data as an image and sends it to a group.
func (c *Contact) SendGroupImage(ctx context.Context, group types.JID, data []byte, mimetype, caption string) (types.MessageID, error) {
	m, err := c.srv.UploadMedia(data, whatsmeow.MediaImage)
	if err != nil {
		return "", err
	}
	return c.SendGroupMessage(ctx, group, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
		URL:           proto.String(m.URL),
		DirectPath:    proto.String(m.DirectPath),
		MediaKey:      m.MediaKey,
		FileSHA256:    m.FileSHA256,
		FileEncSHA256: m.FileEncSHA256,
		FileLength:    proto.Uint64(m.FileLength),
		Mimetype:      proto.String(mimetype),
		Caption:       optionalString(caption),
	}})
}

// SendGroupMessage sends msg to a group the contact is in: encrypted once
// with the contact's sender key, with the sender key itself sent to each
// member account over its 1:1 session in the same stanza, as WhatsApp
// clients do. Offline accounts get it at their next login.
func (c *Contact) SendGroupMessage(ctx context.Context, group types.JID, msg *waE2E.Message) (types.MessageID, error) {
	s := c.srv
	s.mu.Lock()
	g := s.groups[group.User]
	if g == nil || g.member(c.jid) == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("watest: %s is not in group %s", c.jid, group)
	}
	accts := g.accountMembersLocked(s)
	s.mu.Unlock()
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("watest: marshal message: %w", err)
	}

	name := senderKeyName(group, c.jid)
	c.mu.Lock()
	builder := groups.NewGroupSessionBuilder(c.signal, serializer)
	skdm, err := builder.Create(ctx, name)
	var sk protocol.GroupCiphertextMessage
	if err == nil {
		sk, err = groups.NewGroupCipher(builder, name, c.signal).Encrypt(ctx, pad(plaintext))
	}
	c.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("watest: sender key of %s in %s: %w", c.jid, group, err)
	}
	skdmPlain, err := proto.Marshal(&waE2E.Message{SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{
		GroupID:                             proto.String(group.String()),
		AxolotlSenderKeyDistributionMessage: skdm.Serialize(),
	}})
	if err != nil {
		return "", fmt.Errorf("watest: marshal sender key: %w", err)
	}
	skAttrs := waBinary.Attrs{"v": "2", "type": "skmsg"}
	if mt := mediaTypeOf(msg); mt != "" {
		skAttrs["mediatype"] = mt
	}
	id := whatsmeow.GenerateMessageID()
	for _, a := range accts {
		ct, isPreKey, err := c.encryptFor(ctx, a, skdmPlain)
		if err != nil {
			return "", err
		}
		encType := "msg"
		if isPreKey {
			encType = "pkmsg"
		}
		node := waBinary.Node{
			Tag: "message",
			Attrs: waBinary.Attrs{
				"from":        group,
				"participant": c.jid,
				"id":          id,
				"t":           strconv.FormatInt(time.Now().Unix(), 10),
				"type":        stanzaType(msg),
				"notify":      c.pushName,
			},
			Content: []waBinary.Node{
				{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": encType}, Content: ct},
				{Tag: "enc", Attrs: skAttrs, Content: sk.SignedSerialize()},
			},
		}
		// One delivery per message ID: a group with several member
		// accounts tracks the acknowledgement of the last one only.
		s.deliver(&delivery{key: messageKey(id), id: id, to: a, node: node})
	}
	return id, nil
}

// VotePoll votes on a poll a companion sent to the contact (alone or in a
// group), choosing options by name, as WhatsApp clients vote: the
// selection (SHA-256 of each option name) is encrypted with AES-GCM under a
// key derived from the poll's message secret, the poll's ID, its creator
// and the voter. No options withdraws the vote.
func (c *Contact) VotePoll(ctx context.Context, poll *ReceivedMessage, options ...string) (types.MessageID, error) {
	if poll == nil || poll.Message == nil {
		return "", errors.New("watest: no poll to vote on")
	}
	secret := poll.Message.GetMessageContextInfo().GetMessageSecret()
	if len(secret) == 0 {
		return "", fmt.Errorf("watest: poll %s carries no message secret", poll.ID)
	}
	vote := &waE2E.PollVoteMessage{}
	for _, o := range options {
		sum := sha256.Sum256([]byte(o))
		vote.SelectedOptions = append(vote.SelectedOptions, sum[:])
	}
	plain, err := proto.Marshal(vote)
	if err != nil {
		return "", fmt.Errorf("watest: marshal vote: %w", err)
	}
	creator := poll.From.ToNonAD()
	voter := c.jid.ToNonAD()
	info := []byte(poll.ID + creator.String() + voter.String() + "Poll Vote")
	key := hkdfutil.SHA256(secret, nil, info, 32)
	iv := randomBytes(12)
	ct, err := gcmutil.Encrypt(key, iv, plain, fmt.Appendf(nil, "%s\x00%s", poll.ID, voter))
	if err != nil {
		return "", fmt.Errorf("watest: encrypt vote: %w", err)
	}
	pollKey := &waCommon.MessageKey{RemoteJID: proto.String(creator.String()), FromMe: proto.Bool(false), ID: proto.String(poll.ID)}
	if !poll.Chat.IsEmpty() {
		pollKey.RemoteJID = proto.String(poll.Chat.String())
		pollKey.Participant = proto.String(creator.String())
	}
	update := &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{
		PollCreationMessageKey: pollKey,
		Vote:                   &waE2E.PollEncValue{EncPayload: ct, EncIV: iv},
		SenderTimestampMS:      proto.Int64(time.Now().UnixMilli()),
	}}
	if !poll.Chat.IsEmpty() {
		return c.SendGroupMessage(ctx, poll.Chat, update)
	}
	return c.SendMessage(ctx, creator, update)
}
