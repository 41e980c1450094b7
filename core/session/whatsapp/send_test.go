package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// recordingSender is the send seam: it records what the driver put on the
// wire and answers like WhatsApp's server would.
type recordingSender struct {
	mu      sync.Mutex
	sent    []*waE2E.Message
	to      []types.JID
	ids     []string
	uploads [][]byte
	kinds   []whatsmeow.MediaType
	failErr error
}

func (r *recordingSender) SendMessage(_ context.Context, to types.JID, msg *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failErr != nil {
		return whatsmeow.SendResponse{}, r.failErr
	}
	r.sent = append(r.sent, msg)
	r.to = append(r.to, to)
	r.ids = append(r.ids, extra[0].ID)
	return whatsmeow.SendResponse{ID: extra[0].ID, Timestamp: sendNow()}, nil
}

func (r *recordingSender) Upload(_ context.Context, data []byte, mt whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.uploads = append(r.uploads, data)
	r.kinds = append(r.kinds, mt)
	return testUpload, nil
}

var testUpload = whatsmeow.UploadResponse{
	URL: "https://mmg.whatsapp.net/o1/v/t62/abc", DirectPath: "/o1/v/t62/abc",
	MediaKey: []byte("0123456789abcdef0123456789abcdef"), FileEncSHA256: []byte("enc-hash"), FileSHA256: []byte("plain-hash"), FileLength: 5,
}

func sendNow() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }

var ownJID = types.NewJID("15550009999", types.DefaultUserServer)

// sendSession is a Session whose wire is the recording seam.
func sendSession(t *testing.T) (*Session, *recordingSender, *[]*event.Event) {
	t.Helper()
	rec := &recordingSender{}
	var mu sync.Mutex
	var emitted []*event.Event
	d := &Driver{Devices: func(string) DeviceStore { return nil }}
	ss, err := d.Open(context.Background(), session.Account{ID: "acme"}, session.SinkFunc(func(_ context.Context, ev *event.Event) error {
		mu.Lock()
		defer mu.Unlock()
		emitted = append(emitted, ev)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := ss.(*Session)
	s.send, s.own, s.now = rec, ownJID, sendNow
	return s, rec, &emitted
}

func TestSendBuildsExactMessage(t *testing.T) {
	ms := sendNow().UnixMilli()
	media := func(kind session.MediaKind) *session.MediaSend {
		return &session.MediaSend{Kind: kind, Data: []byte("bytes"), Mimetype: "image/jpeg", Caption: "look", Filename: "a.pdf", Seconds: 7}
	}
	up := testUpload
	common := func() (*string, *string, []byte, *int64, *string, []byte, []byte, *uint64) {
		return proto.String(up.URL), proto.String(up.DirectPath), up.MediaKey, proto.Int64(sendNow().Unix()), proto.String("image/jpeg"), up.FileEncSHA256, up.FileSHA256, proto.Uint64(up.FileLength)
	}
	url, dp, key, kts, mime, enc, sha, size := common()

	tests := []struct {
		name     string
		req      session.SendRequest
		to       string
		want     *waE2E.Message
		wantType event.MessageType
		upload   whatsmeow.MediaType
	}{
		{"plain text", session.SendRequest{To: "+15551234567", Text: "hello"}, "15551234567@s.whatsapp.net",
			&waE2E.Message{Conversation: proto.String("hello")}, event.TypeText, ""},
		{"reply with mention", session.SendRequest{To: "120363025246125244@g.us", Text: "@15551234567 yes",
			ReplyTo:  &session.QuoteRef{MessageID: "Q1", Sender: "15551234567@s.whatsapp.net", Message: &event.Message{Text: "ready?"}},
			Mentions: []string{"15551234567@s.whatsapp.net"}}, "120363025246125244@g.us",
			&waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("@15551234567 yes"), ContextInfo: &waE2E.ContextInfo{
				StanzaID: proto.String("Q1"), Participant: proto.String("15551234567@s.whatsapp.net"),
				QuotedMessage: &waE2E.Message{Conversation: proto.String("ready?")}, MentionedJID: []string{"15551234567@s.whatsapp.net"}}}},
			event.TypeText, ""},
		{"image with caption", session.SendRequest{To: "15551234567", Media: media(session.MediaImage)}, "15551234567@s.whatsapp.net",
			&waE2E.Message{ImageMessage: &waE2E.ImageMessage{URL: url, DirectPath: dp, MediaKey: key, MediaKeyTimestamp: kts, Mimetype: mime,
				FileEncSHA256: enc, FileSHA256: sha, FileLength: size, Caption: proto.String("look")}}, event.TypeImage, whatsmeow.MediaImage},
		{"video", session.SendRequest{To: "15551234567", Media: media(session.MediaVideo)}, "15551234567@s.whatsapp.net",
			&waE2E.Message{VideoMessage: &waE2E.VideoMessage{URL: url, DirectPath: dp, MediaKey: key, MediaKeyTimestamp: kts, Mimetype: mime,
				FileEncSHA256: enc, FileSHA256: sha, FileLength: size, Caption: proto.String("look"), Seconds: proto.Uint32(7)}}, event.TypeVideo, whatsmeow.MediaVideo},
		{"gif", session.SendRequest{To: "15551234567", Media: media(session.MediaGIF)}, "15551234567@s.whatsapp.net",
			&waE2E.Message{VideoMessage: &waE2E.VideoMessage{URL: url, DirectPath: dp, MediaKey: key, MediaKeyTimestamp: kts, Mimetype: mime,
				FileEncSHA256: enc, FileSHA256: sha, FileLength: size, Caption: proto.String("look"), Seconds: proto.Uint32(7), GifPlayback: proto.Bool(true)}}, event.TypeGIF, whatsmeow.MediaVideo},
		{"voice note", session.SendRequest{To: "15551234567", Media: &session.MediaSend{Kind: session.MediaVoice, Data: []byte("ogg"), Mimetype: "audio/ogg; codecs=opus", Seconds: 3}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{AudioMessage: &waE2E.AudioMessage{URL: url, DirectPath: dp, MediaKey: key, MediaKeyTimestamp: kts, Mimetype: proto.String("audio/ogg; codecs=opus"),
				FileEncSHA256: enc, FileSHA256: sha, FileLength: size, Seconds: proto.Uint32(3), PTT: proto.Bool(true)}}, event.TypeVoice, whatsmeow.MediaAudio},
		{"audio", session.SendRequest{To: "15551234567", Media: &session.MediaSend{Kind: session.MediaAudio, Data: []byte("mp3"), Mimetype: "audio/mpeg"}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{AudioMessage: &waE2E.AudioMessage{URL: url, DirectPath: dp, MediaKey: key, MediaKeyTimestamp: kts, Mimetype: proto.String("audio/mpeg"),
				FileEncSHA256: enc, FileSHA256: sha, FileLength: size}}, event.TypeAudio, whatsmeow.MediaAudio},
		{"document", session.SendRequest{To: "15551234567", Media: &session.MediaSend{Kind: session.MediaDocument, Data: []byte("%PDF"), Mimetype: "application/pdf", Filename: "invoice.pdf", Caption: "your invoice"}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{URL: url, DirectPath: dp, MediaKey: key, MediaKeyTimestamp: kts, Mimetype: proto.String("application/pdf"),
				FileEncSHA256: enc, FileSHA256: sha, FileLength: size, FileName: proto.String("invoice.pdf"), Title: proto.String("invoice.pdf"), Caption: proto.String("your invoice")}}, event.TypeDocument, whatsmeow.MediaDocument},
		{"sticker", session.SendRequest{To: "15551234567", Media: &session.MediaSend{Kind: session.MediaSticker, Data: []byte("webp"), Mimetype: "image/webp"}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{StickerMessage: &waE2E.StickerMessage{URL: url, DirectPath: dp, MediaKey: key, MediaKeyTimestamp: kts, Mimetype: proto.String("image/webp"),
				FileEncSHA256: enc, FileSHA256: sha, FileLength: size}}, event.TypeSticker, whatsmeow.MediaImage},
		// The API sends captioned media that quotes and mentions: the context
		// rides on the media message itself.
		{"image reply with mention", session.SendRequest{To: "15551234567", Media: media(session.MediaImage),
			ReplyTo:  &session.QuoteRef{MessageID: "Q2", Sender: "15551234567@s.whatsapp.net", Message: &event.Message{Text: "which one?"}},
			Mentions: []string{"15551234567@s.whatsapp.net"}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{ImageMessage: &waE2E.ImageMessage{URL: url, DirectPath: dp, MediaKey: key, MediaKeyTimestamp: kts, Mimetype: mime,
				FileEncSHA256: enc, FileSHA256: sha, FileLength: size, Caption: proto.String("look"), ContextInfo: &waE2E.ContextInfo{
					StanzaID: proto.String("Q2"), Participant: proto.String("15551234567@s.whatsapp.net"),
					QuotedMessage: &waE2E.Message{Conversation: proto.String("which one?")}, MentionedJID: []string{"15551234567@s.whatsapp.net"}}}},
			event.TypeImage, whatsmeow.MediaImage},
		{"reply to own message", session.SendRequest{To: "15551234567", Text: "as I said", ReplyTo: &session.QuoteRef{MessageID: "Q3"}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("as I said"), ContextInfo: &waE2E.ContextInfo{
				StanzaID: proto.String("Q3"), Participant: proto.String(ownJID.String())}}},
			event.TypeText, ""},
		{"reaction removed in a 1:1 chat", session.SendRequest{To: "15551234567", Reaction: &session.ReactionSend{MessageID: "M5", FromMe: true, Emoji: ""}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: &waCommon.MessageKey{RemoteJID: proto.String("15551234567@s.whatsapp.net"), FromMe: proto.Bool(true), ID: proto.String("M5")},
				Text: proto.String(""), SenderTimestampMS: proto.Int64(ms)}}, event.TypeReaction, ""},
		{"reaction in group", session.SendRequest{To: "120363025246125244@g.us", Reaction: &session.ReactionSend{MessageID: "M1", Sender: "15551234567@s.whatsapp.net", Emoji: "👍"}}, "120363025246125244@g.us",
			&waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: &waCommon.MessageKey{RemoteJID: proto.String("120363025246125244@g.us"), FromMe: proto.Bool(false), ID: proto.String("M1"), Participant: proto.String("15551234567@s.whatsapp.net")},
				Text: proto.String("👍"), SenderTimestampMS: proto.Int64(ms)}}, event.TypeReaction, ""},
		{"location", session.SendRequest{To: "15551234567", Location: &event.Location{Latitude: 52.52, Longitude: 13.405, Name: "Office", Address: "Berlin"}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{LocationMessage: &waE2E.LocationMessage{DegreesLatitude: proto.Float64(52.52), DegreesLongitude: proto.Float64(13.405), Name: proto.String("Office"), Address: proto.String("Berlin")}}, event.TypeLocation, ""},
		{"contact", session.SendRequest{To: "15551234567", Contacts: []event.Contact{{DisplayName: "Ana", VCard: "BEGIN:VCARD\nFN:Ana\nEND:VCARD"}}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{ContactMessage: &waE2E.ContactMessage{DisplayName: proto.String("Ana"), Vcard: proto.String("BEGIN:VCARD\nFN:Ana\nEND:VCARD")}}, event.TypeContact, ""},
		{"contacts", session.SendRequest{To: "15551234567", Contacts: []event.Contact{{DisplayName: "Ana", VCard: "A"}, {DisplayName: "Bo", VCard: "B"}}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{ContactsArrayMessage: &waE2E.ContactsArrayMessage{DisplayName: proto.String("2 contacts"), Contacts: []*waE2E.ContactMessage{
				{DisplayName: proto.String("Ana"), Vcard: proto.String("A")}, {DisplayName: proto.String("Bo"), Vcard: proto.String("B")}}}}, event.TypeContacts, ""},
		{"edit", session.SendRequest{To: "15551234567", Edit: &session.EditSend{MessageID: "M2", Text: "fixed"}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
				Key:  &waCommon.MessageKey{FromMe: proto.Bool(true), ID: proto.String("M2"), RemoteJID: proto.String("15551234567@s.whatsapp.net")},
				Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), EditedMessage: &waE2E.Message{Conversation: proto.String("fixed")}, TimestampMS: proto.Int64(ms)}}}},
			event.TypeEdit, ""},
		{"revoke own", session.SendRequest{To: "15551234567", Revoke: &session.RevokeSend{MessageID: "M3"}}, "15551234567@s.whatsapp.net",
			&waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(),
				Key: &waCommon.MessageKey{RemoteJID: proto.String("15551234567@s.whatsapp.net"), FromMe: proto.Bool(true), ID: proto.String("M3")}}}, event.TypeRevoke, ""},
		{"admin revoke in group", session.SendRequest{To: "120363025246125244@g.us", Revoke: &session.RevokeSend{MessageID: "M4", Sender: "15551234567@s.whatsapp.net"}}, "120363025246125244@g.us",
			&waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(),
				Key: &waCommon.MessageKey{RemoteJID: proto.String("120363025246125244@g.us"), FromMe: proto.Bool(false), ID: proto.String("M4"), Participant: proto.String("15551234567@s.whatsapp.net")}}}, event.TypeRevoke, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec, emitted := sendSession(t)
			tt.req.ID = "3EB0TEST"
			tt.req.Source = event.SourceRule
			res, err := s.Send(context.Background(), &tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.sent) != 1 {
				t.Fatalf("sent %d messages", len(rec.sent))
			}
			if !proto.Equal(tt.want, rec.sent[0]) {
				t.Fatalf("wire message differs:\nwant %s\ngot  %s", prototext.Format(tt.want), prototext.Format(rec.sent[0]))
			}
			if rec.to[0].String() != tt.to || rec.ids[0] != "3EB0TEST" || res.MessageID != "3EB0TEST" {
				t.Fatalf("sent to %s id %s (result %s)", rec.to[0], rec.ids[0], res.MessageID)
			}
			if tt.upload != "" && (len(rec.kinds) != 1 || rec.kinds[0] != tt.upload || string(rec.uploads[0]) != string(tt.req.Media.Data)) {
				t.Fatalf("uploads %v %q, want one %s", rec.kinds, rec.uploads, tt.upload)
			}
			if tt.upload == "" && len(rec.uploads) != 0 {
				t.Fatalf("uploaded for a message without media")
			}
			// The stored rendering: the sent message, from us, with the
			// caller's source, then the server ack.
			if len(*emitted) != 2 {
				t.Fatalf("emitted %d events, want message + server ack", len(*emitted))
			}
			ev, ack := (*emitted)[0], (*emitted)[1]
			if ev.Message == nil || ev.Message.Type != tt.wantType || !ev.Message.FromMe || ev.Source != event.SourceRule || ev.Message.ChatID != tt.to || ev.Message.From != ownJID.String() {
				t.Fatalf("sent event: %+v / %+v", ev, ev.Message)
			}
			var raw waE2E.Message
			if err := proto.Unmarshal(ev.Message.Raw, &raw); err != nil || !proto.Equal(&raw, rec.sent[0]) {
				t.Fatalf("raw of the stored message is not what was sent (%v)", err)
			}
			if ack.Kind != event.KindMessageStatus || ack.Status.Status != event.StatusSent || ack.Status.MessageID != "3EB0TEST" {
				t.Fatalf("ack event: %+v", ack)
			}
		})
	}
}

func TestSendRejectsBadRequests(t *testing.T) {
	tests := []struct {
		name string
		req  session.SendRequest
	}{
		{"nothing to send", session.SendRequest{To: "15551234567"}},
		{"two contents", session.SendRequest{To: "15551234567", Text: "a", Location: &event.Location{}}},
		{"bad recipient", session.SendRequest{To: "not a number", Text: "a"}},
		{"bad JID", session.SendRequest{To: "@s.whatsapp.net", Text: "a"}},
		{"empty media", session.SendRequest{To: "15551234567", Media: &session.MediaSend{Kind: session.MediaImage, Mimetype: "image/png"}}},
		{"media without mimetype", session.SendRequest{To: "15551234567", Media: &session.MediaSend{Kind: session.MediaImage, Data: []byte("x")}}},
		{"unknown media kind", session.SendRequest{To: "15551234567", Media: &session.MediaSend{Kind: "hologram", Data: []byte("x"), Mimetype: "x/y"}}},
		{"caption on a sticker", session.SendRequest{To: "15551234567", Media: &session.MediaSend{Kind: session.MediaSticker, Data: []byte("x"), Mimetype: "image/webp", Caption: "no"}}},
		{"poll with one option", session.SendRequest{To: "15551234567", Poll: &session.PollSend{Name: "?", Options: []string{"a"}}}},
		{"poll with 13 options", session.SendRequest{To: "15551234567", Poll: &session.PollSend{Name: "?", Options: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13"}}}},
		{"poll with a repeated option", session.SendRequest{To: "15551234567", Poll: &session.PollSend{Name: "?", Options: []string{"a", "a"}}}},
		{"poll without a question", session.SendRequest{To: "15551234567", Poll: &session.PollSend{Options: []string{"a", "b"}}}},
		{"poll allowing more choices than options", session.SendRequest{To: "15551234567", Poll: &session.PollSend{Name: "?", Options: []string{"a", "b"}, SelectableCount: 3}}},
		{"poll and text", session.SendRequest{To: "15551234567", Text: "x", Poll: &session.PollSend{Name: "?", Options: []string{"a", "b"}}}},
		{"broadcast list", session.SendRequest{To: "1740000000@broadcast", Text: "x"}},
		{"status to chosen contacts", session.SendRequest{To: "status@broadcast", Text: "x", StatusRecipients: []string{"15551234567@s.whatsapp.net"}}},
		{"status recipients on a chat", session.SendRequest{To: "15551234567", Text: "x", StatusRecipients: []string{"15551234568@s.whatsapp.net"}}},
		{"mention-all in a chat", session.SendRequest{To: "15551234567", Text: "x", MentionAll: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec, emitted := sendSession(t)
			_, err := s.Send(context.Background(), &tt.req)
			if !errors.Is(err, session.ErrInvalidRequest) {
				t.Fatalf("got %v, want ErrInvalidRequest", err)
			}
			if len(rec.sent) != 0 || len(*emitted) != 0 {
				t.Fatal("a refused request reached the wire or the store")
			}
		})
	}
}

// TestSendPoll: a poll goes out as whatsmeow builds it, with a fresh
// message secret (which whatsmeow's SendMessage stores for the votes), and
// is stored with its options' hashes.
func TestSendPoll(t *testing.T) {
	s, rec, emitted := sendSession(t)
	res, err := s.Send(context.Background(), &session.SendRequest{To: "120363025246125244@g.us", ID: "3EB0POLL",
		Poll: &session.PollSend{Name: "Lunch?", Options: []string{"pizza", "sushi"}, SelectableCount: 1}})
	if err != nil {
		t.Fatal(err)
	}
	msg := rec.sent[0]
	pc := msg.GetPollCreationMessage()
	if pc.GetName() != "Lunch?" || len(pc.GetOptions()) != 2 || pc.GetOptions()[1].GetOptionName() != "sushi" || pc.GetSelectableOptionsCount() != 1 {
		t.Fatalf("poll %v", msg)
	}
	if len(msg.GetMessageContextInfo().GetMessageSecret()) != 32 {
		t.Fatalf("poll without a 32-byte message secret: %v", msg)
	}
	p := (*emitted)[0].Message.Poll
	want := whatsmeow.HashPollOptions([]string{"pizza", "sushi"})
	if res.MessageID != "3EB0POLL" || p == nil || len(p.Options) != 2 || p.Options[0].Hash != fmt.Sprintf("%x", want[0]) || p.SelectableCount != 1 {
		t.Fatalf("stored poll %+v", p)
	}
	again, err := s.Send(context.Background(), &session.SendRequest{To: "15551234567", Poll: &session.PollSend{Name: "Again?", Options: []string{"y", "n"}}})
	if err != nil {
		t.Fatal(err)
	}
	if again.MessageID == "" || string(rec.sent[1].GetMessageContextInfo().GetMessageSecret()) == string(msg.GetMessageContextInfo().GetMessageSecret()) {
		t.Fatal("two polls share a message secret")
	}
}

func TestSendWhenNotConnected(t *testing.T) {
	s, _, _ := sendSession(t)
	s.own = types.EmptyJID
	if _, err := s.Send(context.Background(), &session.SendRequest{To: "15551234567", Text: "x"}); !errors.Is(err, session.ErrWrongState) {
		t.Fatalf("got %v, want ErrWrongState", err)
	}
}

func TestSendFailureStoresNothing(t *testing.T) {
	s, rec, emitted := sendSession(t)
	rec.failErr = errors.New("server said no")
	if _, err := s.Send(context.Background(), &session.SendRequest{To: "15551234567", Text: "x"}); err == nil {
		t.Fatal("send error swallowed")
	}
	if len(*emitted) != 0 {
		t.Fatal("a message WhatsApp refused was stored as sent")
	}
}

func TestParseRecipient(t *testing.T) {
	for in, want := range map[string]string{
		"+15551234567":                   "15551234567@s.whatsapp.net",
		"15551234567":                    "15551234567@s.whatsapp.net",
		"15551234567@s.whatsapp.net":     "15551234567@s.whatsapp.net",
		"15551234567:12@s.whatsapp.net":  "15551234567@s.whatsapp.net",
		"120363025246125244@g.us":        "120363025246125244@g.us",
		"98765432101234@lid":             "98765432101234@lid",
		" 15551234567 ":                  "15551234567@s.whatsapp.net",
		"":                               "",
		"12345":                          "",
		"+1 555 123":                     "",
		"abc@":                           "",
		"1555123456789012345":            "",
		"hello":                          "",
		"@g.us":                          "",
		"15551234567@s.whatsapp.net:bad": "",
	} {
		got, err := ParseRecipient(in)
		if want == "" {
			if err == nil {
				t.Errorf("%q: accepted as %s", in, got)
			}
			continue
		}
		if err != nil || got.String() != want {
			t.Errorf("%q: got %s, %v; want %s", in, got, err, want)
		}
	}
}
