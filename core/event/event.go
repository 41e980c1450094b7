// Package event defines Event, the one type for everything the daemon emits:
// messages, receipts, reactions, edits, revokes, account state, presence,
// typing, group changes and history-sync progress.
//
// Webhook bodies, rule inputs and plugin requests are renderings of this type,
// so its JSON shape (camelCase, optional payloads omitted) is a public
// contract. BSON field names are the same as the JSON ones.
package event

import (
	"fmt"
	"time"
)

// Event is one thing that happened on one account. Exactly one payload
// pointer is set, chosen by Kind's family (see Payload); message.reaction,
// message.edited and message.revoked also carry the Message that transported
// them, so every WhatsApp message is stored the same way.
type Event struct {
	// ID is deterministic (see id.go): the same WhatsApp occurrence delivered
	// twice yields the same ID, which is what makes storage idempotent.
	ID        string    `json:"id" bson:"id"`
	Kind      Kind      `json:"kind" bson:"kind"`
	AccountID string    `json:"accountId" bson:"accountId"`
	Timestamp time.Time `json:"timestamp" bson:"timestamp"`
	ChatID    string    `json:"chatId,omitempty" bson:"chatId,omitempty"`
	Source    Source    `json:"source" bson:"source"`

	Message  *Message      `json:"message,omitempty" bson:"message,omitempty"`
	Status   *Status       `json:"status,omitempty" bson:"status,omitempty"`
	Reaction *Reaction     `json:"reaction,omitempty" bson:"reaction,omitempty"`
	Edit     *Edit         `json:"edit,omitempty" bson:"edit,omitempty"`
	Revoke   *Revoke       `json:"revoke,omitempty" bson:"revoke,omitempty"`
	Account  *AccountState `json:"account,omitempty" bson:"account,omitempty"`
	Presence *Presence     `json:"presence,omitempty" bson:"presence,omitempty"`
	Typing   *Typing       `json:"typing,omitempty" bson:"typing,omitempty"`
	Group    *GroupUpdate  `json:"group,omitempty" bson:"group,omitempty"`
	History  *HistorySync  `json:"history,omitempty" bson:"history,omitempty"`

	// Tags and Annotations are set by pipeline stages (rules, filter
	// plugins); normalisation leaves them empty.
	Tags        []string          `json:"tags,omitempty" bson:"tags,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty" bson:"annotations,omitempty"`
}

// Source says where an event originated.
type Source string

const (
	// SourcePhone: delivered live by WhatsApp, including messages the user
	// sent from their phone or another linked device.
	SourcePhone Source = "phone"
	// SourceAPI: caused by a REST API call (e.g. a send request).
	SourceAPI Source = "api"
	// SourceRule: caused by a JavaScript rule (e.g. an auto-reply).
	SourceRule Source = "rule"
	// SourcePlugin: caused by a plugin through the host services.
	SourcePlugin Source = "plugin"
	// SourceHistory: replayed from a WhatsApp history sync, not live.
	SourceHistory Source = "history"
)

// Valid reports whether s is one of the defined sources.
func (s Source) Valid() bool {
	switch s {
	case SourcePhone, SourceAPI, SourceRule, SourcePlugin, SourceHistory:
		return true
	}
	return false
}

// Validate checks the invariants every stored event must satisfy: a known
// kind and source, an id and an account, and the payload its kind requires.
func (e *Event) Validate() error {
	if e == nil {
		return fmt.Errorf("event is nil")
	}
	if !e.Kind.Valid() {
		return fmt.Errorf("event %q: unknown kind %q", e.ID, e.Kind)
	}
	if e.ID == "" {
		return fmt.Errorf("%s event: empty id", e.Kind)
	}
	if e.AccountID == "" {
		return fmt.Errorf("event %q: empty accountId", e.ID)
	}
	if !e.Source.Valid() {
		return fmt.Errorf("event %q: unknown source %q", e.ID, e.Source)
	}
	var missing string
	switch e.Kind {
	case KindMessageReceived, KindMessageSent, KindMediaArchived:
		if e.Message == nil {
			missing = "message"
		}
	case KindMessageStatus:
		if e.Status == nil {
			missing = "status"
		}
	case KindMessageReaction:
		if e.Reaction == nil {
			missing = "reaction"
		}
	case KindMessageEdited:
		if e.Edit == nil {
			missing = "edit"
		}
	case KindMessageRevoked:
		if e.Revoke == nil {
			missing = "revoke"
		}
	case KindAccountQR, KindAccountPairingCode, KindAccountConnected, KindAccountDisconnected, KindAccountLoggedOut:
		if e.Account == nil {
			missing = "account"
		}
	case KindPresenceUpdate:
		if e.Presence == nil {
			missing = "presence"
		}
	case KindChatTyping:
		if e.Typing == nil {
			missing = "typing"
		}
	case KindGroupUpdate:
		if e.Group == nil {
			missing = "group"
		}
	case KindHistorySync:
		if e.History == nil {
			missing = "history"
		}
	}
	if missing != "" {
		return fmt.Errorf("event %q: kind %s requires a %s payload", e.ID, e.Kind, missing)
	}
	return nil
}
