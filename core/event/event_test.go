package event

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json golden files")

// at is millisecond-precise so that BSON (which stores milliseconds) round-trips it.
var at = time.Date(2025, 3, 1, 12, 30, 45, 123_000_000, time.UTC)

func ptr[T any](v T) *T { return &v }

// goldenEvents are representative events, one file each under testdata/.
// The files are the JSON contract webhooks, rules and plugins see: review
// any diff in them as an API change.
func goldenEvents() []struct {
	name string
	ev   *Event
} {
	return []struct {
		name string
		ev   *Event
	}{
		{"message_received_group_reply", &Event{
			ID: MessageEventID("acme", "3EB0C431C26A1916E"), Kind: KindMessageReceived, AccountID: "acme",
			Timestamp: at, ChatID: "120363025246125244@g.us", Source: SourcePhone,
			Message: &Message{
				AccountID: "acme", MessageID: "3EB0C431C26A1916E", ChatID: "120363025246125244@g.us",
				From: "98765432101234@lid", Timestamp: at.Unix(), Type: TypeText, Text: "@15550001111 see https://example.com",
				FromLID: "98765432101234@lid", FromPN: "15550002222@s.whatsapp.net", PushName: "Ana",
				Quoted:      &Quoted{MessageID: "3EB0FFEE", Participant: "15550001111@s.whatsapp.net", Type: TypeText, Text: "Where is the report?"},
				Mentions:    []string{"15550001111@s.whatsapp.net"},
				LinkPreview: &LinkPreview{URL: "https://example.com", Title: "Example", Description: "An example page"},
				IsGroup:     true,
				Raw:         []byte{0x0a, 0x05, 'H', 'e', 'l', 'l', 'o'},
			},
			Tags:        []string{"support"},
			Annotations: map[string]string{"rule": "route.js"},
		}},
		{"message_sent_image", &Event{
			ID: MessageEventID("acme", "3EB0IMG"), Kind: KindMessageSent, AccountID: "acme",
			Timestamp: at, ChatID: "15550001111@s.whatsapp.net", Source: SourcePhone,
			Message: &Message{
				AccountID: "acme", MessageID: "3EB0IMG", ChatID: "15550001111@s.whatsapp.net",
				From: "15550009999@s.whatsapp.net", FromMe: true, Timestamp: at.Unix(), Type: TypeImage,
				Text: "the receipt", HasMedia: true, ChatPN: "15550001111@s.whatsapp.net", ChatLID: "11111111111111@lid",
				FromPN: "15550009999@s.whatsapp.net",
				Media: &Media{
					Mimetype: "image/jpeg", Size: 48213,
					SHA256:        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
					FileEncSHA256: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
					MediaKey:      []byte{1, 2, 3, 4}, MediaKeyTimestamp: 1740832245,
					DirectPath: "/v/t62.7118-24/123", URL: "https://mmg.whatsapp.net/v/t62.7118-24/123",
					Caption: "the receipt", Width: 1280, Height: 960,
				},
				IsEphemeral: true, IsViewOnce: true,
			},
		}},
		{"message_status_read", &Event{
			ID: StatusEventID("acme", "3EB0IMG", StatusRead, "15550001111@s.whatsapp.net"), Kind: KindMessageStatus,
			AccountID: "acme", Timestamp: at, ChatID: "15550001111@s.whatsapp.net", Source: SourcePhone,
			Status: &Status{MessageID: "3EB0IMG", Status: StatusRead, From: "15550001111@s.whatsapp.net", ChatID: "15550001111@s.whatsapp.net"},
		}},
		{"message_reaction_removed", &Event{
			ID: MessageEventID("acme", "3EB0REACT"), Kind: KindMessageReaction, AccountID: "acme",
			Timestamp: at, ChatID: "15550001111@s.whatsapp.net", Source: SourcePhone,
			Message: &Message{
				AccountID: "acme", MessageID: "3EB0REACT", ChatID: "15550001111@s.whatsapp.net",
				From: "15550001111@s.whatsapp.net", Timestamp: at.Unix(), Type: TypeReaction,
			},
			Reaction: &Reaction{TargetID: "3EB0IMG", TargetChatID: "15550001111@s.whatsapp.net", TargetFromMe: true, Emoji: "", Removed: true},
		}},
		{"message_edited", &Event{
			ID: MessageEventID("acme", "3EB0EDIT"), Kind: KindMessageEdited, AccountID: "acme",
			Timestamp: at, ChatID: "15550001111@s.whatsapp.net", Source: SourcePhone,
			Message: &Message{
				AccountID: "acme", MessageID: "3EB0EDIT", ChatID: "15550001111@s.whatsapp.net",
				From: "15550001111@s.whatsapp.net", Timestamp: at.Unix(), Type: TypeEdit, Text: "fixed typo",
			},
			Edit: &Edit{TargetID: "3EB0ORIG", Text: "fixed typo", Message: &Message{Type: TypeText, Text: "fixed typo"}, EditedAtMs: at.UnixMilli()},
		}},
		{"account_qr", &Event{
			ID: QREventID("acme", "2@Jk1xzQ,pYh3,Xb0"), Kind: KindAccountQR, AccountID: "acme",
			Timestamp: at, Source: SourcePhone,
			Account: &AccountState{State: AccountPairing, QRCode: "2@Jk1xzQ,pYh3,Xb0", ExpiresAt: ptr(at.Add(60 * time.Second))},
		}},
		{"group_update", &Event{
			ID: GroupEventID("acme", at, &GroupUpdate{JID: "120363025246125244@g.us"}), Kind: KindGroupUpdate, AccountID: "acme",
			Timestamp: at, ChatID: "120363025246125244@g.us", Source: SourcePhone,
			Group: &GroupUpdate{
				JID: "120363025246125244@g.us", Actor: "98765432101234@lid", ActorPN: "15550002222@s.whatsapp.net",
				Name: "Ops", Announce: ptr(false), EphemeralSeconds: ptr(uint32(86400)),
				Added: []string{"15550003333@s.whatsapp.net"}, Promoted: []string{"15550002222@s.whatsapp.net"},
			},
		}},
		{"history_sync", &Event{
			ID:   HistoryEventID("acme", &HistorySync{Type: "recent", ChunkOrder: 3, Progress: 60}, []string{"a", "b"}),
			Kind: KindHistorySync, AccountID: "acme", Timestamp: at, Source: SourceHistory,
			History: &HistorySync{Type: "recent", Progress: 60, ChunkOrder: 3, ConversationCount: 1, MessageCount: 2},
		}},
	}
}

func TestGoldenJSON(t *testing.T) {
	for _, tc := range goldenEvents() {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.ev.Validate(); err != nil {
				t.Fatalf("golden event is invalid: %v", err)
			}
			got, err := json.MarshalIndent(tc.ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", tc.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendering (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
			}

			var back Event
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatalf("decode %s: %v", path, err)
			}
			if !reflect.DeepEqual(&back, tc.ev) {
				t.Errorf("JSON round trip changed the event:\ngot  %+v\nwant %+v", back, *tc.ev)
			}
		})
	}
}

func TestBSONRoundTrip(t *testing.T) {
	for _, tc := range goldenEvents() {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := bson.Marshal(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			var back Event
			if err := bson.Unmarshal(doc, &back); err != nil {
				t.Fatal(err)
			}
			// Equal rather than DeepEqual: the BSON decoder may attach a location.
			if !back.Timestamp.Equal(tc.ev.Timestamp) {
				t.Errorf("timestamp %v, want %v", back.Timestamp, tc.ev.Timestamp)
			}
			back.Timestamp = tc.ev.Timestamp
			if back.Account != nil && back.Account.ExpiresAt != nil {
				back.Account.ExpiresAt = tc.ev.Account.ExpiresAt
			}
			if !reflect.DeepEqual(&back, tc.ev) {
				t.Errorf("BSON round trip changed the event:\ngot  %+v\nwant %+v", back, *tc.ev)
			}
			if tc.ev.Message != nil && tc.ev.Message.Raw != nil {
				v, err := bson.Raw(doc).LookupErr("message", "raw")
				if err != nil {
					t.Fatal(err)
				}
				if v.Type != bson.TypeBinary {
					t.Errorf("message.raw stored as %v, want binary", v.Type)
				}
			}
		})
	}
}

func TestJSONRendersRawAsBase64(t *testing.T) {
	b, err := json.Marshal(&Message{Raw: []byte("Hello")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"raw":"SGVsbG8="`)) {
		t.Errorf("raw not rendered as base64: %s", b)
	}
}

func TestReactionEmojiAlwaysRendered(t *testing.T) {
	b, err := json.Marshal(&Reaction{TargetID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"emoji":""`)) {
		t.Errorf("an empty emoji (removal) must be explicit: %s", b)
	}
}

func TestValidate(t *testing.T) {
	valid := &Event{ID: "a:1", Kind: KindMessageReceived, AccountID: "a", Source: SourcePhone, Message: &Message{}}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid event: %v", err)
	}
	tests := map[string]func(e *Event){
		"unknown kind":    func(e *Event) { e.Kind = "message.exploded" },
		"empty id":        func(e *Event) { e.ID = "" },
		"empty account":   func(e *Event) { e.AccountID = "" },
		"unknown source":  func(e *Event) { e.Source = "carrier-pigeon" },
		"missing payload": func(e *Event) { e.Message = nil },
		"wrong payload":   func(e *Event) { e.Kind = KindMessageStatus },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			e := *valid
			mutate(&e)
			if err := e.Validate(); err == nil {
				t.Error("Validate() = nil, want error")
			}
		})
	}
	var nilEvent *Event
	if nilEvent.Validate() == nil {
		t.Error("nil event validated")
	}
}

func TestNewAccountEvent(t *testing.T) {
	qr, err := NewAccountEvent(KindAccountQR, "acme", at, AccountState{State: AccountPairing, QRCode: "2@code"})
	if err != nil {
		t.Fatal(err)
	}
	if qr.ID != QREventID("acme", "2@code") || qr.Account.QRCode != "2@code" || qr.Kind != KindAccountQR {
		t.Errorf("unexpected QR event %+v", qr)
	}
	conn, err := NewAccountEvent(KindAccountConnected, "acme", at, AccountState{State: AccountConnected, JID: "1@s.whatsapp.net"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "acme:connected:" + "1740832245123"; conn.ID != want {
		t.Errorf("connected id = %q, want %q", conn.ID, want)
	}
	if _, err := NewAccountEvent(KindAccountQR, "acme", at, AccountState{}); err == nil {
		t.Error("QR event without a code accepted")
	}
	if _, err := NewAccountEvent(KindMessageReceived, "acme", at, AccountState{}); err == nil {
		t.Error("non-account kind accepted")
	}
	if _, err := NewAccountEvent(KindAccountLoggedOut, "", at, AccountState{}); err == nil {
		t.Error("empty account accepted")
	}
}
