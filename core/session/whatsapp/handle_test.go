package whatsapp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// sinkRecorder stores events in memory, or refuses them like a database
// that is down.
type sinkRecorder struct {
	mu     sync.Mutex
	events []*event.Event
	fail   error
}

func (r *sinkRecorder) Emit(_ context.Context, ev *event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, ev)
	return nil
}

func (r *sinkRecorder) kinds() []event.Kind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []event.Kind
	for _, ev := range r.events {
		ks = append(ks, ev.Kind)
	}
	return ks
}

func handlerSession(t *testing.T, sink session.Sink) *Session {
	t.Helper()
	d := &Driver{Devices: func(string) DeviceStore { return nil }}
	ss, err := d.Open(context.Background(), session.Account{ID: "acme"}, sink)
	if err != nil {
		t.Fatal(err)
	}
	s := ss.(*Session)
	own := types.NewJID("15550009999", types.DefaultUserServer)
	own.Device = 7
	s.cli = whatsmeow.NewClient(&store.Device{ID: &own, PushName: "Acme"}, nil)
	return s
}

func inbound(id, text string) *events.Message {
	alice := types.NewJID("15551234567", types.DefaultUserServer)
	return &events.Message{
		Info:    types.MessageInfo{MessageSource: types.MessageSource{Chat: alice, Sender: alice}, ID: id, Timestamp: time.Unix(1764000000, 0)},
		Message: &waE2E.Message{Conversation: proto.String(text)},
	}
}

// TestHandlerSuccessGatesTheAck: whatsmeow acks a message only when the
// handler reports success, so a store failure must report failure.
func TestHandlerSuccessGatesTheAck(t *testing.T) {
	sink := &sinkRecorder{fail: errors.New("database down")}
	s := handlerSession(t, sink)
	if s.handle(inbound("M1", "hi")) {
		t.Fatal("handler reported success for a message that was not stored: WhatsApp would not redeliver it")
	}
	sink.fail = nil
	if !s.handle(inbound("M1", "hi")) {
		t.Fatal("handler reported failure for a stored message")
	}
	if got := sink.kinds(); len(got) != 1 || got[0] != event.KindMessageReceived || sink.events[0].ID != "acme:M1" {
		t.Fatalf("stored %v", got)
	}
}

func TestHandlerMapsConnectionEvents(t *testing.T) {
	tests := []struct {
		name   string
		evt    any
		kind   event.Kind
		reason string
	}{
		{"connected", &events.Connected{}, event.KindAccountConnected, ""},
		{"logged out from phone", &events.LoggedOut{Reason: events.ConnectFailureLoggedOut}, event.KindAccountLoggedOut, "logged out from the phone"},
		{"stream replaced", &events.StreamReplaced{}, event.KindAccountDisconnected, "stream replaced"},
		{"outdated client", &events.ClientOutdated{}, event.KindAccountDisconnected, "client version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &sinkRecorder{}
			s := handlerSession(t, sink)
			s.handle(tt.evt)
			if len(sink.events) != 1 || sink.events[0].Kind != tt.kind {
				t.Fatalf("emitted %v, want one %s", sink.kinds(), tt.kind)
			}
			acc := sink.events[0].Account
			if tt.reason != "" && (acc == nil || !strings.Contains(acc.Reason, tt.reason)) {
				t.Fatalf("reason %+v lacks %q", acc, tt.reason)
			}
			if tt.kind == event.KindAccountConnected && (acc.JID != "15550009999@s.whatsapp.net" || acc.PushName != "Acme") {
				t.Fatalf("connected event without identity: %+v", acc)
			}
		})
	}
}

func TestHandlerStoresReceipts(t *testing.T) {
	sink := &sinkRecorder{}
	s := handlerSession(t, sink)
	alice := types.NewJID("15551234567", types.DefaultUserServer)
	ok := s.handle(&events.Receipt{
		MessageSource: types.MessageSource{Chat: alice, Sender: alice},
		MessageIDs:    []types.MessageID{"A", "B"},
		Timestamp:     time.Unix(1764000000, 0),
		Type:          types.ReceiptTypeRead,
	})
	if !ok || len(sink.events) != 2 || sink.events[0].Status.Status != event.StatusRead || sink.events[1].Status.MessageID != "B" {
		t.Fatalf("receipt stored as %v", sink.kinds())
	}
}

// TestHandlerStoresHistoryAsHistory: a history sync's messages are stored
// with source history, then its progress is reported; one failed write
// withholds the ack of the whole sync.
func TestHandlerStoresHistoryAsHistory(t *testing.T) {
	sink := &sinkRecorder{}
	s := handlerSession(t, sink)
	hist := &events.HistorySync{Data: &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_RECENT.Enum(),
		Progress: proto.Uint32(40),
		Conversations: []*waHistorySync.Conversation{{
			ID: proto.String("15551234567@s.whatsapp.net"),
			Messages: []*waHistorySync.HistorySyncMsg{
				{Message: &waWeb.WebMessageInfo{Key: webKey("H1", false), MessageTimestamp: proto.Uint64(1764000000), Message: &waE2E.Message{Conversation: proto.String("old one")}}},
				{Message: &waWeb.WebMessageInfo{Key: webKey("H2", true), MessageTimestamp: proto.Uint64(1764000100), Message: &waE2E.Message{Conversation: proto.String("my old reply")}}},
			},
		}},
	}}
	if !s.handle(hist) {
		t.Fatal("history sync reported failure")
	}
	got := sink.kinds()
	if len(got) != 3 || got[0] != event.KindMessageReceived || got[1] != event.KindMessageSent || got[2] != event.KindHistorySync {
		t.Fatalf("stored %v", got)
	}
	for _, ev := range sink.events[:2] {
		if ev.Source != event.SourceHistory {
			t.Fatalf("history message stored with source %q", ev.Source)
		}
	}
	if sink.events[0].Message.Text != "old one" || !sink.events[1].Message.FromMe {
		t.Fatalf("history messages: %+v / %+v", sink.events[0].Message, sink.events[1].Message)
	}

	sink2 := &sinkRecorder{fail: errors.New("down")}
	if handlerSession(t, sink2).handle(hist) {
		t.Fatal("history sync acked although nothing was stored")
	}
}

func webKey(id string, fromMe bool) *waCommon.MessageKey {
	return &waCommon.MessageKey{RemoteJID: proto.String("15551234567@s.whatsapp.net"), FromMe: proto.Bool(fromMe), ID: proto.String(id)}
}
