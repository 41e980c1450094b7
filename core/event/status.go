package event

import "fmt"

// MessageStatus is how far an outgoing (or, for read-self, incoming) message
// has got. Values are ordered: see Rank.
type MessageStatus string

const (
	// StatusSent: accepted by the WhatsApp server (its acknowledgement), what
	// WhatsApp shows as one grey tick and calls "sent"; the stored message's
	// status says the same word.
	StatusSent      MessageStatus = "sent"
	StatusDelivered MessageStatus = "delivered" // reached a device of the recipient
	StatusRead      MessageStatus = "read"
	StatusPlayed    MessageStatus = "played" // voice note or view-once media opened

	// legacyServerAck is what StatusSent was called before; events written
	// then (queued webhook jobs) still say it. It ranks and parses as
	// StatusSent.
	legacyServerAck MessageStatus = "server_ack"
)

// Rank orders statuses: sent < delivered < read < played. Unknown
// statuses rank 0, below everything.
func (s MessageStatus) Rank() int {
	switch s {
	case StatusSent, legacyServerAck:
		return 1
	case StatusDelivered:
		return 2
	case StatusRead:
		return 3
	case StatusPlayed:
		return 4
	}
	return 0
}

// Valid reports whether s is a defined status.
func (s MessageStatus) Valid() bool { return s.Rank() > 0 }

// Advances reports whether moving from prev to s is progress. Receipts
// arrive out of order (a read can overtake a delivered), so a stored
// message's status is only updated when the new one advances it.
func (s MessageStatus) Advances(prev MessageStatus) bool {
	return s.Rank() > prev.Rank()
}

// ParseMessageStatus returns the status named by str (the former
// "server_ack" is StatusSent).
func ParseMessageStatus(str string) (MessageStatus, error) {
	s := MessageStatus(str)
	if !s.Valid() {
		return "", fmt.Errorf("unknown message status %q", str)
	}
	if s == legacyServerAck {
		s = StatusSent
	}
	return s, nil
}

// Status is a delivery receipt for one message. WhatsApp batches several
// message ids in one receipt; normalisation splits them into one event per
// message, so that each status event is idempotent and ordered on its own.
type Status struct {
	MessageID string        `json:"messageId" bson:"messageId"`
	Status    MessageStatus `json:"status" bson:"status"`
	// From is who produced the receipt: the recipient (or, in a group, the
	// participant) for delivered/read/played, empty (the server) for sent.
	From   string `json:"from,omitempty" bson:"from,omitempty"`
	FromPN string `json:"fromPn,omitempty" bson:"fromPn,omitempty"`
	ChatID string `json:"chatId" bson:"chatId"`
	// Self is set when the account's own user read/played the message on
	// another device (WhatsApp's read-self / played-self receipts).
	Self bool `json:"self,omitempty" bson:"self,omitempty"`
	// MessageSender is the author of the message, set when it is not us (a
	// group message we read on another device).
	MessageSender string `json:"messageSender,omitempty" bson:"messageSender,omitempty"`
}
