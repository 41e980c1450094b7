package pipeline

import (
	"testing"

	"github.com/wildcathub/wildcat/core/event"
)

func msgEvent(chat string, fromMe, media bool, src event.Source) *event.Event {
	return &event.Event{
		ID: "a:1", Kind: event.KindMessageReceived, AccountID: "acct", ChatID: chat, Source: src,
		Message: &event.Message{MessageID: "1", ChatID: chat, FromMe: fromMe, HasMedia: media,
			IsGroup: len(chat) > 5 && chat[len(chat)-5:] == "@g.us"},
	}
}

func TestMatch(t *testing.T) {
	user := msgEvent("1@s.whatsapp.net", false, false, event.SourcePhone)
	group := msgEvent("1-2@g.us", false, true, event.SourcePhone)
	status := msgEvent("status@broadcast", false, true, event.SourcePhone)
	list := msgEvent("123@broadcast", false, false, event.SourcePhone)
	mine := msgEvent("1@s.whatsapp.net", true, false, event.SourceAPI)
	ruleReply := msgEvent("1@s.whatsapp.net", true, false, event.SourceRule)
	ruleReply.Kind = event.KindMessageSent
	pluginSend := msgEvent("1@s.whatsapp.net", true, false, event.SourcePlugin)
	history := msgEvent("1@s.whatsapp.net", false, false, event.SourceHistory)
	connected := &event.Event{ID: "a:c", Kind: event.KindAccountConnected, AccountID: "acct", Source: event.SourcePhone, Account: &event.AccountState{}}
	other := msgEvent("1@s.whatsapp.net", false, false, event.SourcePhone)
	other.AccountID = "other"

	tests := []struct {
		name string
		m    Match
		ev   *event.Event
		want bool
	}{
		{"empty matches a phone message", Match{}, user, true},
		{"empty matches account events", Match{}, connected, true},
		{"exact kind", Match{Kinds: []string{"message.received"}}, user, true},
		{"other kind", Match{Kinds: []string{"message.sent"}}, user, false},
		{"family wildcard", Match{Kinds: []string{"message.*"}}, user, true},
		{"family wildcard misses other families", Match{Kinds: []string{"message.*"}}, connected, false},
		{"star", Match{Kinds: []string{"*"}}, connected, true},
		{"one of several kinds", Match{Kinds: []string{"account.*", "message.sent"}}, connected, true},
		{"account listed", Match{Accounts: []string{"x", "acct"}}, user, true},
		{"account not listed", Match{Accounts: []string{"acct"}}, other, false},
		{"chat user", Match{Chat: []string{"user"}}, user, true},
		{"chat user misses group", Match{Chat: []string{"user"}}, group, false},
		{"chat group", Match{Chat: []string{"group"}}, group, true},
		{"chat status", Match{Chat: []string{"status"}}, status, true},
		{"chat broadcast", Match{Chat: []string{"broadcast"}}, list, true},
		{"chat broadcast misses status", Match{Chat: []string{"broadcast"}}, status, false},
		{"chat filter misses chat-less events", Match{Chat: []string{"user"}}, connected, false},
		{"fromMe true", Match{FromMe: ptr(true)}, mine, true},
		{"fromMe true misses received", Match{FromMe: ptr(true)}, user, false},
		{"fromMe false", Match{FromMe: ptr(false)}, user, true},
		{"fromMe misses chat-less events", Match{FromMe: ptr(false)}, connected, false},
		{"hasMedia true", Match{HasMedia: ptr(true)}, group, true},
		{"hasMedia true misses text", Match{HasMedia: ptr(true)}, user, false},
		{"hasMedia false", Match{HasMedia: ptr(false)}, user, true},
		{"source listed", Match{Sources: []string{"api"}}, mine, true},
		{"source not listed", Match{Sources: []string{"api"}}, user, false},
		{"history by default", Match{}, history, true},
		{"loop guard: rule events skip stages that do not ask", Match{}, ruleReply, false},
		{"loop guard: plugin events skip stages that do not ask", Match{Kinds: []string{"message.*"}}, pluginSend, false},
		{"loop guard: asked for explicitly", Match{Sources: []string{"rule"}}, ruleReply, true},
		{"loop guard: asking for rule is not asking for plugin", Match{Sources: []string{"rule"}}, pluginSend, false},
		{"all filters together", Match{Kinds: []string{"message.*"}, Accounts: []string{"acct"}, Chat: []string{"group"}, FromMe: ptr(false), HasMedia: ptr(true), Sources: []string{"phone"}}, group, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Matches(&tt.m, tt.ev); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
		})
	}

	// Without the loop guard (sink stages, the event stream) an empty
	// Sources means every source; a listed one still filters.
	for _, tt := range []struct {
		name string
		m    Match
		ev   *event.Event
		want bool
	}{
		{"every source: rule", Match{}, ruleReply, true},
		{"every source: plugin", Match{Kinds: []string{"message.*"}}, pluginSend, true},
		{"every source: phone", Match{}, user, true},
		{"listed sources still filter", Match{Sources: []string{"phone"}}, ruleReply, false},
		{"other filters still apply", Match{Kinds: []string{"message.received"}}, ruleReply, false},
	} {
		t.Run("MatchesEverySource/"+tt.name, func(t *testing.T) {
			if got := MatchesEverySource(&tt.m, tt.ev); got != tt.want {
				t.Fatalf("MatchesEverySource = %v, want %v", got, tt.want)
			}
		})
	}
}
