package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/coder/websocket"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// The remote sim network: one Server (wildcatd sim serve, or a test) holds
// the accounts' inboxes, and the sim sessions of any number of daemons
// reach it over a WebSocket each (Options.NetworkURL), the way phones'
// clients reach WhatsApp. The protocol is JSON text frames:
//
//	server → client  deliver {seq, kind: message|receipt, msg|receipt}
//	client → server  ack {seq}              after the event is stored
//	client → server  send {ref, msg}        a message the account sent
//	client → server  read {ref, receipt}    read receipts it sends
//	client → server  inject {ref, msg}      an inbound message for itself
//	server → client  ok|error {ref}         the answer to a request
//	server → client  hello                  first: the connection is registered
//	client ↔ server  bye                    an orderly goodbye
//
// A delivery stays on the server until acked and is sent again on the next
// connection (WhatsApp's redelivery of unacknowledged messages). A second
// connection of one account is recorded as an overlap and replaces the
// first, which is closed with closeReplaced, as WhatsApp's stream:replaced.

// connectPath is where clients open their WebSocket:
// ?account=ID&name=NAME&peer=LABEL.
const connectPath = "/v1/connect"

// closeReplaced is the close status of a connection another connection of
// the same account replaced.
const closeReplaced websocket.StatusCode = 4001

// wireReadLimit bounds one frame; media bytes never travel (only their
// direct path), so frames are small.
const wireReadLimit = 4 << 20

const (
	opDeliver = "deliver"
	opAck     = "ack"
	opSend    = "send"
	opRead    = "read"
	opInject  = "inject"
	opOK      = "ok"
	opError   = "error"
	opBye     = "bye"
	opHello   = "hello"

	kindMessage = "message"
	kindReceipt = "receipt"
)

type frame struct {
	Op      string       `json:"op"`
	Seq     uint64       `json:"seq,omitempty"`
	Ref     uint64       `json:"ref,omitempty"`
	Error   string       `json:"error,omitempty"`
	Kind    string       `json:"kind,omitempty"`
	Msg     *wireMessage `json:"msg,omitempty"`
	Receipt *wireReceipt `json:"receipt,omitempty"`
}

// wireMessage is a whatsmeow message on the wire: its MessageInfo as the
// recipient sees it, and the waE2E proto.
type wireMessage struct {
	Chat      string    `json:"chat"`
	Sender    string    `json:"sender"`
	SenderAlt string    `json:"senderAlt,omitempty"`
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	PushName  string    `json:"pushName,omitempty"`
	Type      string    `json:"type,omitempty"`
	IsGroup   bool      `json:"isGroup,omitempty"`
	Proto     []byte    `json:"proto"`
}

// wireReceipt is a receipt from Peer for the recipient's messages IDs.
type wireReceipt struct {
	Peer      string    `json:"peer"`
	PeerAlt   string    `json:"peerAlt,omitempty"`
	IDs       []string  `json:"ids"`
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
}

func encodeMessage(info types.MessageInfo, msg *waE2E.Message) (*wireMessage, error) {
	b, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode sim message: %w", err)
	}
	return &wireMessage{
		Chat: info.Chat.String(), Sender: info.Sender.String(), SenderAlt: jidString(info.SenderAlt),
		ID: info.ID, Timestamp: info.Timestamp, PushName: info.PushName, Type: info.Type, IsGroup: info.IsGroup,
		Proto: b,
	}, nil
}

func jidString(j types.JID) string {
	if j.IsEmpty() {
		return ""
	}
	return j.String()
}

func parseJIDs(ss ...string) ([]types.JID, error) {
	out := make([]types.JID, len(ss))
	for i, s := range ss {
		if s == "" {
			continue
		}
		j, err := types.ParseJID(s)
		if err != nil {
			return nil, fmt.Errorf("sim wire JID %q: %w", s, err)
		}
		out[i] = j
	}
	return out, nil
}

// event turns the wire form back into the whatsmeow event a client builds.
func (m *wireMessage) event() (*events.Message, error) {
	j, err := parseJIDs(m.Chat, m.Sender, m.SenderAlt)
	if err != nil {
		return nil, err
	}
	var msg waE2E.Message
	if err := proto.Unmarshal(m.Proto, &msg); err != nil {
		return nil, fmt.Errorf("decode sim message %s: %w", m.ID, err)
	}
	info := types.MessageInfo{
		MessageSource: types.MessageSource{Chat: j[0], Sender: j[1], SenderAlt: j[2], IsGroup: m.IsGroup},
		ID:            m.ID, Timestamp: m.Timestamp, PushName: m.PushName, Type: m.Type,
	}
	return &events.Message{Info: info, Message: &msg, RawMessage: &msg}, nil
}

func (r *wireReceipt) event() (*events.Receipt, error) {
	j, err := parseJIDs(r.Peer, r.PeerAlt)
	if err != nil {
		return nil, err
	}
	return &events.Receipt{
		MessageSource: types.MessageSource{Chat: j[0], Sender: j[0], SenderAlt: j[1]},
		MessageIDs:    r.IDs,
		Timestamp:     r.Timestamp,
		Type:          types.ReceiptType(r.Type),
	}, nil
}

func writeFrame(ctx context.Context, c *websocket.Conn, f frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return c.Write(ctx, websocket.MessageText, b)
}

func readFrame(ctx context.Context, c *websocket.Conn) (frame, error) {
	var f frame
	typ, b, err := c.Read(ctx)
	if err != nil {
		return f, err
	}
	if typ != websocket.MessageText {
		return f, fmt.Errorf("sim wire: binary frame")
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("sim wire: %w", err)
	}
	return f, nil
}

// messageText is the text of a plain or extended text message, for the
// server's record of sends.
func messageText(m *waE2E.Message) string {
	if t := m.GetConversation(); t != "" {
		return t
	}
	return m.GetExtendedTextMessage().GetText()
}
