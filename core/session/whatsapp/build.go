package whatsapp

import (
	"fmt"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/session"
)

// builder turns a SendRequest into the exact waE2E.Message WhatsApp gets.
// It is pure — the uploaded media and the clock are handed in — so tests
// can assert every field of what a send produces.
type builder struct {
	own types.JID // this account's JID (phone number, device-less)
	now func() time.Time
}

// uploadKind maps a media kind to whatsmeow's upload key type.
func uploadKind(k session.MediaKind) (whatsmeow.MediaType, error) {
	switch k {
	case session.MediaImage, session.MediaSticker:
		return whatsmeow.MediaImage, nil
	case session.MediaVideo, session.MediaGIF:
		return whatsmeow.MediaVideo, nil
	case session.MediaAudio, session.MediaVoice:
		return whatsmeow.MediaAudio, nil
	case session.MediaDocument:
		return whatsmeow.MediaDocument, nil
	}
	return "", fmt.Errorf("%w: unknown media kind %q", session.ErrInvalidRequest, k)
}

// contentCount enforces "exactly one content" so a request never silently
// drops half of what the caller asked for.
func contentCount(req *session.SendRequest) int {
	n := 0
	for _, set := range []bool{req.Text != "" && req.Media == nil, req.Media != nil, req.Reaction != nil, req.Location != nil, len(req.Contacts) > 0, req.Edit != nil, req.Revoke != nil, req.Poll != nil} {
		if set {
			n++
		}
	}
	return n
}

// build returns the message for req sent to chat. up is the upload of
// req.Media (nil when there is none).
func (b builder) build(req *session.SendRequest, chat types.JID, up *whatsmeow.UploadResponse) (*waE2E.Message, error) {
	if n := contentCount(req); n != 1 {
		return nil, fmt.Errorf("%w: a message needs exactly one of text, media, reaction, location, contacts, edit, revoke or poll (got %d)", session.ErrInvalidRequest, n)
	}
	switch {
	case req.Poll != nil:
		return pollMessage(req.Poll)
	case req.Media != nil:
		if up == nil {
			return nil, fmt.Errorf("%w: media was not uploaded", session.ErrInvalidRequest)
		}
		return b.media(req, up)
	case req.Reaction != nil:
		r := req.Reaction
		return &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
			Key:               b.key(chat, r.Sender, r.FromMe, r.MessageID),
			Text:              proto.String(r.Emoji),
			SenderTimestampMS: proto.Int64(b.now().UnixMilli()),
		}}, nil
	case req.Location != nil:
		l := req.Location
		return &waE2E.Message{LocationMessage: &waE2E.LocationMessage{
			DegreesLatitude:  proto.Float64(l.Latitude),
			DegreesLongitude: proto.Float64(l.Longitude),
			Name:             optString(l.Name),
			Address:          optString(l.Address),
			URL:              optString(l.URL),
			Comment:          optString(l.Caption),
			ContextInfo:      b.context(req),
		}}, nil
	case len(req.Contacts) == 1:
		c := req.Contacts[0]
		return &waE2E.Message{ContactMessage: &waE2E.ContactMessage{
			DisplayName: proto.String(c.DisplayName),
			Vcard:       proto.String(c.VCard),
			ContextInfo: b.context(req),
		}}, nil
	case len(req.Contacts) > 1:
		arr := &waE2E.ContactsArrayMessage{
			DisplayName: proto.String(fmt.Sprintf("%d contacts", len(req.Contacts))),
			ContextInfo: b.context(req),
		}
		for _, c := range req.Contacts {
			arr.Contacts = append(arr.Contacts, &waE2E.ContactMessage{DisplayName: proto.String(c.DisplayName), Vcard: proto.String(c.VCard)})
		}
		return &waE2E.Message{ContactsArrayMessage: arr}, nil
	case req.Edit != nil:
		// The shape whatsmeow's BuildEdit produces; only one's own messages
		// can be edited, so the key is always fromMe.
		return &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
			ProtocolMessage: &waE2E.ProtocolMessage{
				Key:           &waCommon.MessageKey{FromMe: proto.Bool(true), ID: proto.String(req.Edit.MessageID), RemoteJID: proto.String(chat.String())},
				Type:          waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
				EditedMessage: &waE2E.Message{Conversation: proto.String(req.Edit.Text)},
				TimestampMS:   proto.Int64(b.now().UnixMilli()),
			},
		}}}, nil
	case req.Revoke != nil:
		fromMe := req.Revoke.Sender == ""
		return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_REVOKE.Enum(),
			Key:  b.key(chat, req.Revoke.Sender, fromMe, req.Revoke.MessageID),
		}}, nil
	}
	// Plain text: a bare conversation unless it quotes or mentions, which
	// only the extended form can carry.
	if ci := b.context(req); ci != nil {
		return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(req.Text), ContextInfo: ci}}, nil
	}
	return &waE2E.Message{Conversation: proto.String(req.Text)}, nil
}

func (b builder) media(req *session.SendRequest, up *whatsmeow.UploadResponse) (*waE2E.Message, error) {
	m := req.Media
	caption := m.Caption
	if caption == "" && req.Text != "" {
		caption = req.Text
	}
	ci := b.context(req)
	ts := proto.Int64(b.now().Unix())
	switch m.Kind {
	case session.MediaImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey, MediaKeyTimestamp: ts,
			Mimetype: proto.String(m.Mimetype), FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Caption: optString(caption), ContextInfo: ci,
		}}, nil
	case session.MediaVideo, session.MediaGIF:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey, MediaKeyTimestamp: ts,
			Mimetype: proto.String(m.Mimetype), FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Caption: optString(caption), Seconds: optUint32(m.Seconds), GifPlayback: optBool(m.Kind == session.MediaGIF), ContextInfo: ci,
		}}, nil
	case session.MediaAudio, session.MediaVoice:
		if caption != "" {
			return nil, fmt.Errorf("%w: audio cannot carry a caption", session.ErrInvalidRequest)
		}
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey, MediaKeyTimestamp: ts,
			Mimetype: proto.String(m.Mimetype), FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Seconds: optUint32(m.Seconds), PTT: optBool(m.Kind == session.MediaVoice), ContextInfo: ci,
		}}, nil
	case session.MediaDocument:
		name := m.Filename
		if name == "" {
			name = "file"
		}
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey, MediaKeyTimestamp: ts,
			Mimetype: proto.String(m.Mimetype), FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			FileName: proto.String(name), Title: proto.String(name), Caption: optString(caption), ContextInfo: ci,
		}}, nil
	case session.MediaSticker:
		if caption != "" {
			return nil, fmt.Errorf("%w: a sticker cannot carry a caption", session.ErrInvalidRequest)
		}
		return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey, MediaKeyTimestamp: ts,
			Mimetype: proto.String(m.Mimetype), FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			ContextInfo: ci,
		}}, nil
	}
	return nil, fmt.Errorf("%w: unknown media kind %q", session.ErrInvalidRequest, m.Kind)
}

// maxPollOptions is WhatsApp's limit on the answers of a poll.
const maxPollOptions = 12

// pollMessage is whatsmeow's poll creation: the poll and a fresh message
// secret, which SendMessage keeps in the auth store (MsgSecrets) so that
// votes on it can be decrypted.
func pollMessage(p *session.PollSend) (*waE2E.Message, error) {
	if strings.TrimSpace(p.Name) == "" {
		return nil, fmt.Errorf("%w: a poll needs a question", session.ErrInvalidRequest)
	}
	if len(p.Options) < 2 || len(p.Options) > maxPollOptions {
		return nil, fmt.Errorf("%w: a poll needs 2 to %d options (got %d)", session.ErrInvalidRequest, maxPollOptions, len(p.Options))
	}
	seen := map[string]bool{}
	for _, o := range p.Options {
		if strings.TrimSpace(o) == "" || seen[o] {
			return nil, fmt.Errorf("%w: poll options must be distinct and not empty", session.ErrInvalidRequest)
		}
		seen[o] = true
	}
	if int(p.SelectableCount) > len(p.Options) {
		return nil, fmt.Errorf("%w: a poll cannot allow %d choices among %d options", session.ErrInvalidRequest, p.SelectableCount, len(p.Options))
	}
	// BuildPollCreation reads nothing of the client: a nil one is fine.
	var cli *whatsmeow.Client
	return cli.BuildPollCreation(p.Name, p.Options, int(p.SelectableCount)), nil
}

// context carries the quote and mentions; nil when there are neither, so
// the message stays in its simplest form.
func (b builder) context(req *session.SendRequest) *waE2E.ContextInfo {
	if req.ReplyTo == nil && len(req.Mentions) == 0 {
		return nil
	}
	ci := &waE2E.ContextInfo{}
	if q := req.ReplyTo; q != nil {
		ci.StanzaID = proto.String(q.MessageID)
		participant := q.Sender
		if participant == "" {
			participant = b.own.String()
		}
		ci.Participant = proto.String(participant)
		if q.Message != nil {
			// A text preview is enough for the recipient's client to render
			// the quote; the full original stays on the phone.
			ci.QuotedMessage = &waE2E.Message{Conversation: proto.String(q.Message.Text)}
		}
	}
	if len(req.Mentions) > 0 {
		ci.MentionedJID = append([]string(nil), req.Mentions...)
	}
	return ci
}

// key identifies a target message. In groups, someone else's message also
// names its author (participant); one's own never does.
func (b builder) key(chat types.JID, sender string, fromMe bool, id string) *waCommon.MessageKey {
	k := &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(fromMe), ID: proto.String(id)}
	if !fromMe && sender != "" && chat.Server == types.GroupServer {
		k.Participant = proto.String(sender)
	}
	return k
}

// knownServers are the JID servers a message can be addressed to.
var knownServers = map[string]bool{
	types.DefaultUserServer: true, types.GroupServer: true, types.HiddenUserServer: true,
	types.BroadcastServer: true, types.NewsletterServer: true,
}

// ParseRecipient turns "+15551234567", "15551234567" or a JID into a JID.
// Phone numbers become user JIDs on s.whatsapp.net.
func ParseRecipient(to string) (types.JID, error) {
	to = strings.TrimSpace(to)
	if to == "" {
		return types.EmptyJID, fmt.Errorf("%w: empty recipient", session.ErrInvalidRequest)
	}
	if strings.Contains(to, "@") {
		j, err := types.ParseJID(to)
		if err != nil || j.User == "" || !knownServers[j.Server] {
			return types.EmptyJID, fmt.Errorf("%w: %q is not a valid JID", session.ErrInvalidRequest, to)
		}
		return j.ToNonAD(), nil
	}
	digits := strings.TrimPrefix(to, "+")
	if len(digits) < 6 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
		return types.EmptyJID, fmt.Errorf("%w: %q is neither a JID nor a phone number with country code", session.ErrInvalidRequest, to)
	}
	return types.NewJID(digits, types.DefaultUserServer), nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(s)
}

func optUint32(n uint32) *uint32 {
	if n == 0 {
		return nil
	}
	return proto.Uint32(n)
}

func optBool(b bool) *bool {
	if !b {
		return nil
	}
	return proto.Bool(true)
}
