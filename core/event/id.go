package event

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Event ids are deterministic so that storing an event is idempotent: when
// WhatsApp delivers the same thing twice (a redelivery after a crash before
// the ack, a history sync overlapping live messages) the second insert hits
// the same _id and is recognised as a duplicate. The whole scheme lives here.
//
// Segments are joined with ':'. JIDs are used without device part, so the
// same user on two devices is one segment. Account ids must not contain ':'
// (config validation enforces that) to keep ids unambiguous.
//
//	message.received, message.sent,   {accountId}:{messageId}
//	message.reaction, message.edited,
//	message.revoked
//	    Every one of these is one WhatsApp message with its own id (a
//	    reaction or an edit is a message of its own; the target id is in the
//	    payload). A history-synced copy of a live message gets the same id.
//	message.status                    {accountId}:status:{messageId}:{status}[:{from}]
//	    One event per message id and status; {from} (the receipt's sender,
//	    device stripped) keeps group receipts of different participants apart
//	    and collapses receipts from several devices of one user into one.
//	account.qr                        {accountId}:qr:{digest(code)}
//	account.pairing_code              {accountId}:pairing_code:{code}
//	account.connected, .disconnected, {accountId}:{connected|disconnected|logged_out}:{unixMillis}
//	.logged_out
//	    No WhatsApp id exists; the driver's observation time identifies
//	    the occurrence.
//	presence.update                   {accountId}:presence:{jid}:{available|unavailable}:{unixMillis}
//	chat.typing                       {accountId}:typing:{chatId}:{from}:{state}:{unixMillis}
//	group.update                      {accountId}:group:{groupJid}:{unixSeconds}:{digest(change)}
//	    WhatsApp stamps group notifications in seconds; the digest of the
//	    normalised change keeps two changes in the same second apart.
//	history.sync                      {accountId}:history:{type}:{chunkOrder}:{progress}:{digest(message ids)}
//	    On-demand syncs can repeat chunk numbers; the digest of the chunk's
//	    message ids tells different chunks apart and equal ones together.

// MessageEventID is the id of an event carried by one WhatsApp message.
func MessageEventID(accountID, messageID string) string {
	return join(accountID, messageID)
}

// StatusEventID is the id of a message.status event. from may be empty (a
// server ack has no participant).
func StatusEventID(accountID, messageID string, status MessageStatus, from string) string {
	if status == StatusSent {
		// The id predates the name "sent"; kept, so that an acknowledgement
		// seen again after an upgrade still has the id it had.
		status = legacyServerAck
	}
	if from == "" {
		return join(accountID, "status", messageID, string(status))
	}
	return join(accountID, "status", messageID, string(status), from)
}

// QREventID is the id of an account.qr event; each QR code is emitted once.
func QREventID(accountID, code string) string {
	return join(accountID, "qr", Digest(code))
}

// PairingCodeEventID is the id of an account.pairing_code event.
func PairingCodeEventID(accountID, code string) string {
	return join(accountID, "pairing_code", code)
}

// AccountEventID is the id of account.connected, account.disconnected and
// account.logged_out events.
func AccountEventID(accountID string, kind Kind, at time.Time) string {
	_, name, _ := strings.Cut(string(kind), ".")
	return join(accountID, name, millis(at))
}

// PresenceEventID is the id of a presence.update event.
func PresenceEventID(accountID, jid string, available bool, at time.Time) string {
	state := "unavailable"
	if available {
		state = "available"
	}
	return join(accountID, "presence", jid, state, millis(at))
}

// TypingEventID is the id of a chat.typing event.
func TypingEventID(accountID, chatID, from string, state TypingState, at time.Time) string {
	return join(accountID, "typing", chatID, from, string(state), millis(at))
}

// GroupEventID is the id of a group.update event.
func GroupEventID(accountID string, at time.Time, g *GroupUpdate) string {
	// Marshalling plain strings, bools, numbers and slices cannot fail.
	change, _ := json.Marshal(g)
	return join(accountID, "group", g.JID, strconv.FormatInt(at.Unix(), 10), Digest(string(change)))
}

// HistoryEventID is the id of a history.sync event; messageIDs are the ids
// of the messages in the chunk, in the order WhatsApp sent them.
func HistoryEventID(accountID string, h *HistorySync, messageIDs []string) string {
	return join(accountID, "history", h.Type,
		strconv.FormatUint(uint64(h.ChunkOrder), 10),
		strconv.FormatUint(uint64(h.Progress), 10),
		Digest(messageIDs...))
}

// Digest is a short stable hash of parts (16 hex digits of SHA-256), for
// id segments that would otherwise be long or unbounded.
func Digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		// Length-prefix each part so ("ab","c") and ("a","bc") differ.
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func join(parts ...string) string { return strings.Join(parts, ":") }

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
