package authstore

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestPrivacyTokens(t *testing.T) { storetest.Each(t, testPrivacyTokens) }

func testPrivacyTokens(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	alicePN, aliceLID, bob := pnJID("111"), lidJID("555"), pnJID("222")

	if tok, err := s.GetPrivacyToken(ctx, alicePN); err != nil || tok != nil {
		t.Fatalf("missing token = %+v, %v", tok, err)
	}
	t1 := time.Unix(1700000000, 0)
	bobDev := bob
	bobDev.Device = 2
	must(t, s.PutPrivacyTokens(ctx,
		store.PrivacyToken{User: alicePN, Token: []byte("a1"), Timestamp: t1},
		store.PrivacyToken{User: bobDev, Token: []byte("b1"), Timestamp: t1.Add(500 * time.Millisecond)},
	))
	if e == storetest.MongoDB {
		must(t, s.PutPrivacyTokens(ctx)) // sqlstore fails on none; whatsmeow never passes none
	}

	tok, err := s.GetPrivacyToken(ctx, bob)
	must(t, err)
	if tok == nil || string(tok.Token) != "b1" || !tok.Timestamp.Equal(t1) || tok.User != bob {
		t.Fatalf("bob's token = %+v (stored by device JID, second precision)", tok)
	}

	// Overwrite, with two entries for one user in one call: the last wins.
	must(t, s.PutPrivacyTokens(ctx,
		store.PrivacyToken{User: alicePN, Token: []byte("a2"), Timestamp: t1.Add(time.Hour)},
		store.PrivacyToken{User: alicePN, Token: []byte("a3"), Timestamp: t1.Add(2 * time.Hour)},
	))
	if tok, _ := s.GetPrivacyToken(ctx, alicePN); string(tok.Token) != "a3" {
		t.Fatalf("alice's token = %q, want a3", tok.Token)
	}

	// Once the LID is known, the newer of the PN and LID tokens is returned
	// for either identity, reported under the identity asked for.
	must(t, s.lids.PutLIDMapping(ctx, aliceLID, alicePN))
	must(t, s.PutPrivacyTokens(ctx, store.PrivacyToken{User: aliceLID, Token: []byte("lid-old"), Timestamp: t1}))
	if tok, _ := s.GetPrivacyToken(ctx, aliceLID); string(tok.Token) != "a3" || tok.User != aliceLID {
		t.Fatalf("by LID = %+v, want the newer PN token a3", tok)
	}
	must(t, s.PutPrivacyTokens(ctx, store.PrivacyToken{User: aliceLID, Token: []byte("lid-new"), Timestamp: t1.Add(3 * time.Hour)}))
	if tok, _ := s.GetPrivacyToken(ctx, alicePN); string(tok.Token) != "lid-new" || tok.User != alicePN {
		t.Fatalf("by PN = %+v, want the newer LID token", tok)
	}
}
