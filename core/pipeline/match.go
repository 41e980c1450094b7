package pipeline

import (
	"slices"
	"strings"

	"github.com/wildcathub/wildcat/core/event"
)

// ChatKind classifies an event's chat.
type ChatKind string

const (
	ChatUser      ChatKind = "user"
	ChatGroup     ChatKind = "group"
	ChatBroadcast ChatKind = "broadcast"
	ChatStatus    ChatKind = "status"
)

// ChatKindOf returns the kind of ev's chat, or "" for events without one
// (account state, presence).
func ChatKindOf(ev *event.Event) ChatKind {
	if m := ev.Message; m != nil {
		switch {
		case m.IsStatus:
			return ChatStatus
		case m.IsGroup:
			return ChatGroup
		case m.IsBroadcast:
			return ChatBroadcast
		}
	}
	chat := ev.ChatID
	if chat == "" && ev.Message != nil {
		chat = ev.Message.ChatID
	}
	switch {
	case chat == "":
		return ""
	case chat == "status@broadcast":
		return ChatStatus
	case strings.HasSuffix(chat, "@g.us"):
		return ChatGroup
	case strings.HasSuffix(chat, "@broadcast"):
		return ChatBroadcast
	}
	return ChatUser
}

// Matches reports whether ev passes m, with the loop guard of stages that
// can cause events (rules, builtins, plugins — inline or sink).
//
// Loop guard: events caused by a rule or a plugin (source rule|plugin, e.g.
// an auto-reply's message.sent) match only when Sources names that source
// explicitly; an empty Sources means every other source. A rule that
// replies to every message therefore never sees its own replies unless it
// asks for them.
func Matches(m *Match, ev *event.Event) bool { return matches(m, ev, true) }

// MatchesEverySource is Matches without the loop guard: an empty Sources
// means every source. It is for whatever cannot cause an event and so
// cannot loop: "sink:" stages (webhooks) and readers of the event stream.
func MatchesEverySource(m *Match, ev *event.Event) bool { return matches(m, ev, false) }

func matches(m *Match, ev *event.Event, loopGuard bool) bool {
	if len(m.Sources) == 0 {
		if loopGuard && (ev.Source == event.SourceRule || ev.Source == event.SourcePlugin) {
			return false
		}
	} else if !slices.Contains(m.Sources, string(ev.Source)) {
		return false
	}
	if len(m.Kinds) > 0 && !slices.ContainsFunc(m.Kinds, func(p string) bool { return event.MatchKind(p, ev.Kind) }) {
		return false
	}
	if len(m.Accounts) > 0 && !slices.Contains(m.Accounts, ev.AccountID) {
		return false
	}
	if len(m.Chat) > 0 && !slices.Contains(m.Chat, string(ChatKindOf(ev))) {
		return false
	}
	if m.FromMe != nil && (ev.Message == nil || ev.Message.FromMe != *m.FromMe) {
		return false
	}
	if m.HasMedia != nil && (ev.Message != nil && ev.Message.HasMedia) != *m.HasMedia {
		return false
	}
	return true
}
