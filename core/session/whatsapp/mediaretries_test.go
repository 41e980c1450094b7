package whatsapp_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestMediaRetryStore is the MediaRetryStore conformance suite.
func TestMediaRetryStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		var s whatsapp.MediaRetryStore
		if e == storetest.SQLite {
			s = whatsapp.NewSQLiteMediaRetries(storetest.NewSQLite(t, whatsapp.SQLiteSchema))
		} else {
			s = whatsapp.NewMongoMediaRetries(storetest.NewDatabase(t))
		}
		ctx := context.Background()
		if r, err := s.Get(ctx, "wa1", "M1"); r != nil || err != nil {
			t.Fatalf("nothing stored: %+v %v", r, err)
		}
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		ok := whatsapp.MediaRetry{Ciphertext: []byte{1, 2, 3}, IV: []byte{9, 8}, At: at}
		if err := s.Put(ctx, "wa1", "M1", ok); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "wa2", "M1", whatsapp.MediaRetry{ErrorCode: 2, At: at}); err != nil {
			t.Fatal(err)
		}
		r, err := s.Get(ctx, "wa1", "M1")
		if err != nil || r == nil || !bytes.Equal(r.Ciphertext, ok.Ciphertext) || !bytes.Equal(r.IV, ok.IV) || r.ErrorCode != 0 || !r.At.Equal(at) {
			t.Fatalf("got %+v %v, want %+v", r, err, ok)
		}
		// Accounts are apart; an error answer has no ciphertext.
		if r, _ := s.Get(ctx, "wa2", "M1"); r == nil || r.ErrorCode != 2 || len(r.Ciphertext) != 0 {
			t.Fatalf("wa2: %+v", r)
		}
		// A later answer replaces the earlier one.
		if err := s.Put(ctx, "wa1", "M1", whatsapp.MediaRetry{ErrorCode: 2, At: at.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if r, _ := s.Get(ctx, "wa1", "M1"); r == nil || r.ErrorCode != 2 || len(r.Ciphertext) != 0 || !r.At.Equal(at.Add(time.Minute)) {
			t.Fatalf("replaced: %+v", r)
		}
	})
}
