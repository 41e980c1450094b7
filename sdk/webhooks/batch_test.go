package webhooks_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/sdk/webhooks"
)

// A batch body is the array of the events' envelopes, each exactly what
// Render sends alone; its id depends on the events and their order only;
// one signature over the array verifies.
func TestBatchBodyIDAndSignature(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	evs := []*event.Event{
		{ID: "acme:A", Kind: event.KindMessageReceived, AccountID: "acme", Timestamp: at},
		{ID: "acme:B", Kind: event.KindMessageStatus, AccountID: "acme", Timestamp: at},
	}
	body, err := webhooks.RenderBatch(evs)
	if err != nil {
		t.Fatal(err)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(body, &parts); err != nil || len(parts) != 2 {
		t.Fatalf("not an array of 2: %v %s", err, body)
	}
	for i, ev := range evs {
		one, _ := webhooks.Render(ev)
		if string(parts[i]) != string(one) {
			t.Fatalf("element %d is %s, want Render's %s", i, parts[i], one)
		}
	}
	sum := sha256.Sum256([]byte("acme:A\nacme:B"))
	id := webhooks.BatchID([]string{"acme:A", "acme:B"})
	if id != "batch_"+hex.EncodeToString(sum[:16]) || id == webhooks.BatchID([]string{"acme:B", "acme:A"}) {
		t.Fatalf("BatchID %s", id)
	}
	secret := webhooks.NewSecret()
	sig, err := webhooks.Sign(secret, id, at, body)
	if err != nil {
		t.Fatal(err)
	}
	if err := webhooks.VerifyAt(secret, headers(id, at.Unix(), sig), body, at); err != nil {
		t.Fatal(err)
	}
	if err := webhooks.VerifyAt(secret, headers(id, at.Unix(), sig), parts[0], at); err == nil {
		t.Fatal("one element verified under the batch's signature")
	}
}
