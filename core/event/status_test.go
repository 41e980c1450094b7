package event

import "testing"

func TestMessageStatusOrder(t *testing.T) {
	order := []MessageStatus{StatusSent, StatusDelivered, StatusRead, StatusPlayed}
	for i, s := range order {
		if !s.Valid() {
			t.Errorf("%q.Valid() = false", s)
		}
		if s.Advances(s) {
			t.Errorf("%q advances itself", s)
		}
		for _, later := range order[i+1:] {
			if !later.Advances(s) {
				t.Errorf("%q should advance %q", later, s)
			}
			if s.Advances(later) {
				t.Errorf("%q must not go back from %q", s, later)
			}
		}
	}
	if !StatusSent.Advances("") {
		t.Error("any status should advance an unset one")
	}
	if MessageStatus("bogus").Advances(StatusSent) {
		t.Error("an unknown status must not advance anything")
	}
}

func TestParseMessageStatus(t *testing.T) {
	if s, err := ParseMessageStatus("read"); err != nil || s != StatusRead {
		t.Errorf("ParseMessageStatus(read) = %q, %v", s, err)
	}
	if _, err := ParseMessageStatus("seen"); err == nil {
		t.Error("ParseMessageStatus(seen) should fail")
	}
}

// The server's acknowledgement is "sent", the word WhatsApp and the stored
// message use; the former name still parses and ranks as it, and keeps the
// event id it had.
func TestSentIsTheServerAck(t *testing.T) {
	if StatusSent != "sent" {
		t.Fatalf("the server ack is %q", StatusSent)
	}
	if s, err := ParseMessageStatus("server_ack"); err != nil || s != StatusSent {
		t.Errorf("ParseMessageStatus(server_ack) = %q, %v", s, err)
	}
	if MessageStatus("server_ack").Rank() != StatusSent.Rank() || StatusDelivered.Advances("server_ack") != true {
		t.Error("server_ack does not rank as sent")
	}
	if id := StatusEventID("acme", "3EB0AA", StatusSent, ""); id != "acme:status:3EB0AA:server_ack" {
		t.Errorf("server ack event id %q", id)
	}
}
