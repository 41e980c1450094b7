package whatsapp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/event"
)

const account = "acme"

var (
	ts = time.Date(2025, 3, 1, 12, 30, 45, 0, time.UTC)

	me       = types.NewJID("15550009999", types.DefaultUserServer)
	alicePN  = types.NewJID("15550001111", types.DefaultUserServer)
	aliceLID = types.NewJID("11111111111111", types.HiddenUserServer)
	bobLID   = types.NewJID("98765432101234", types.HiddenUserServer)
	bobPN    = types.NewJID("15550002222", types.DefaultUserServer)
	group    = mustJID("120363025246125244@g.us")
	list     = mustJID("1740000000@broadcast")
)

func mustJID(s string) types.JID {
	j, err := types.ParseJID(s)
	if err != nil {
		panic(err)
	}
	return j
}

// dmInfo: Alice writes to us, addressed by phone number, with her LID as
// the alternate address.
func dmInfo(id string) types.MessageInfo {
	return types.MessageInfo{
		MessageSource: types.MessageSource{
			Chat: alicePN, Sender: alicePN, SenderAlt: aliceLID, AddressingMode: types.AddressingModePN,
		},
		ID: id, PushName: "Alice", Timestamp: ts, Type: "text",
	}
}

// groupInfo: Bob writes in an LID-addressed group from his second device;
// WhatsApp gives his phone number as SenderAlt.
func groupInfo(id string) types.MessageInfo {
	sender := bobLID
	sender.Device = 12
	return types.MessageInfo{
		MessageSource: types.MessageSource{
			Chat: group, Sender: sender, SenderAlt: bobPN, IsGroup: true, AddressingMode: types.AddressingModeLID,
		},
		ID: id, PushName: "Bob", Timestamp: ts, Type: "text",
	}
}

// sentInfo: we wrote to Alice from the phone; RecipientAlt is her LID.
func sentInfo(id string) types.MessageInfo {
	return types.MessageInfo{
		MessageSource: types.MessageSource{
			Chat: alicePN, Sender: me, IsFromMe: true, RecipientAlt: aliceLID, AddressingMode: types.AddressingModePN,
		},
		ID: id, Timestamp: ts, Type: "text",
	}
}

// The expected message identity for each info template, written out rather
// than derived, so the test does not repeat the code under test.
func wantDM(id string) *event.Message {
	return &event.Message{
		AccountID: account, MessageID: id, ChatID: "15550001111@s.whatsapp.net",
		From: "15550001111@s.whatsapp.net", Timestamp: ts.Unix(),
		ChatLID: "11111111111111@lid", ChatPN: "15550001111@s.whatsapp.net",
		FromLID: "11111111111111@lid", FromPN: "15550001111@s.whatsapp.net", PushName: "Alice",
	}
}

func wantGroup(id string) *event.Message {
	return &event.Message{
		AccountID: account, MessageID: id, ChatID: "120363025246125244@g.us",
		From: "98765432101234@lid", Timestamp: ts.Unix(),
		FromLID: "98765432101234@lid", FromPN: "15550002222@s.whatsapp.net", PushName: "Bob",
		IsGroup: true,
	}
}

func wantSent(id string) *event.Message {
	return &event.Message{
		AccountID: account, MessageID: id, ChatID: "15550001111@s.whatsapp.net",
		From: "15550009999@s.whatsapp.net", FromMe: true, Timestamp: ts.Unix(),
		ChatLID: "11111111111111@lid", ChatPN: "15550001111@s.whatsapp.net",
		FromPN: "15550009999@s.whatsapp.net",
	}
}

func with(m *event.Message, f func(m *event.Message)) *event.Message {
	f(m)
	return m
}

func hexSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var (
	sha      = []byte{0xde, 0xad, 0xbe, 0xef}
	encSHA   = []byte{0xca, 0xfe}
	mediaKey = []byte{1, 2, 3, 4, 5, 6, 7, 8}
)

func wantMedia(m event.Media) *event.Media {
	m.SHA256, m.FileEncSHA256, m.MediaKey = "deadbeef", "cafe", mediaKey
	m.MediaKeyTimestamp, m.DirectPath, m.URL = 1740832000, "/v/t62/abc", "https://mmg.whatsapp.net/v/t62/abc"
	return &m
}

func image(caption string) *waE2E.ImageMessage {
	return &waE2E.ImageMessage{
		URL: proto.String("https://mmg.whatsapp.net/v/t62/abc"), DirectPath: proto.String("/v/t62/abc"),
		Mimetype: proto.String("image/jpeg"), Caption: proto.String(caption),
		FileSHA256: sha, FileEncSHA256: encSHA, MediaKey: mediaKey, MediaKeyTimestamp: proto.Int64(1740832000),
		FileLength: proto.Uint64(48213), Width: proto.Uint32(1280), Height: proto.Uint32(960),
		JPEGThumbnail: []byte{0xff, 0xd8},
	}
}

func videoMsg(gif bool) *waE2E.VideoMessage {
	return &waE2E.VideoMessage{
		URL: proto.String("https://mmg.whatsapp.net/v/t62/abc"), DirectPath: proto.String("/v/t62/abc"),
		Mimetype: proto.String("video/mp4"), Caption: proto.String("clip"),
		FileSHA256: sha, FileEncSHA256: encSHA, MediaKey: mediaKey, MediaKeyTimestamp: proto.Int64(1740832000),
		FileLength: proto.Uint64(1_000_000), Seconds: proto.Uint32(7), Width: proto.Uint32(640), Height: proto.Uint32(360),
		GifPlayback: proto.Bool(gif),
	}
}

func audioMsg(ptt bool) *waE2E.AudioMessage {
	return &waE2E.AudioMessage{
		URL: proto.String("https://mmg.whatsapp.net/v/t62/abc"), DirectPath: proto.String("/v/t62/abc"),
		Mimetype: proto.String("audio/ogg; codecs=opus"), PTT: proto.Bool(ptt),
		FileSHA256: sha, FileEncSHA256: encSHA, MediaKey: mediaKey, MediaKeyTimestamp: proto.Int64(1740832000),
		FileLength: proto.Uint64(9000), Seconds: proto.Uint32(4),
	}
}

func document(caption string) *waE2E.DocumentMessage {
	return &waE2E.DocumentMessage{
		URL: proto.String("https://mmg.whatsapp.net/v/t62/abc"), DirectPath: proto.String("/v/t62/abc"),
		Mimetype: proto.String("application/pdf"), FileName: proto.String("invoice.pdf"), Title: proto.String("invoice"),
		FileSHA256: sha, FileEncSHA256: encSHA, MediaKey: mediaKey, MediaKeyTimestamp: proto.Int64(1740832000),
		FileLength: proto.Uint64(120_000), PageCount: proto.Uint32(3), Caption: proto.String(caption),
	}
}

func pollOptions(names ...string) []*waE2E.PollCreationMessage_Option {
	out := make([]*waE2E.PollCreationMessage_Option, len(names))
	for i, n := range names {
		out[i] = &waE2E.PollCreationMessage_Option{OptionName: proto.String(n)}
	}
	return out
}

func wantPoll(name string, selectable uint32, options ...string) *event.Poll {
	p := &event.Poll{Name: name, SelectableCount: selectable, Options: []event.PollOption{}}
	for _, o := range options {
		p.Options = append(p.Options, event.PollOption{Name: o, Hash: hexSHA(o)})
	}
	return p
}

const vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Carol\nTEL;type=CELL;waid=15550004444:+1 555 000 4444\nEND:VCARD"

type messageCase struct {
	name string
	evt  *events.Message
	// source overrides the normaliser's source (history replays).
	source   event.Source
	kind     event.Kind
	msg      *event.Message // expected, with Raw left nil (checked separately)
	reaction *event.Reaction
	edit     *event.Edit
	revoke   *event.Revoke
}

func messageCases() []messageCase {
	return []messageCase{
		{
			name: "conversation",
			evt:  &events.Message{Info: dmInfo("M1"), Message: &waE2E.Message{Conversation: proto.String("hello")}},
			kind: event.KindMessageReceived,
			msg:  with(wantDM("M1"), func(m *event.Message) { m.Type, m.Text = event.TypeText, "hello" }),
		},
		{
			name: "extended text with link preview, reply and mention in LID group",
			evt: &events.Message{Info: groupInfo("M2"), Message: &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
				Text:        proto.String("@15550001111 see https://example.com"),
				MatchedText: proto.String("https://example.com"), Title: proto.String("Example"), Description: proto.String("An example page"),
				ContextInfo: &waE2E.ContextInfo{
					StanzaID:      proto.String("Q1"),
					Participant:   proto.String("15550001111@s.whatsapp.net"),
					QuotedMessage: &waE2E.Message{Conversation: proto.String("where is the report?")},
					MentionedJID:  []string{"15550001111@s.whatsapp.net", "11111111111111@lid"},
				},
			}}},
			kind: event.KindMessageReceived,
			msg: with(wantGroup("M2"), func(m *event.Message) {
				m.Type, m.Text = event.TypeText, "@15550001111 see https://example.com"
				m.LinkPreview = &event.LinkPreview{URL: "https://example.com", Title: "Example", Description: "An example page"}
				m.Quoted = &event.Quoted{MessageID: "Q1", Participant: "15550001111@s.whatsapp.net", Type: event.TypeText, Text: "where is the report?"}
				m.Mentions = []string{"15550001111@s.whatsapp.net", "11111111111111@lid"}
			}),
		},
		{
			name: "image, ephemeral, already unwrapped by whatsmeow",
			evt: &events.Message{
				Info: dmInfo("M3"), IsEphemeral: true,
				Message:    &waE2E.Message{ImageMessage: image("receipt")},
				RawMessage: &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{ImageMessage: image("receipt")}}},
			},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M3"), func(m *event.Message) {
				m.Type, m.Text, m.HasMedia, m.IsEphemeral = event.TypeImage, "receipt", true, true
				m.Media = wantMedia(event.Media{Mimetype: "image/jpeg", Size: 48213, Caption: "receipt", Width: 1280, Height: 960})
			}),
		},
		{
			name: "image, view-once v2, raw wrapped form",
			evt: &events.Message{Info: dmInfo("M4"), Message: &waE2E.Message{
				ViewOnceMessageV2: &waE2E.FutureProofMessage{Message: &waE2E.Message{ImageMessage: image("")}},
			}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M4"), func(m *event.Message) {
				m.Type, m.HasMedia, m.IsViewOnce = event.TypeImage, true, true
				m.Media = wantMedia(event.Media{Mimetype: "image/jpeg", Size: 48213, Width: 1280, Height: 960})
			}),
		},
		{
			name: "video, view-once v1 wrapper",
			evt: &events.Message{Info: dmInfo("M5"), Message: &waE2E.Message{
				ViewOnceMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{VideoMessage: videoMsg(false)}},
			}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M5"), func(m *event.Message) {
				m.Type, m.Text, m.HasMedia, m.IsViewOnce = event.TypeVideo, "clip", true, true
				m.Media = wantMedia(event.Media{Mimetype: "video/mp4", Size: 1_000_000, Caption: "clip", DurationSeconds: 7, Width: 640, Height: 360})
			}),
		},
		{
			name: "gif",
			evt:  &events.Message{Info: dmInfo("M6"), Message: &waE2E.Message{VideoMessage: videoMsg(true)}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M6"), func(m *event.Message) {
				m.Type, m.Text, m.HasMedia = event.TypeGIF, "clip", true
				m.Media = wantMedia(event.Media{Mimetype: "video/mp4", Size: 1_000_000, Caption: "clip", DurationSeconds: 7, Width: 640, Height: 360, GIF: true})
			}),
		},
		{
			name: "ptv video note",
			evt:  &events.Message{Info: dmInfo("M7"), Message: &waE2E.Message{PtvMessage: videoMsg(false)}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M7"), func(m *event.Message) {
				m.Type, m.Text, m.HasMedia = event.TypePTV, "clip", true
				m.Media = wantMedia(event.Media{Mimetype: "video/mp4", Size: 1_000_000, Caption: "clip", DurationSeconds: 7, Width: 640, Height: 360, PTV: true})
			}),
		},
		{
			name: "audio",
			evt:  &events.Message{Info: dmInfo("M8"), Message: &waE2E.Message{AudioMessage: audioMsg(false)}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M8"), func(m *event.Message) {
				m.Type, m.HasMedia = event.TypeAudio, true
				m.Media = wantMedia(event.Media{Mimetype: "audio/ogg; codecs=opus", Size: 9000, DurationSeconds: 4})
			}),
		},
		{
			name: "voice note in group",
			evt:  &events.Message{Info: groupInfo("M9"), Message: &waE2E.Message{AudioMessage: audioMsg(true)}},
			kind: event.KindMessageReceived,
			msg: with(wantGroup("M9"), func(m *event.Message) {
				m.Type, m.HasMedia = event.TypeVoice, true
				m.Media = wantMedia(event.Media{Mimetype: "audio/ogg; codecs=opus", Size: 9000, DurationSeconds: 4, Voice: true})
			}),
		},
		{
			name: "document",
			evt:  &events.Message{Info: dmInfo("M10"), Message: &waE2E.Message{DocumentMessage: document("")}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M10"), func(m *event.Message) {
				m.Type, m.HasMedia = event.TypeDocument, true
				m.Media = wantMedia(event.Media{Mimetype: "application/pdf", Size: 120_000, Filename: "invoice.pdf", PageCount: 3})
			}),
		},
		{
			name: "document with caption, raw wrapped form",
			evt: &events.Message{Info: dmInfo("M11"), Message: &waE2E.Message{
				DocumentWithCaptionMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{DocumentMessage: document("March invoice")}},
			}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M11"), func(m *event.Message) {
				m.Type, m.Text, m.HasMedia = event.TypeDocument, "March invoice", true
				m.Media = wantMedia(event.Media{Mimetype: "application/pdf", Size: 120_000, Filename: "invoice.pdf", PageCount: 3, Caption: "March invoice"})
			}),
		},
		{
			name: "document with caption, unwrapped by whatsmeow",
			evt: &events.Message{
				Info: dmInfo("M11b"), IsDocumentWithCaption: true,
				Message:    &waE2E.Message{DocumentMessage: document("March invoice")},
				RawMessage: &waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{DocumentMessage: document("March invoice")}}},
			},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M11b"), func(m *event.Message) {
				m.Type, m.Text, m.HasMedia = event.TypeDocument, "March invoice", true
				m.Media = wantMedia(event.Media{Mimetype: "application/pdf", Size: 120_000, Filename: "invoice.pdf", PageCount: 3, Caption: "March invoice"})
			}),
		},
		{
			name: "animated sticker",
			evt: &events.Message{Info: dmInfo("M12"), Message: &waE2E.Message{StickerMessage: &waE2E.StickerMessage{
				URL: proto.String("https://mmg.whatsapp.net/v/t62/abc"), DirectPath: proto.String("/v/t62/abc"),
				Mimetype: proto.String("image/webp"), FileSHA256: sha, FileEncSHA256: encSHA, MediaKey: mediaKey,
				MediaKeyTimestamp: proto.Int64(1740832000), FileLength: proto.Uint64(20_000),
				Width: proto.Uint32(512), Height: proto.Uint32(512), IsAnimated: proto.Bool(true),
			}}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M12"), func(m *event.Message) {
				m.Type, m.HasMedia = event.TypeSticker, true
				m.Media = wantMedia(event.Media{Mimetype: "image/webp", Size: 20_000, Width: 512, Height: 512, IsAnimated: true})
			}),
		},
		{
			name: "location",
			evt: &events.Message{Info: dmInfo("M13"), Message: &waE2E.Message{LocationMessage: &waE2E.LocationMessage{
				DegreesLatitude: proto.Float64(52.3676), DegreesLongitude: proto.Float64(4.9041),
				Name: proto.String("Dam Square"), Address: proto.String("Dam, Amsterdam"), URL: proto.String("https://maps.example/dam"),
				Comment: proto.String("meet here"),
			}}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M13"), func(m *event.Message) {
				m.Type, m.Text = event.TypeLocation, "meet here"
				m.Location = &event.Location{Latitude: 52.3676, Longitude: 4.9041, Name: "Dam Square", Address: "Dam, Amsterdam", URL: "https://maps.example/dam", Caption: "meet here"}
			}),
		},
		{
			name: "live location",
			evt: &events.Message{Info: groupInfo("M14"), Message: &waE2E.Message{LiveLocationMessage: &waE2E.LiveLocationMessage{
				DegreesLatitude: proto.Float64(-33.8688), DegreesLongitude: proto.Float64(151.2093),
				AccuracyInMeters: proto.Uint32(12), SpeedInMps: proto.Float32(1.5), DegreesClockwiseFromMagneticNorth: proto.Uint32(90),
				Caption: proto.String("on my way"), SequenceNumber: proto.Int64(42),
			}}},
			kind: event.KindMessageReceived,
			msg: with(wantGroup("M14"), func(m *event.Message) {
				m.Type, m.Text = event.TypeLiveLocation, "on my way"
				m.Location = &event.Location{Latitude: -33.8688, Longitude: 151.2093, Live: true, AccuracyMeters: 12, SpeedMps: 1.5, Heading: 90, Sequence: 42, Caption: "on my way"}
			}),
		},
		{
			name: "contact",
			evt: &events.Message{Info: dmInfo("M15"), Message: &waE2E.Message{ContactMessage: &waE2E.ContactMessage{
				DisplayName: proto.String("Carol"), Vcard: proto.String(vcard),
			}}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M15"), func(m *event.Message) {
				m.Type, m.Contacts = event.TypeContact, []event.Contact{{DisplayName: "Carol", VCard: vcard}}
			}),
		},
		{
			name: "contacts array",
			evt: &events.Message{Info: dmInfo("M16"), Message: &waE2E.Message{ContactsArrayMessage: &waE2E.ContactsArrayMessage{
				DisplayName: proto.String("2 contacts"),
				Contacts: []*waE2E.ContactMessage{
					{DisplayName: proto.String("Carol"), Vcard: proto.String(vcard)},
					{DisplayName: proto.String("Dave"), Vcard: proto.String("BEGIN:VCARD\nFN:Dave\nEND:VCARD")},
				},
			}}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M16"), func(m *event.Message) {
				m.Type = event.TypeContacts
				m.Contacts = []event.Contact{{DisplayName: "Carol", VCard: vcard}, {DisplayName: "Dave", VCard: "BEGIN:VCARD\nFN:Dave\nEND:VCARD"}}
			}),
		},
		{
			name: "reaction",
			evt: &events.Message{Info: groupInfo("M17"), Message: &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
				Key:  &waCommon.MessageKey{RemoteJID: proto.String(group.String()), ID: proto.String("T1"), Participant: proto.String("15550001111@s.whatsapp.net")},
				Text: proto.String("👍"), SenderTimestampMS: proto.Int64(1740832245000),
			}}},
			kind: event.KindMessageReaction,
			msg:  with(wantGroup("M17"), func(m *event.Message) { m.Type = event.TypeReaction }),
			reaction: &event.Reaction{
				TargetID: "T1", TargetChatID: "120363025246125244@g.us", TargetSender: "15550001111@s.whatsapp.net",
				Emoji: "👍", SenderTimestampMs: 1740832245000,
			},
		},
		{
			// Alice's key names the target from her side (whatsmeow's
			// BuildMessageKey): the chat is us, and our message is not hers.
			name: "reaction removed, to our message",
			evt: &events.Message{Info: dmInfo("M18"), Message: &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
				Key:  &waCommon.MessageKey{RemoteJID: proto.String("15559990000@s.whatsapp.net"), ID: proto.String("T2"), FromMe: proto.Bool(false)},
				Text: proto.String(""),
			}}},
			kind:     event.KindMessageReaction,
			msg:      with(wantDM("M18"), func(m *event.Message) { m.Type = event.TypeReaction }),
			reaction: &event.Reaction{TargetID: "T2", TargetChatID: "15550001111@s.whatsapp.net", TargetFromMe: true, Emoji: "", Removed: true},
		},
		{
			name: "reaction to the reactor's own message",
			evt: &events.Message{Info: dmInfo("M18b"), Message: &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
				Key:  &waCommon.MessageKey{RemoteJID: proto.String("15559990000@s.whatsapp.net"), ID: proto.String("T3"), FromMe: proto.Bool(true)},
				Text: proto.String("❤️"),
			}}},
			kind: event.KindMessageReaction,
			msg:  with(wantDM("M18b"), func(m *event.Message) { m.Type = event.TypeReaction }),
			reaction: &event.Reaction{TargetID: "T3", TargetChatID: "15550001111@s.whatsapp.net", TargetSender: "15550001111@s.whatsapp.net",
				Emoji: "❤️"},
		},
		{
			name: "edit, raw EditedMessage wrapper",
			evt: &events.Message{Info: dmInfo("M19"), Message: &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
				ProtocolMessage: &waE2E.ProtocolMessage{
					Key:           &waCommon.MessageKey{RemoteJID: proto.String(alicePN.String()), ID: proto.String("T3")},
					Type:          waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
					EditedMessage: &waE2E.Message{Conversation: proto.String("fixed typo")},
					TimestampMS:   proto.Int64(1740832246000),
				},
			}}}},
			kind: event.KindMessageEdited,
			msg:  with(wantDM("M19"), func(m *event.Message) { m.Type, m.Text = event.TypeEdit, "fixed typo" }),
			edit: &event.Edit{TargetID: "T3", Text: "fixed typo", Message: &event.Message{Type: event.TypeText, Text: "fixed typo"}, EditedAtMs: 1740832246000},
		},
		{
			name: "edit of a caption, unwrapped by whatsmeow",
			evt: func() *events.Message {
				pm := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
					Key:           &waCommon.MessageKey{RemoteJID: proto.String(group.String()), ID: proto.String("T4"), FromMe: proto.Bool(false)},
					Type:          waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
					EditedMessage: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("better caption")}},
				}}
				info := groupInfo("M20")
				info.Edit = types.EditAttributeMessageEdit
				return &events.Message{Info: info, IsEdit: true, Message: pm, RawMessage: &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: pm}}}
			}(),
			kind: event.KindMessageEdited,
			msg:  with(wantGroup("M20"), func(m *event.Message) { m.Type, m.Text = event.TypeEdit, "better caption" }),
			edit: &event.Edit{TargetID: "T4", Text: "better caption", Message: &event.Message{
				Type: event.TypeImage, Text: "better caption", HasMedia: true, Media: &event.Media{Caption: "better caption"},
			}},
		},
		{
			name: "revoke by sender, from the phone",
			evt: func() *events.Message {
				info := sentInfo("M21")
				info.Edit = types.EditAttributeSenderRevoke
				return &events.Message{Info: info, Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
					Key:  &waCommon.MessageKey{RemoteJID: proto.String(alicePN.String()), ID: proto.String("T5"), FromMe: proto.Bool(true)},
					Type: waE2E.ProtocolMessage_REVOKE.Enum(),
				}}}
			}(),
			kind:   event.KindMessageRevoked,
			msg:    with(wantSent("M21"), func(m *event.Message) { m.Type = event.TypeRevoke }),
			revoke: &event.Revoke{TargetID: "T5", By: "15550009999@s.whatsapp.net"},
		},
		{
			name: "admin revoke in group",
			evt: func() *events.Message {
				info := groupInfo("M22")
				info.Edit = types.EditAttributeAdminRevoke
				return &events.Message{Info: info, Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
					Key:  &waCommon.MessageKey{RemoteJID: proto.String(group.String()), ID: proto.String("T6"), Participant: proto.String("11111111111111@lid")},
					Type: waE2E.ProtocolMessage_REVOKE.Enum(),
				}}}
			}(),
			kind:   event.KindMessageRevoked,
			msg:    with(wantGroup("M22"), func(m *event.Message) { m.Type = event.TypeRevoke }),
			revoke: &event.Revoke{TargetID: "T6", TargetSender: "11111111111111@lid", By: "98765432101234@lid", Admin: true},
		},
		{
			name: "other protocol message",
			evt: &events.Message{Info: dmInfo("M23"), Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
				Type: waE2E.ProtocolMessage_EPHEMERAL_SETTING.Enum(), EphemeralExpiration: proto.Uint32(86400),
			}}},
			kind: event.KindMessageReceived,
			msg:  with(wantDM("M23"), func(m *event.Message) { m.Type = event.TypeProtocol }),
		},
		{
			name: "poll v1",
			evt: &events.Message{Info: groupInfo("M24"), Message: &waE2E.Message{PollCreationMessage: &waE2E.PollCreationMessage{
				Name: proto.String("Lunch?"), Options: pollOptions("Pizza", "Sushi"), SelectableOptionsCount: proto.Uint32(1),
			}}},
			kind: event.KindMessageReceived,
			msg: with(wantGroup("M24"), func(m *event.Message) {
				m.Type, m.Poll = event.TypePoll, wantPoll("Lunch?", 1, "Pizza", "Sushi")
			}),
		},
		{
			name: "poll v2",
			evt: &events.Message{Info: dmInfo("M25"), Message: &waE2E.Message{PollCreationMessageV2: &waE2E.PollCreationMessage{
				Name: proto.String("When?"), Options: pollOptions("Mon", "Tue", "Wed"),
			}}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M25"), func(m *event.Message) {
				m.Type, m.Poll = event.TypePoll, wantPoll("When?", 0, "Mon", "Tue", "Wed")
			}),
		},
		{
			name: "poll v3 with a reply",
			evt: &events.Message{Info: dmInfo("M26"), Message: &waE2E.Message{PollCreationMessageV3: &waE2E.PollCreationMessage{
				Name: proto.String("Ship it?"), Options: pollOptions("yes", "no"), SelectableOptionsCount: proto.Uint32(1),
				ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("Q2"), QuotedMessage: &waE2E.Message{
					ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("release notes")},
				}},
			}}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M26"), func(m *event.Message) {
				m.Type, m.Poll = event.TypePoll, wantPoll("Ship it?", 1, "yes", "no")
				m.Quoted = &event.Quoted{MessageID: "Q2", Type: event.TypeText, Text: "release notes"}
			}),
		},
		{
			name: "poll vote (encrypted)",
			evt: &events.Message{Info: groupInfo("M27"), Message: &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{
				PollCreationMessageKey: &waCommon.MessageKey{RemoteJID: proto.String(group.String()), ID: proto.String("M24"), Participant: proto.String("98765432101234@lid")},
				Vote:                   &waE2E.PollEncValue{EncPayload: []byte{9, 9, 9}, EncIV: []byte{7, 7}},
				SenderTimestampMS:      proto.Int64(1740832250000),
			}}},
			kind: event.KindMessageReceived,
			msg: with(wantGroup("M27"), func(m *event.Message) {
				m.Type = event.TypePollVote
				m.PollVote = &event.PollVote{
					PollMessageID: "M24", PollChatID: "120363025246125244@g.us", PollCreator: "98765432101234@lid",
					EncPayload: []byte{9, 9, 9}, EncIV: []byte{7, 7}, SenderTimestampMs: 1740832250000,
				}
			}),
		},
		{
			name: "ephemeral wrapper, raw form, forwarded",
			evt: &events.Message{Info: dmInfo("M28"), Message: &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
				ExtendedTextMessage: &waE2E.ExtendedTextMessage{
					Text:        proto.String("disappearing"),
					ContextInfo: &waE2E.ContextInfo{Expiration: proto.Uint32(604800), IsForwarded: proto.Bool(true), ForwardingScore: proto.Uint32(2)},
				},
			}}}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M28"), func(m *event.Message) {
				m.Type, m.Text, m.IsEphemeral, m.IsForwarded = event.TypeText, "disappearing", true, true
			}),
		},
		{
			name: "view-once v2 extension voice inside ephemeral",
			evt: &events.Message{Info: dmInfo("M29"), Message: &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
				ViewOnceMessageV2Extension: &waE2E.FutureProofMessage{Message: &waE2E.Message{AudioMessage: audioMsg(true)}},
			}}}},
			kind: event.KindMessageReceived,
			msg: with(wantDM("M29"), func(m *event.Message) {
				m.Type, m.HasMedia, m.IsEphemeral, m.IsViewOnce = event.TypeVoice, true, true, true
				m.Media = wantMedia(event.Media{Mimetype: "audio/ogg; codecs=opus", Size: 9000, DurationSeconds: 4, Voice: true})
			}),
		},
		{
			name: "sent from the phone, device-sent wrapper",
			evt: &events.Message{Info: sentInfo("M30"), Message: &waE2E.Message{DeviceSentMessage: &waE2E.DeviceSentMessage{
				DestinationJID: proto.String(alicePN.String()),
				Message:        &waE2E.Message{Conversation: proto.String("on it")},
			}}},
			kind: event.KindMessageSent,
			msg:  with(wantSent("M30"), func(m *event.Message) { m.Type, m.Text = event.TypeText, "on it" }),
		},
		{
			name: "status broadcast",
			evt: func() *events.Message {
				info := dmInfo("M31")
				info.Chat, info.IsGroup = types.StatusBroadcastJID, true
				return &events.Message{Info: info, Message: &waE2E.Message{ImageMessage: image("my day")}}
			}(),
			kind: event.KindMessageReceived,
			msg: with(wantDM("M31"), func(m *event.Message) {
				m.ChatID, m.ChatLID, m.ChatPN, m.IsStatus = "status@broadcast", "", "", true
				m.Type, m.Text, m.HasMedia = event.TypeImage, "my day", true
				m.Media = wantMedia(event.Media{Mimetype: "image/jpeg", Size: 48213, Caption: "my day", Width: 1280, Height: 960})
			}),
		},
		{
			name: "broadcast list",
			evt: func() *events.Message {
				info := dmInfo("M32")
				info.Chat, info.IsGroup = list, true
				return &events.Message{Info: info, Message: &waE2E.Message{Conversation: proto.String("news")}}
			}(),
			kind: event.KindMessageReceived,
			msg: with(wantDM("M32"), func(m *event.Message) {
				m.ChatID, m.ChatLID, m.ChatPN, m.IsBroadcast = "1740000000@broadcast", "", "", true
				m.Type, m.Text = event.TypeText, "news"
			}),
		},
		{
			name: "unknown content keeps raw",
			evt: &events.Message{Info: dmInfo("M33"), Message: &waE2E.Message{EventMessage: &waE2E.EventMessage{
				Name: proto.String("Launch party"),
			}}},
			kind: event.KindMessageReceived,
			msg:  with(wantDM("M33"), func(m *event.Message) { m.Type = event.TypeUnknown }),
		},
		{
			name: "history replay of an edited message",
			evt: &events.Message{
				Info: dmInfo("M34"), IsEdit: true,
				Message:      &waE2E.Message{Conversation: proto.String("final text")},
				SourceWebMsg: &waWeb.WebMessageInfo{Key: &waCommon.MessageKey{ID: proto.String("M34")}},
			},
			source: event.SourceHistory,
			kind:   event.KindMessageReceived,
			msg: with(wantDM("M34"), func(m *event.Message) {
				m.Type, m.Text, m.Edited = event.TypeText, "final text", true
			}),
		},
		{
			name: "history replay of a revoked message",
			evt: &events.Message{
				Info:         dmInfo("M35"),
				SourceWebMsg: &waWeb.WebMessageInfo{Key: &waCommon.MessageKey{ID: proto.String("M35")}, MessageStubType: waWeb.WebMessageInfo_REVOKE.Enum()},
			},
			source: event.SourceHistory,
			kind:   event.KindMessageReceived,
			msg:    with(wantDM("M35"), func(m *event.Message) { m.Type, m.Revoked = event.TypeUnknown, true }),
		},
	}
}

func TestNormalizeMessage(t *testing.T) {
	for _, tc := range messageCases() {
		t.Run(tc.name, func(t *testing.T) {
			n := Normalizer{AccountID: account, Source: tc.source}
			ev, err := n.Message(tc.evt)
			if err != nil {
				t.Fatalf("Message() error: %v", err)
			}
			if err := ev.Validate(); err != nil {
				t.Fatalf("invalid event: %v", err)
			}
			wantSource := tc.source
			if wantSource == "" {
				wantSource = event.SourcePhone
			}
			if ev.ID != account+":"+tc.evt.Info.ID || ev.Kind != tc.kind || ev.AccountID != account ||
				!ev.Timestamp.Equal(ts) || ev.ChatID != tc.msg.ChatID || ev.Source != wantSource {
				t.Errorf("envelope = {id %q kind %q account %q ts %v chat %q source %q}, want {id %q kind %q chat %q source %q}",
					ev.ID, ev.Kind, ev.AccountID, ev.Timestamp, ev.ChatID, ev.Source,
					account+":"+tc.evt.Info.ID, tc.kind, tc.msg.ChatID, wantSource)
			}

			raw := tc.evt.RawMessage
			if raw == nil {
				raw = tc.evt.Message
			}
			checkRaw(t, ev.Message.Raw, raw)

			got := *ev.Message
			got.Raw = nil
			if !reflect.DeepEqual(&got, tc.msg) {
				t.Errorf("message mismatch\ngot:  %s\nwant: %s", jsonOf(t, &got), jsonOf(t, tc.msg))
			}
			if !reflect.DeepEqual(ev.Reaction, tc.reaction) {
				t.Errorf("reaction = %s, want %s", jsonOf(t, ev.Reaction), jsonOf(t, tc.reaction))
			}
			if !reflect.DeepEqual(ev.Edit, tc.edit) {
				t.Errorf("edit = %s, want %s", jsonOf(t, ev.Edit), jsonOf(t, tc.edit))
			}
			if !reflect.DeepEqual(ev.Revoke, tc.revoke) {
				t.Errorf("revoke = %s, want %s", jsonOf(t, ev.Revoke), jsonOf(t, tc.revoke))
			}

			again, err := n.Message(tc.evt)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := jsonOf(t, ev), jsonOf(t, again); a != b {
				t.Errorf("normalising twice differs:\n%s\n%s", a, b)
			}
		})
	}
}

// checkRaw asserts that raw decodes to a message proto.Equal to want.
func checkRaw(t *testing.T, raw []byte, want *waE2E.Message) {
	t.Helper()
	if want == nil {
		if raw != nil {
			t.Errorf("raw = %x, want nil", raw)
		}
		return
	}
	var back waE2E.Message
	if err := proto.Unmarshal(raw, &back); err != nil {
		t.Fatalf("raw does not unmarshal: %v", err)
	}
	if !proto.Equal(&back, want) {
		t.Errorf("raw round trip differs:\ngot  %v\nwant %v", &back, want)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return string(b)
}

func TestNormalizeMessageConvenience(t *testing.T) {
	ev, err := NormalizeMessage(account, &events.Message{Info: dmInfo("C1"), Message: &waE2E.Message{Conversation: proto.String("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Source != event.SourcePhone || ev.Message.Text != "hi" || ev.ID != "acme:C1" {
		t.Errorf("unexpected event %s", jsonOf(t, ev))
	}
}

func TestNormalizeMessageRejects(t *testing.T) {
	n := Normalizer{AccountID: account}
	if _, err := n.Message(nil); err == nil {
		t.Error("nil event accepted")
	}
	if _, err := n.Message(&events.Message{Info: dmInfo("")}); err == nil {
		t.Error("message without id accepted")
	}
	empty := Normalizer{}
	if _, err := empty.Message(&events.Message{Info: dmInfo("X")}); err == nil {
		t.Error("normaliser without account accepted a message")
	}
}

// weirdMessages are malformed or empty inputs real traffic (or a bug
// upstream) might produce. None may panic, and all must still give an event.
func weirdMessages() map[string]*events.Message {
	deep := &waE2E.Message{Conversation: proto.String("bottom")}
	for range 100 {
		deep = &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{Message: deep}}
	}
	return map[string]*events.Message{
		"nil message":                  {Info: types.MessageInfo{ID: "W1"}},
		"empty message":                {Info: types.MessageInfo{ID: "W2"}, Message: &waE2E.Message{}},
		"raw only":                     {Info: types.MessageInfo{ID: "W3"}, RawMessage: &waE2E.Message{Conversation: proto.String("x")}},
		"empty image":                  {Info: types.MessageInfo{ID: "W4"}, Message: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{}}},
		"empty extended text":          {Info: types.MessageInfo{ID: "W5"}, Message: &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{ContextInfo: &waE2E.ContextInfo{}}}},
		"protocol without key":         {Info: types.MessageInfo{ID: "W6"}, Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum()}}},
		"revoke without key":           {Info: types.MessageInfo{ID: "W7"}, Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{}}},
		"reaction without key":         {Info: types.MessageInfo{ID: "W8"}, Message: &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{}}},
		"poll vote without anything":   {Info: types.MessageInfo{ID: "W9"}, Message: &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{}}},
		"contacts with nil entries":    {Info: types.MessageInfo{ID: "W10"}, Message: &waE2E.Message{ContactsArrayMessage: &waE2E.ContactsArrayMessage{Contacts: []*waE2E.ContactMessage{nil, {}}}}},
		"poll with nil options":        {Info: types.MessageInfo{ID: "W11"}, Message: &waE2E.Message{PollCreationMessage: &waE2E.PollCreationMessage{Options: []*waE2E.PollCreationMessage_Option{nil}}}},
		"empty wrappers":               {Info: types.MessageInfo{ID: "W12"}, Message: &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{}, ViewOnceMessage: &waE2E.FutureProofMessage{}}},
		"deeply nested wrappers":       {Info: types.MessageInfo{ID: "W13"}, Message: deep},
		"quote without quoted message": {Info: types.MessageInfo{ID: "W14"}, Message: &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("Q")}}}},
		"edit of nothing":              {Info: types.MessageInfo{ID: "W15"}, IsEdit: true, Message: &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{}}}},
		"empty jids with alts only":    {Info: types.MessageInfo{ID: "W16", MessageSource: types.MessageSource{SenderAlt: bobPN, RecipientAlt: aliceLID}}, Message: &waE2E.Message{Conversation: proto.String("")}},
		"device sent without message":  {Info: types.MessageInfo{ID: "W17"}, Message: &waE2E.Message{DeviceSentMessage: &waE2E.DeviceSentMessage{}}},
	}
}

func TestNormalizeWeirdInput(t *testing.T) {
	n := Normalizer{AccountID: account}
	for name, evt := range weirdMessages() {
		t.Run(name, func(t *testing.T) {
			ev, err := n.Message(evt)
			if err != nil {
				t.Fatalf("Message() error: %v", err)
			}
			if err := ev.Validate(); err != nil {
				t.Fatalf("invalid event: %v", err)
			}
			if ev.Message == nil || ev.Message.Type == "" {
				t.Fatalf("no message type: %s", jsonOf(t, ev))
			}
			raw := evt.RawMessage
			if raw == nil {
				raw = evt.Message
			}
			checkRaw(t, ev.Message.Raw, raw)
			jsonOf(t, ev)
		})
	}

	specific := map[string]event.MessageType{
		"nil message":            event.TypeUnknown,
		"empty message":          event.TypeUnknown,
		"raw only":               event.TypeText,
		"revoke without key":     event.TypeRevoke,
		"deeply nested wrappers": event.TypeUnknown, // past maxWrapperDepth: kept raw, not followed
	}
	for name, want := range specific {
		ev, err := n.Message(weirdMessages()[name])
		if err != nil {
			t.Fatal(err)
		}
		if ev.Message.Type != want {
			t.Errorf("%s: type %q, want %q", name, ev.Message.Type, want)
		}
	}
}

// FuzzNormalizeMessage feeds arbitrary protobuf bytes through normalisation.
// Its seeds are the table cases, so `go test` runs them as a regression test.
func FuzzNormalizeMessage(f *testing.F) {
	seed := func(m *waE2E.Message) {
		if m == nil {
			return
		}
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false, false)
		f.Add(b, true, true)
	}
	for _, tc := range messageCases() {
		seed(tc.evt.Message)
		seed(tc.evt.RawMessage)
	}
	for _, evt := range weirdMessages() {
		seed(evt.Message)
	}
	f.Add([]byte{}, false, false)

	f.Fuzz(func(t *testing.T, data []byte, fromMe, inGroup bool) {
		var m waE2E.Message
		if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(data, &m); err != nil {
			return
		}
		info := dmInfo("F1")
		if inGroup {
			info = groupInfo("F1")
		}
		info.IsFromMe = fromMe
		ev, err := NormalizeMessage(account, &events.Message{Info: info, Message: &m})
		if err != nil {
			t.Fatalf("Message() error: %v", err)
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("invalid event: %v", err)
		}
		if _, err := json.Marshal(ev); err != nil {
			t.Fatalf("event does not render: %v", err)
		}
		// Compare encodings rather than proto.Equal: a fuzzed NaN is never
		// proto.Equal to itself.
		var back waE2E.Message
		if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(ev.Message.Raw, &back); err != nil {
			t.Fatalf("raw does not unmarshal: %v", err)
		}
		opts := proto.MarshalOptions{Deterministic: true, AllowPartial: true}
		a, errA := opts.Marshal(&back)
		b, errB := opts.Marshal(&m)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Fatalf("raw does not round-trip (%v, %v)", errA, errB)
		}
	})
}

func TestNormalizeNonFiniteLocation(t *testing.T) {
	ev, err := NormalizeMessage(account, &events.Message{Info: dmInfo("NaN"), Message: &waE2E.Message{
		LiveLocationMessage: &waE2E.LiveLocationMessage{
			DegreesLatitude: proto.Float64(math.NaN()), DegreesLongitude: proto.Float64(math.Inf(1)),
			SpeedInMps: proto.Float32(float32(math.Inf(-1))),
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(ev); err != nil {
		t.Fatalf("event with a non-finite location does not render: %v", err)
	}
	if loc := ev.Message.Location; loc.Latitude != 0 || loc.Longitude != 0 || loc.SpeedMps != 0 {
		t.Errorf("non-finite values kept: %+v", loc)
	}
}

func TestNormalizeInvalidUTF8(t *testing.T) {
	bad := "caf\xe9 \xff"
	in := &events.Message{Info: dmInfo("U1"), Message: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String(bad)}}}
	ev, err := NormalizeMessage(account, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := "caf\uFFFD \uFFFD"; ev.Message.Text != want || ev.Message.Media.Caption != want {
		t.Errorf("text %q, caption %q, want %q", ev.Message.Text, ev.Message.Media.Caption, want)
	}
	checkRaw(t, ev.Message.Raw, in.Message) // the original bytes survive in raw

	n := Normalizer{AccountID: account, Now: fixedNow}
	g, err := n.GroupInfo(&events.GroupInfo{JID: group, Name: &types.GroupName{Name: bad}})
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(g.Group.Name) {
		t.Errorf("group name %q is not valid UTF-8", g.Group.Name)
	}
}

func TestApplyPollVote(t *testing.T) {
	ev, err := NormalizeMessage(account, messageCases()[indexOf(t, "poll vote (encrypted)")].evt)
	if err != nil {
		t.Fatal(err)
	}
	vote := &waE2E.PollVoteMessage{SelectedOptions: [][]byte{sha256Sum("Pizza")}}
	if err := ApplyPollVote(ev.Message, vote); err != nil {
		t.Fatal(err)
	}
	pv := ev.Message.PollVote
	if !pv.Decrypted || len(pv.SelectedOptions) != 1 || pv.SelectedOptions[0] != hexSHA("Pizza") {
		t.Errorf("poll vote after apply = %s", jsonOf(t, pv))
	}
	// The hashes match the poll's own option hashes, which is the point.
	poll, err := NormalizeMessage(account, messageCases()[indexOf(t, "poll v1")].evt)
	if err != nil {
		t.Fatal(err)
	}
	if poll.Message.Poll.Options[0].Hash != pv.SelectedOptions[0] {
		t.Errorf("vote hash %s does not match option hash %s", pv.SelectedOptions[0], poll.Message.Poll.Options[0].Hash)
	}
	if err := ApplyPollVote(&event.Message{}, vote); err == nil {
		t.Error("ApplyPollVote accepted a message that is not a vote")
	}
}

func sha256Sum(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

func indexOf(t *testing.T, name string) int {
	t.Helper()
	for i, tc := range messageCases() {
		if tc.name == name {
			return i
		}
	}
	t.Fatalf("no case %q", name)
	return -1
}

func TestReceipt(t *testing.T) {
	n := Normalizer{AccountID: account}
	aliceDevice := alicePN
	aliceDevice.Device = 3
	tests := []struct {
		name    string
		receipt events.Receipt
		want    []event.Status
		wantIDs []string
	}{
		{
			name: "delivered to a device in a DM",
			receipt: events.Receipt{
				MessageSource: types.MessageSource{Chat: alicePN, Sender: aliceDevice, SenderAlt: aliceLID},
				MessageIDs:    []string{"A1"}, Timestamp: ts, Type: types.ReceiptTypeDelivered,
			},
			want:    []event.Status{{MessageID: "A1", Status: event.StatusDelivered, From: "15550001111@s.whatsapp.net", FromPN: "15550001111@s.whatsapp.net", ChatID: "15550001111@s.whatsapp.net"}},
			wantIDs: []string{"acme:status:A1:delivered:15550001111@s.whatsapp.net"},
		},
		{
			name: "read in an LID group, batched, with duplicates",
			receipt: events.Receipt{
				MessageSource: types.MessageSource{Chat: group, Sender: bobLID, SenderAlt: bobPN, IsGroup: true},
				MessageIDs:    []string{"A2", "A3", "A2", ""}, Timestamp: ts, Type: types.ReceiptTypeRead,
			},
			want: []event.Status{
				{MessageID: "A2", Status: event.StatusRead, From: "98765432101234@lid", FromPN: "15550002222@s.whatsapp.net", ChatID: "120363025246125244@g.us"},
				{MessageID: "A3", Status: event.StatusRead, From: "98765432101234@lid", FromPN: "15550002222@s.whatsapp.net", ChatID: "120363025246125244@g.us"},
			},
			wantIDs: []string{"acme:status:A2:read:98765432101234@lid", "acme:status:A3:read:98765432101234@lid"},
		},
		{
			name: "read-self of someone's group message",
			receipt: events.Receipt{
				MessageSource: types.MessageSource{Chat: group, Sender: me, IsFromMe: true, IsGroup: true},
				MessageIDs:    []string{"A4"}, Timestamp: ts, Type: types.ReceiptTypeReadSelf, MessageSender: bobLID,
			},
			want:    []event.Status{{MessageID: "A4", Status: event.StatusRead, From: "15550009999@s.whatsapp.net", FromPN: "15550009999@s.whatsapp.net", ChatID: "120363025246125244@g.us", Self: true, MessageSender: "98765432101234@lid"}},
			wantIDs: []string{"acme:status:A4:read:15550009999@s.whatsapp.net"},
		},
		{
			name: "played",
			receipt: events.Receipt{
				MessageSource: types.MessageSource{Chat: alicePN, Sender: alicePN},
				MessageIDs:    []string{"A5"}, Timestamp: ts, Type: types.ReceiptTypePlayed,
			},
			want:    []event.Status{{MessageID: "A5", Status: event.StatusPlayed, From: "15550001111@s.whatsapp.net", FromPN: "15550001111@s.whatsapp.net", ChatID: "15550001111@s.whatsapp.net"}},
			wantIDs: []string{"acme:status:A5:played:15550001111@s.whatsapp.net"},
		},
		{
			name: "sender receipt from our own device is not progress",
			receipt: events.Receipt{
				MessageSource: types.MessageSource{Chat: alicePN, Sender: me},
				MessageIDs:    []string{"A6"}, Timestamp: ts, Type: types.ReceiptTypeSender,
			},
		},
		{
			name: "retry is not progress",
			receipt: events.Receipt{
				MessageSource: types.MessageSource{Chat: alicePN, Sender: alicePN},
				MessageIDs:    []string{"A7"}, Timestamp: ts, Type: types.ReceiptTypeRetry,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := n.Receipt(&tt.receipt)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != len(tt.want) {
				t.Fatalf("%d events, want %d: %s", len(evs), len(tt.want), jsonOf(t, evs))
			}
			for i, ev := range evs {
				if err := ev.Validate(); err != nil {
					t.Errorf("invalid event: %v", err)
				}
				if ev.ID != tt.wantIDs[i] || ev.Kind != event.KindMessageStatus || !ev.Timestamp.Equal(ts) || ev.ChatID != tt.want[i].ChatID {
					t.Errorf("event %d envelope: id %q kind %q ts %v chat %q", i, ev.ID, ev.Kind, ev.Timestamp, ev.ChatID)
				}
				if !reflect.DeepEqual(*ev.Status, tt.want[i]) {
					t.Errorf("status %d = %s, want %s", i, jsonOf(t, ev.Status), jsonOf(t, tt.want[i]))
				}
			}
		})
	}
	if _, err := n.Receipt(nil); err == nil {
		t.Error("nil receipt accepted")
	}
}

func TestServerAck(t *testing.T) {
	n := Normalizer{AccountID: account, Source: event.SourceAPI}
	ev, err := n.ServerAck(alicePN, "S1", ts)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	want := event.Status{MessageID: "S1", Status: event.StatusSent, ChatID: "15550001111@s.whatsapp.net"}
	if ev.ID != "acme:status:S1:server_ack" || ev.Source != event.SourceAPI || !reflect.DeepEqual(*ev.Status, want) {
		t.Errorf("server ack = %s", jsonOf(t, ev))
	}
	if _, err := n.ServerAck(alicePN, "", ts); err == nil {
		t.Error("server ack without message id accepted")
	}
}

func fixedNow() time.Time { return ts }

func TestPresence(t *testing.T) {
	n := Normalizer{AccountID: account, Now: fixedNow}
	seen := ts.Add(-time.Hour)
	tests := []struct {
		name string
		in   events.Presence
		want event.Presence
		id   string
	}{
		{"online", events.Presence{From: alicePN}, event.Presence{JID: "15550001111@s.whatsapp.net", Available: true},
			"acme:presence:15550001111@s.whatsapp.net:available:" + "1740832245000"},
		{"offline with last seen", events.Presence{From: aliceLID, Unavailable: true, LastSeen: seen},
			event.Presence{JID: "11111111111111@lid", LastSeen: &seen},
			"acme:presence:11111111111111@lid:unavailable:" + "1740832245000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := n.Presence(&tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.Validate(); err != nil {
				t.Fatal(err)
			}
			if ev.ID != tt.id || ev.Kind != event.KindPresenceUpdate || !ev.Timestamp.Equal(ts) {
				t.Errorf("envelope: id %q kind %q ts %v", ev.ID, ev.Kind, ev.Timestamp)
			}
			if !reflect.DeepEqual(*ev.Presence, tt.want) {
				t.Errorf("presence = %s, want %s", jsonOf(t, ev.Presence), jsonOf(t, tt.want))
			}
		})
	}
	if _, err := n.Presence(nil); err == nil {
		t.Error("nil presence accepted")
	}
}

func TestChatPresence(t *testing.T) {
	n := Normalizer{AccountID: account, Now: fixedNow}
	src := types.MessageSource{Chat: group, Sender: bobLID, SenderAlt: bobPN, IsGroup: true}
	tests := []struct {
		in   events.ChatPresence
		want event.TypingState
	}{
		{events.ChatPresence{MessageSource: src, State: types.ChatPresenceComposing}, event.TypingComposing},
		{events.ChatPresence{MessageSource: src, State: types.ChatPresenceComposing, Media: types.ChatPresenceMediaAudio}, event.TypingRecording},
		{events.ChatPresence{MessageSource: src, State: types.ChatPresencePaused}, event.TypingPaused},
	}
	for _, tt := range tests {
		t.Run(string(tt.want), func(t *testing.T) {
			ev, err := n.ChatPresence(&tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.Validate(); err != nil {
				t.Fatal(err)
			}
			want := event.Typing{ChatID: "120363025246125244@g.us", From: "98765432101234@lid", FromPN: "15550002222@s.whatsapp.net", State: tt.want}
			if !reflect.DeepEqual(*ev.Typing, want) || ev.Kind != event.KindChatTyping || ev.ChatID != want.ChatID {
				t.Errorf("typing = %s, want %s", jsonOf(t, ev), jsonOf(t, want))
			}
			if wantID := "acme:typing:120363025246125244@g.us:98765432101234@lid:" + string(tt.want) + ":1740832245000"; ev.ID != wantID {
				t.Errorf("id = %q, want %q", ev.ID, wantID)
			}
		})
	}
	if _, err := n.ChatPresence(&events.ChatPresence{MessageSource: src, State: "levitating"}); err == nil {
		t.Error("unknown chat presence state accepted")
	}
}

func TestGroupInfo(t *testing.T) {
	n := Normalizer{AccountID: account, Now: fixedNow}
	invite := "https://chat.whatsapp.com/abc"
	in := &events.GroupInfo{
		JID: group, Sender: &bobLID, SenderPN: &bobPN, Timestamp: ts,
		Name:      &types.GroupName{Name: "Ops"},
		Topic:     &types.GroupTopic{Topic: "Incidents only"},
		Announce:  &types.GroupAnnounce{IsAnnounce: false},
		Locked:    &types.GroupLocked{IsLocked: true},
		Ephemeral: &types.GroupEphemeral{IsEphemeral: true, DisappearingTimer: 86400},
		Join:      []types.JID{alicePN, {}}, Leave: []types.JID{aliceLID},
		Promote: []types.JID{bobLID}, Demote: []types.JID{bobPN},
		NewInviteLink: &invite, JoinReason: "invite",
	}
	ev, err := n.GroupInfo(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	f, tr, day := false, true, uint32(86400)
	want := event.GroupUpdate{
		JID: "120363025246125244@g.us", Actor: "98765432101234@lid", ActorPN: "15550002222@s.whatsapp.net",
		Name: "Ops", Topic: "Incidents only", Locked: &tr, Announce: &f, EphemeralSeconds: &day,
		InviteLink: invite, JoinReason: "invite",
		Added: []string{"15550001111@s.whatsapp.net"}, Removed: []string{"11111111111111@lid"},
		Promoted: []string{"98765432101234@lid"}, Demoted: []string{"15550002222@s.whatsapp.net"},
		ActorLID: "98765432101234@lid",
		Participants: []event.GroupParticipant{
			{JID: "15550001111@s.whatsapp.net", PN: "15550001111@s.whatsapp.net"},
			{JID: "11111111111111@lid", LID: "11111111111111@lid"},
			{JID: "98765432101234@lid", LID: "98765432101234@lid"},
			{JID: "15550002222@s.whatsapp.net", PN: "15550002222@s.whatsapp.net"},
		},
	}
	if !reflect.DeepEqual(*ev.Group, want) {
		t.Errorf("group = %s\nwant    %s", jsonOf(t, ev.Group), jsonOf(t, want))
	}
	if ev.Kind != event.KindGroupUpdate || ev.ChatID != want.JID || !ev.Timestamp.Equal(ts) || ev.ID != event.GroupEventID(account, ts, &want) {
		t.Errorf("envelope: %s", jsonOf(t, ev))
	}

	// A different change in the same second must get a different id.
	other, err := n.GroupInfo(&events.GroupInfo{JID: group, Timestamp: ts, Name: &types.GroupName{Name: "Ops 2"}})
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == ev.ID {
		t.Error("two changes in the same second share an id")
	}
	off, err := n.GroupInfo(&events.GroupInfo{JID: group, Ephemeral: &types.GroupEphemeral{IsEphemeral: false, DisappearingTimer: 99}})
	if err != nil {
		t.Fatal(err)
	}
	if off.Group.EphemeralSeconds == nil || *off.Group.EphemeralSeconds != 0 || !off.Timestamp.Equal(ts) {
		t.Errorf("turning disappearing messages off: %s", jsonOf(t, off))
	}
	if _, err := n.GroupInfo(nil); err == nil {
		t.Error("nil group info accepted")
	}
}

// TestGroupMembership: leaving and being removed come alike from
// WhatsApp; the actor tells them apart, and changes that concern the
// account itself (by phone number or LID) say so in Self.
func TestGroupMembership(t *testing.T) {
	myLID := types.NewJID("22222222222222", types.HiddenUserServer)
	n := Normalizer{AccountID: account, Now: fixedNow, Own: me, OwnLID: myLID}
	meDevice := me
	meDevice.Device = 3
	tests := []struct {
		name string
		in   events.GroupInfo
		want event.GroupUpdate
	}{
		{
			name: "a member leaves",
			in:   events.GroupInfo{JID: group, Sender: &alicePN, Leave: []types.JID{alicePN}},
			want: event.GroupUpdate{Actor: alicePN.String(), Left: []string{alicePN.String()},
				Participants: []event.GroupParticipant{{JID: alicePN.String(), PN: alicePN.String()}}},
		},
		{
			name: "an admin removes two, one named by LID",
			in:   events.GroupInfo{JID: group, Sender: &bobLID, SenderPN: &bobPN, Leave: []types.JID{alicePN, aliceLID}},
			want: event.GroupUpdate{Actor: bobLID.String(), ActorPN: bobPN.String(), ActorLID: bobLID.String(),
				Removed: []string{alicePN.String(), aliceLID.String()},
				Participants: []event.GroupParticipant{
					{JID: alicePN.String(), PN: alicePN.String()}, {JID: aliceLID.String(), LID: aliceLID.String()},
				}},
		},
		{
			name: "the account leaves (LID actor, phone-number participant)",
			in:   events.GroupInfo{JID: group, Sender: &myLID, Leave: []types.JID{meDevice}},
			want: event.GroupUpdate{Actor: myLID.String(), ActorLID: myLID.String(), Left: []string{me.String()}, Self: event.GroupSelfLeft,
				Participants: []event.GroupParticipant{{JID: me.String(), PN: me.String()}}},
		},
		{
			name: "the account is removed",
			in:   events.GroupInfo{JID: group, Sender: &bobPN, Leave: []types.JID{me}},
			want: event.GroupUpdate{Actor: bobPN.String(), Removed: []string{me.String()}, Self: event.GroupSelfRemoved,
				Participants: []event.GroupParticipant{{JID: me.String(), PN: me.String()}}},
		},
		{
			name: "the account is added by LID",
			in:   events.GroupInfo{JID: group, Sender: &bobPN, Join: []types.JID{myLID}},
			want: event.GroupUpdate{Actor: bobPN.String(), Added: []string{myLID.String()}, Self: event.GroupSelfAdded,
				Participants: []event.GroupParticipant{{JID: myLID.String(), LID: myLID.String()}}},
		},
		{
			name: "the account joins by link",
			in:   events.GroupInfo{JID: group, Sender: &me, Join: []types.JID{me}, JoinReason: "invite"},
			want: event.GroupUpdate{Actor: me.String(), Added: []string{me.String()}, JoinReason: "invite", Self: event.GroupSelfJoined,
				Participants: []event.GroupParticipant{{JID: me.String(), PN: me.String()}}},
		},
		{
			name: "join approval turned on",
			in:   events.GroupInfo{JID: group, Sender: &bobPN, MembershipApprovalMode: &types.GroupMembershipApprovalMode{IsJoinApprovalRequired: true}},
			want: event.GroupUpdate{Actor: bobPN.String(), JoinApproval: new(true)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Timestamp = ts
			ev, err := n.GroupInfo(&tt.in)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.JID = group.String()
			if !reflect.DeepEqual(*ev.Group, tt.want) {
				t.Errorf("group = %s\nwant    %s", jsonOf(t, ev.Group), jsonOf(t, tt.want))
			}
		})
	}
	// Without its own JIDs the normalizer cannot tell, and does not guess.
	plain := Normalizer{AccountID: account, Now: fixedNow}
	if ev, _ := plain.GroupInfo(&events.GroupInfo{JID: group, Sender: &bobPN, Leave: []types.JID{me}}); ev.Group.Self != "" {
		t.Errorf("self %q without own JIDs", ev.Group.Self)
	}
}

func TestJoinedGroup(t *testing.T) {
	n := Normalizer{AccountID: account, Now: fixedNow, Own: me}
	created := ts.Add(-time.Hour)
	in := &events.JoinedGroup{Type: "new", Sender: &bobLID, SenderPN: &bobPN, GroupInfo: types.GroupInfo{
		JID: group, OwnerJID: bobLID, OwnerPN: bobPN, GroupName: types.GroupName{Name: "Ops"}, GroupCreated: created,
		GroupTopic:                  types.GroupTopic{Topic: "Incidents"},
		GroupLocked:                 types.GroupLocked{IsLocked: true},
		GroupEphemeral:              types.GroupEphemeral{IsEphemeral: true, DisappearingTimer: 604800},
		GroupMembershipApprovalMode: types.GroupMembershipApprovalMode{IsJoinApprovalRequired: true},
		Participants: []types.GroupParticipant{
			{JID: bobLID, LID: bobLID, PhoneNumber: bobPN, IsAdmin: true, IsSuperAdmin: true},
			{JID: me, PhoneNumber: me},
			{JID: aliceLID, LID: aliceLID, IsAdmin: true},
			{JID: alicePN, PhoneNumber: alicePN, Error: 403}, // not added
		},
	}}
	ev, err := n.JoinedGroup(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	want := event.GroupUpdate{
		JID: group.String(), Actor: bobLID.String(), ActorLID: bobLID.String(), ActorPN: bobPN.String(), Self: event.GroupSelfAdded,
		Info: &event.GroupInfo{
			JID: group.String(), Name: "Ops", Topic: "Incidents", Owner: bobLID.String(), OwnerPN: bobPN.String(), CreatedAt: created,
			Locked: true, JoinApproval: true, EphemeralSeconds: 604800,
			Participants: []event.GroupParticipant{
				{JID: bobLID.String(), PN: bobPN.String(), LID: bobLID.String(), Role: event.GroupSuperAdmin},
				{JID: me.String(), PN: me.String(), Role: event.GroupMember},
				{JID: aliceLID.String(), LID: aliceLID.String(), Role: event.GroupAdmin},
			},
		},
	}
	if !reflect.DeepEqual(*ev.Group, want) {
		t.Errorf("group = %s\nwant    %s", jsonOf(t, ev.Group), jsonOf(t, want))
	}
	if !ev.Timestamp.Equal(created) || ev.ID != event.GroupEventID(account, created, &want) {
		t.Errorf("envelope: %s", jsonOf(t, ev))
	}
	in.Type, in.Reason = "", "invite"
	ev, err = n.JoinedGroup(in)
	if err != nil || ev.Group.Self != event.GroupSelfJoined || !ev.Timestamp.Equal(ts) {
		t.Errorf("joined by link: %s, %v", jsonOf(t, ev), err)
	}
	if _, err := n.JoinedGroup(nil); err == nil {
		t.Error("nil joined group accepted")
	}
}

func TestGroupPicture(t *testing.T) {
	n := Normalizer{AccountID: account, Now: fixedNow}
	ev, err := n.Picture(&events.Picture{JID: group, Author: bobLID, Timestamp: ts, PictureID: "1700000001"})
	if err != nil {
		t.Fatal(err)
	}
	want := event.GroupUpdate{JID: group.String(), Actor: bobLID.String(), ActorLID: bobLID.String(), PictureID: "1700000001"}
	if !reflect.DeepEqual(*ev.Group, want) || ev.Kind != event.KindGroupUpdate || !ev.Timestamp.Equal(ts) {
		t.Errorf("picture set: %s", jsonOf(t, ev))
	}
	ev, err = n.Picture(&events.Picture{JID: group, Author: bobPN, Timestamp: ts, Remove: true})
	if err != nil || !ev.Group.PictureRemoved || ev.Group.PictureID != "" || ev.Group.ActorPN != bobPN.String() {
		t.Errorf("picture removed: %s, %v", jsonOf(t, ev), err)
	}
	// A contact's profile picture is not a group event.
	if ev, err := n.Picture(&events.Picture{JID: alicePN, Author: alicePN, Timestamp: ts}); ev != nil || err != nil {
		t.Errorf("profile picture: %v, %v", ev, err)
	}
}

func TestHistorySync(t *testing.T) {
	n := Normalizer{AccountID: account, Now: fixedNow}
	conv := func(jid string, ids ...string) *waHistorySync.Conversation {
		c := &waHistorySync.Conversation{ID: proto.String(jid)}
		for _, id := range ids {
			c.Messages = append(c.Messages, &waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{
				Key: &waCommon.MessageKey{RemoteJID: proto.String(jid), ID: proto.String(id)},
			}})
		}
		return c
	}
	data := &waHistorySync.HistorySync{
		SyncType:   waHistorySync.HistorySync_RECENT.Enum(),
		ChunkOrder: proto.Uint32(2), Progress: proto.Uint32(45),
		Conversations: []*waHistorySync.Conversation{conv(alicePN.String(), "H1", "H2"), conv(group.String(), "H3"), {}},
	}
	ev, err := n.HistorySync(&events.HistorySync{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	want := event.HistorySync{Type: "recent", Progress: 45, ChunkOrder: 2, ConversationCount: 3, MessageCount: 3}
	if !reflect.DeepEqual(*ev.History, want) || ev.Kind != event.KindHistorySync || !ev.Timestamp.Equal(ts) {
		t.Errorf("history = %s, want %s", jsonOf(t, ev), jsonOf(t, want))
	}
	again, err := n.HistorySync(&events.HistorySync{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != ev.ID {
		t.Errorf("id not deterministic: %q vs %q", ev.ID, again.ID)
	}
	data.Conversations = data.Conversations[:1]
	fewer, err := n.HistorySync(&events.HistorySync{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if fewer.ID == ev.ID {
		t.Error("a chunk with other messages got the same id")
	}
	for _, in := range []*events.HistorySync{nil, {}} {
		if _, err := n.HistorySync(in); err == nil {
			t.Errorf("HistorySync(%v) accepted", in)
		}
	}
}
