package event

import (
	"strings"
	"testing"
)

func TestKinds(t *testing.T) {
	kinds := Kinds()
	if len(kinds) != 16 {
		t.Fatalf("Kinds() has %d kinds, want 16", len(kinds))
	}
	seen := map[Kind]bool{}
	for _, k := range kinds {
		if seen[k] {
			t.Errorf("kind %q listed twice", k)
		}
		seen[k] = true
		if !k.Valid() {
			t.Errorf("%q.Valid() = false", k)
		}
		got, err := ParseKind(string(k))
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	kinds[0] = "mutated"
	if Kinds()[0] == "mutated" {
		t.Error("Kinds() returns a shared slice")
	}
}

func TestParseKindRejects(t *testing.T) {
	for _, s := range []string{"", "message", "message.*", "*", "Message.Received", "message.received "} {
		if k, err := ParseKind(s); err == nil {
			t.Errorf("ParseKind(%q) = %q, want error", s, k)
		}
	}
	_, err := ParseKind("mesage.received")
	if err == nil || !strings.Contains(err.Error(), "message.received") {
		t.Errorf("error should list valid kinds, got %v", err)
	}
}

func TestMatchKind(t *testing.T) {
	tests := []struct {
		pattern string
		kind    Kind
		want    bool
	}{
		{"*", KindHistorySync, true},
		{"message.*", KindMessageReceived, true},
		{"message.*", KindMessageRevoked, true},
		{"message.*", KindAccountQR, false},
		{"account.*", KindAccountLoggedOut, true},
		{"message.received", KindMessageReceived, true},
		{"message.received", KindMessageSent, false},
		{"messages.*", KindMessageReceived, false},
		{"message", KindMessageReceived, false},
		{"", KindMessageReceived, false},
		{"message.rec*", KindMessageReceived, false},
	}
	for _, tt := range tests {
		if got := MatchKind(tt.pattern, tt.kind); got != tt.want {
			t.Errorf("MatchKind(%q, %q) = %v, want %v", tt.pattern, tt.kind, got, tt.want)
		}
	}
}

func TestValidateKindPattern(t *testing.T) {
	for _, p := range []string{"*", "message.*", "account.*", "chat.*", "history.sync", "group.update"} {
		if err := ValidateKindPattern(p); err != nil {
			t.Errorf("ValidateKindPattern(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", "mesage.*", "message.recieved", "**", ".*", "message.re*"} {
		if err := ValidateKindPattern(p); err == nil {
			t.Errorf("ValidateKindPattern(%q) = nil, want error", p)
		}
	}
}

func TestFamily(t *testing.T) {
	if got := KindAccountPairingCode.Family(); got != "account" {
		t.Errorf("Family() = %q, want account", got)
	}
}
