package authstore

import (
	"testing"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMessageSecrets(t *testing.T) { storetest.Each(t, testMessageSecrets) }

func testMessageSecrets(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	group := types.NewJID("123-456", types.GroupServer)
	alicePN, aliceLID := pnJID("111"), lidJID("555")
	bob := pnJID("222")

	secret, sender, err := s.GetMessageSecret(ctx, group, alicePN, "M0")
	must(t, err)
	if secret != nil || !sender.IsEmpty() {
		t.Fatalf("missing secret = %q, %s", secret, sender)
	}

	// Stored with device JIDs: kept under the non-AD JIDs.
	aliceDev := alicePN
	aliceDev.Device = 3
	must(t, s.PutMessageSecret(ctx, group, aliceDev, "M1", []byte("s1")))
	must(t, s.PutMessageSecret(ctx, group, alicePN, "M1", []byte("ignored"))) // first one is kept
	// A known secret first: the rest of the batch is still stored.
	must(t, s.PutMessageSecrets(ctx, []store.MessageSecretInsert{
		{Chat: group, Sender: aliceDev, ID: "M1", Secret: []byte("ignored too")},
		{Chat: group, Sender: aliceLID, ID: "M2", Secret: []byte("s2")},
		{Chat: bob, Sender: bob, ID: "M3", Secret: []byte("s3")},
	}))
	must(t, s.PutMessageSecrets(ctx, nil))

	// Before the LID mapping is known only the exact identities match.
	if secret, _, _ := s.GetMessageSecret(ctx, group, alicePN, "M2"); secret != nil {
		t.Fatal("secret found under an unmapped alternate identity")
	}
	must(t, s.lids.PutLIDMapping(ctx, aliceLID, alicePN))

	for _, tc := range []struct {
		name       string
		chat       types.JID
		sender     types.JID
		id         string
		wantSecret string
		wantSender types.JID
	}{
		{"exact", group, alicePN, "M1", "s1", alicePN},
		{"sender as device JID", group, aliceDev, "M1", "s1", alicePN},
		{"sender by LID, stored by PN", group, aliceLID, "M1", "s1", alicePN},
		{"sender by PN, stored by LID", group, alicePN, "M2", "s2", aliceLID},
		{"DM", bob, bob, "M3", "s3", bob},
		{"wrong id", group, alicePN, "M3", "", types.EmptyJID},
		{"wrong sender", group, bob, "M1", "", types.EmptyJID},
	} {
		secret, sender, err := s.GetMessageSecret(ctx, tc.chat, tc.sender, tc.id)
		must(t, err)
		if string(secret) != tc.wantSecret || sender != tc.wantSender {
			t.Errorf("%s: got (%q, %s), want (%q, %s)", tc.name, secret, sender, tc.wantSecret, tc.wantSender)
		}
	}

	// A DM chat stored by LID is found by the phone-number chat JID.
	must(t, s.PutMessageSecret(ctx, aliceLID, aliceLID, "M4", []byte("s4")))
	if secret, sender, _ := s.GetMessageSecret(ctx, alicePN, alicePN, "M4"); string(secret) != "s4" || sender != aliceLID {
		t.Fatalf("LID-stored DM secret by PN = %q, %s", secret, sender)
	}
}
