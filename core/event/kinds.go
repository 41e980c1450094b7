package event

import (
	"fmt"
	"strings"
)

// Kind names what happened. The string values are part of the public contract:
// webhook bodies, rule inputs, plugin requests and pipeline match expressions
// all use them, so they never change once released.
type Kind string

// Message kinds.
const (
	KindMessageReceived Kind = "message.received"
	KindMessageSent     Kind = "message.sent"
	KindMessageStatus   Kind = "message.status"
	KindMessageReaction Kind = "message.reaction"
	KindMessageEdited   Kind = "message.edited"
	KindMessageRevoked  Kind = "message.revoked"
)

// Account kinds, emitted by the session driver itself.
const (
	KindAccountQR           Kind = "account.qr"
	KindAccountPairingCode  Kind = "account.pairing_code"
	KindAccountConnected    Kind = "account.connected"
	KindAccountDisconnected Kind = "account.disconnected"
	KindAccountLoggedOut    Kind = "account.logged_out"
)

// Presence, chat, group and history kinds.
const (
	KindPresenceUpdate Kind = "presence.update"
	KindChatTyping     Kind = "chat.typing"
	KindGroupUpdate    Kind = "group.update"
	KindHistorySync    Kind = "history.sync"
)

// Media kinds, emitted by the daemon.
const (
	// KindMediaArchived: a message's media was archived (the media archive
	// plugin); the event carries the message with its mediaUrl set.
	KindMediaArchived Kind = "media.archived"
)

var allKinds = []Kind{
	KindMessageReceived,
	KindMessageSent,
	KindMessageStatus,
	KindMessageReaction,
	KindMessageEdited,
	KindMessageRevoked,
	KindAccountQR,
	KindAccountPairingCode,
	KindAccountConnected,
	KindAccountDisconnected,
	KindAccountLoggedOut,
	KindPresenceUpdate,
	KindChatTyping,
	KindGroupUpdate,
	KindHistorySync,
	KindMediaArchived,
}

// Kinds returns every kind the daemon emits, in a stable order. The slice is
// a copy; callers may modify it.
func Kinds() []Kind {
	return append([]Kind(nil), allKinds...)
}

// Valid reports whether k is one of the kinds returned by Kinds.
func (k Kind) Valid() bool {
	for _, known := range allKinds {
		if k == known {
			return true
		}
	}
	return false
}

// Family is the part before the dot: "message" for "message.received".
func (k Kind) Family() string {
	family, _, _ := strings.Cut(string(k), ".")
	return family
}

func (k Kind) String() string { return string(k) }

// ParseKind returns the Kind named by s, or an error naming the valid kinds.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if !k.Valid() {
		return "", fmt.Errorf("unknown event kind %q (valid: %s)", s, kindList())
	}
	return k, nil
}

// MatchKind reports whether kind matches pattern. A pattern is an exact kind,
// "*" for every kind, or "family.*" (e.g. "message.*") for every kind of one
// family. Matching is exact otherwise: no other globbing is supported, so a
// typo can be caught by ValidateKindPattern instead of silently matching nothing.
func MatchKind(pattern string, kind Kind) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, ".*"):
		return kind.Family() == strings.TrimSuffix(pattern, ".*")
	default:
		return Kind(pattern) == kind
	}
}

// ValidateKindPattern checks a pattern for MatchKind: it must be "*", an
// exact kind, or "family.*" for a family that has at least one kind. Config
// loading uses it so that `match.kinds: [mesage.*]` fails loudly.
func ValidateKindPattern(pattern string) error {
	if pattern == "*" {
		return nil
	}
	if family, ok := strings.CutSuffix(pattern, ".*"); ok {
		for _, k := range allKinds {
			if k.Family() == family {
				return nil
			}
		}
		return fmt.Errorf("kind pattern %q matches no kind (valid: *, %s)", pattern, kindList())
	}
	if _, err := ParseKind(pattern); err != nil {
		return err
	}
	return nil
}

func kindList() string {
	names := make([]string, len(allKinds))
	for i, k := range allKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}
