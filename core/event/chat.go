package event

import "time"

// Presence is a contact coming online or going offline.
type Presence struct {
	JID       string `json:"jid" bson:"jid"`
	Available bool   `json:"available" bson:"available"`
	// LastSeen is nil when the contact hides it.
	LastSeen *time.Time `json:"lastSeen,omitempty" bson:"lastSeen,omitempty"`
}

// TypingState is what a chat participant is doing.
type TypingState string

const (
	TypingComposing TypingState = "composing" // typing text
	TypingRecording TypingState = "recording" // recording a voice note
	TypingPaused    TypingState = "paused"    // stopped
)

// Typing is a chat-presence update ("is typing...").
type Typing struct {
	ChatID string      `json:"chatId" bson:"chatId"`
	From   string      `json:"from" bson:"from"`
	FromPN string      `json:"fromPn,omitempty" bson:"fromPn,omitempty"`
	State  TypingState `json:"state" bson:"state"`
}

// GroupUpdate is a change to a group's metadata or membership. Only the
// fields that changed are set; pointer fields distinguish "set to false"
// from "unchanged".
type GroupUpdate struct {
	JID          string `json:"jid" bson:"jid"`
	Actor        string `json:"actor,omitempty" bson:"actor,omitempty"` // who made the change
	ActorPN      string `json:"actorPn,omitempty" bson:"actorPn,omitempty"`
	Name         string `json:"name,omitempty" bson:"name,omitempty"`
	Topic        string `json:"topic,omitempty" bson:"topic,omitempty"`
	TopicDeleted bool   `json:"topicDeleted,omitempty" bson:"topicDeleted,omitempty"`
	// Locked: only admins may edit group info. Announce: only admins may send.
	Locked   *bool `json:"locked,omitempty" bson:"locked,omitempty"`
	Announce *bool `json:"announce,omitempty" bson:"announce,omitempty"`
	// EphemeralSeconds is the disappearing-messages timer; 0 turns it off.
	EphemeralSeconds *uint32 `json:"ephemeralSeconds,omitempty" bson:"ephemeralSeconds,omitempty"`
	Deleted          bool    `json:"deleted,omitempty" bson:"deleted,omitempty"`
	InviteLink       string  `json:"inviteLink,omitempty" bson:"inviteLink,omitempty"`
	JoinReason       string  `json:"joinReason,omitempty" bson:"joinReason,omitempty"`

	Added    []string `json:"added,omitempty" bson:"added,omitempty"`
	Removed  []string `json:"removed,omitempty" bson:"removed,omitempty"`
	Promoted []string `json:"promoted,omitempty" bson:"promoted,omitempty"`
	Demoted  []string `json:"demoted,omitempty" bson:"demoted,omitempty"`
}
