package sim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/session"
)

// mediaHost is where sim media "lives"; the URL is never fetched, the bytes
// are kept by the Network under the direct path.
const mediaHost = "https://media.sim.wildcat.invalid"

// newMessageID makes an id shaped like WhatsApp's own (3EB0 + hex).
func newMessageID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return "3EB0" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// buildMessage turns the content of a send request into the waE2E proto a
// WhatsApp client would put on the wire. chat is the conversation the
// message goes to (used for reaction, edit and revoke keys).
func (n *Network) buildMessage(req *session.SendRequest, chat types.JID, now time.Time) (*waE2E.Message, error) {
	contents := 0
	for _, set := range []bool{req.Text != "", req.Media != nil, req.Reaction != nil, req.Location != nil, len(req.Contacts) > 0, req.Edit != nil, req.Revoke != nil, req.Poll != nil} {
		if set {
			contents++
		}
	}
	if contents != 1 {
		return nil, fmt.Errorf("%w: exactly one of text, media, reaction, location, contacts, edit, revoke or poll must be set (got %d)", session.ErrInvalidRequest, contents)
	}

	var ci *waE2E.ContextInfo
	if req.ReplyTo != nil || len(req.Mentions) > 0 {
		ci = &waE2E.ContextInfo{MentionedJID: req.Mentions}
		if q := req.ReplyTo; q != nil {
			if q.MessageID == "" {
				return nil, fmt.Errorf("%w: reply needs the quoted message id", session.ErrInvalidRequest)
			}
			ci.StanzaID = proto.String(q.MessageID)
			if q.Sender != "" {
				ci.Participant = proto.String(q.Sender)
			}
			quoted := &waE2E.Message{Conversation: proto.String("")}
			if q.Message != nil && q.Message.Text != "" {
				quoted.Conversation = proto.String(q.Message.Text)
			}
			ci.QuotedMessage = quoted
		}
	}

	switch {
	case req.Text != "":
		if ci == nil {
			return &waE2E.Message{Conversation: proto.String(req.Text)}, nil
		}
		return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(req.Text), ContextInfo: ci}}, nil
	case req.Media != nil:
		return n.mediaMessage(req.Media, ci)
	case req.Poll != nil:
		return pollMessage(req.Poll) // poll.go
	case req.Reaction != nil:
		r := req.Reaction
		if r.MessageID == "" {
			return nil, fmt.Errorf("%w: reaction needs the message id it reacts to", session.ErrInvalidRequest)
		}
		key := &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(r.FromMe), ID: proto.String(r.MessageID)}
		if r.Sender != "" {
			key.Participant = proto.String(r.Sender)
		}
		return &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key, Text: proto.String(r.Emoji), SenderTimestampMS: proto.Int64(now.UnixMilli())}}, nil
	case req.Location != nil:
		l := req.Location
		if l.Latitude < -90 || l.Latitude > 90 || l.Longitude < -180 || l.Longitude > 180 {
			return nil, fmt.Errorf("%w: location %v,%v is off the globe", session.ErrInvalidRequest, l.Latitude, l.Longitude)
		}
		return &waE2E.Message{LocationMessage: &waE2E.LocationMessage{
			DegreesLatitude: proto.Float64(l.Latitude), DegreesLongitude: proto.Float64(l.Longitude),
			Name: optString(l.Name), Address: optString(l.Address), URL: optString(l.URL), Comment: optString(l.Caption),
			ContextInfo: ci,
		}}, nil
	case len(req.Contacts) == 1:
		c := req.Contacts[0]
		return &waE2E.Message{ContactMessage: &waE2E.ContactMessage{DisplayName: proto.String(c.DisplayName), Vcard: proto.String(c.VCard), ContextInfo: ci}}, nil
	case len(req.Contacts) > 1:
		arr := &waE2E.ContactsArrayMessage{DisplayName: proto.String(fmt.Sprintf("%d contacts", len(req.Contacts))), ContextInfo: ci}
		for _, c := range req.Contacts {
			arr.Contacts = append(arr.Contacts, &waE2E.ContactMessage{DisplayName: proto.String(c.DisplayName), Vcard: proto.String(c.VCard)})
		}
		return &waE2E.Message{ContactsArrayMessage: arr}, nil
	case req.Edit != nil:
		if req.Edit.MessageID == "" || req.Edit.Text == "" {
			return nil, fmt.Errorf("%w: an edit needs the message id and the new text", session.ErrInvalidRequest)
		}
		return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type:          waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
			Key:           &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(true), ID: proto.String(req.Edit.MessageID)},
			EditedMessage: &waE2E.Message{Conversation: proto.String(req.Edit.Text)},
			TimestampMS:   proto.Int64(now.UnixMilli()),
		}}, nil
	default: // revoke
		if req.Revoke.MessageID == "" {
			return nil, fmt.Errorf("%w: a revoke needs the message id", session.ErrInvalidRequest)
		}
		key := &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(req.Revoke.Sender == ""), ID: proto.String(req.Revoke.MessageID)}
		if req.Revoke.Sender != "" {
			key.Participant = proto.String(req.Revoke.Sender)
		}
		return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: key}}, nil
	}
}

// defaultMimetypes are used when a media send names none.
var defaultMimetypes = map[session.MediaKind]string{
	session.MediaImage:    "image/jpeg",
	session.MediaVideo:    "video/mp4",
	session.MediaGIF:      "video/mp4",
	session.MediaAudio:    "audio/mpeg",
	session.MediaVoice:    "audio/ogg; codecs=opus",
	session.MediaDocument: "application/octet-stream",
	session.MediaSticker:  "image/webp",
}

// mediaMessage "uploads" the bytes to the network and builds the media
// message pointing at them, with the hashes and key a real upload yields.
func (n *Network) mediaMessage(m *session.MediaSend, ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	mimetype := m.Mimetype
	if mimetype == "" {
		mimetype = defaultMimetypes[m.Kind]
	}
	if mimetype == "" {
		return nil, fmt.Errorf("%w: unknown media kind %q", session.ErrInvalidRequest, m.Kind)
	}
	data := m.Data
	if len(data) == 0 {
		data = placeholder(m.Kind)
	}
	path, sum := n.putMedia(data)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	url, size, now := proto.String(mediaHost+path), proto.Uint64(uint64(len(data))), proto.Int64(time.Now().Unix())
	caption := optString(m.Caption)
	switch m.Kind {
	case session.MediaImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			URL: url, DirectPath: proto.String(path), Mimetype: proto.String(mimetype), Caption: caption,
			FileSHA256: sum[:], FileEncSHA256: sum[:], FileLength: size, MediaKey: key, MediaKeyTimestamp: now, ContextInfo: ci,
		}}, nil
	case session.MediaVideo, session.MediaGIF:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
			URL: url, DirectPath: proto.String(path), Mimetype: proto.String(mimetype), Caption: caption,
			FileSHA256: sum[:], FileEncSHA256: sum[:], FileLength: size, MediaKey: key, MediaKeyTimestamp: now,
			Seconds: optUint32(m.Seconds), GifPlayback: proto.Bool(m.Kind == session.MediaGIF), ContextInfo: ci,
		}}, nil
	case session.MediaAudio, session.MediaVoice:
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
			URL: url, DirectPath: proto.String(path), Mimetype: proto.String(mimetype),
			FileSHA256: sum[:], FileEncSHA256: sum[:], FileLength: size, MediaKey: key, MediaKeyTimestamp: now,
			Seconds: optUint32(m.Seconds), PTT: proto.Bool(m.Kind == session.MediaVoice), ContextInfo: ci,
		}}, nil
	case session.MediaDocument:
		name := m.Filename
		if name == "" {
			name = "document"
		}
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			URL: url, DirectPath: proto.String(path), Mimetype: proto.String(mimetype), Caption: caption,
			FileSHA256: sum[:], FileEncSHA256: sum[:], FileLength: size, MediaKey: key, MediaKeyTimestamp: now,
			FileName: proto.String(name), Title: proto.String(name), ContextInfo: ci,
		}}, nil
	case session.MediaSticker:
		return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{
			URL: url, DirectPath: proto.String(path), Mimetype: proto.String(mimetype),
			FileSHA256: sum[:], FileEncSHA256: sum[:], FileLength: size, MediaKey: key, MediaKeyTimestamp: now, ContextInfo: ci,
		}}, nil
	}
	return nil, fmt.Errorf("%w: unknown media kind %q", session.ErrInvalidRequest, m.Kind)
}

// onePixelPNG stands in for an image injected without bytes.
var onePixelPNG = []byte{
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
	0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
	0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
	0x42, 0x60, 0x82,
}

// placeholder is what a media message injected by kind alone carries.
func placeholder(kind session.MediaKind) []byte {
	if kind == session.MediaImage {
		return onePixelPNG
	}
	return []byte("wildcat sim " + string(kind) + " placeholder\n")
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(s)
}

func optUint32(v uint32) *uint32 {
	if v == 0 {
		return nil
	}
	return proto.Uint32(v)
}
