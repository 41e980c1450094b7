package event

import "testing"

func TestMessageStatusOrder(t *testing.T) {
	order := []MessageStatus{StatusServerAck, StatusDelivered, StatusRead, StatusPlayed}
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
	if !StatusServerAck.Advances("") {
		t.Error("any status should advance an unset one")
	}
	if MessageStatus("bogus").Advances(StatusServerAck) {
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
