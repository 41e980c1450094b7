package authstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

var testTime = time.Unix(1700000000, 0)

func TestEventBuffer(t *testing.T) { storetest.Each(t, testEventBuffer) }

func testEventBuffer(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	h1, h2 := key32(1), key32(2)

	if ev, err := s.GetBufferedEvent(ctx, h1); err != nil || ev != nil {
		t.Fatalf("missing event = %+v, %v", ev, err)
	}
	before := time.Now()
	must(t, s.PutBufferedEvent(ctx, h1, []byte("plain"), testTime.Add(400*time.Millisecond)))
	ev, err := s.GetBufferedEvent(ctx, h1)
	must(t, err)
	if ev == nil || string(ev.Plaintext) != "plain" || !ev.ServerTime.Equal(testTime) {
		t.Fatalf("event = %+v", ev)
	}
	if ev.InsertTime.Before(before.Truncate(time.Millisecond)) || ev.InsertTime.After(time.Now()) {
		t.Fatalf("insert time %s not now", ev.InsertTime)
	}
	// A second put of the same hash keeps the first plaintext: a no-op on
	// MongoDB, an error in sqlstore (whatsmeow only puts after a miss).
	err = s.PutBufferedEvent(ctx, h1, []byte("other"), testTime)
	if e == storetest.MongoDB {
		must(t, err)
	}
	if ev, _ := s.GetBufferedEvent(ctx, h1); string(ev.Plaintext) != "plain" {
		t.Fatalf("second put replaced plaintext: %q", ev.Plaintext)
	}

	must(t, s.ClearBufferedEventPlaintext(ctx, h1))
	must(t, s.ClearBufferedEventPlaintext(ctx, h2)) // missing: no error
	ev, err = s.GetBufferedEvent(ctx, h1)
	must(t, err)
	if ev == nil || ev.Plaintext != nil {
		t.Fatalf("after clear: %+v, want found with nil plaintext (already processed)", ev)
	}

	// Only events inserted more than 14 days ago are deleted.
	must(t, s.PutBufferedEvent(ctx, h2, []byte("old"), testTime))
	s.ageBufferedEvent(t, h2, 15*24*time.Hour)
	must(t, s.DeleteOldBufferedHashes(ctx))
	if ev, _ := s.GetBufferedEvent(ctx, h2); ev != nil {
		t.Fatal("old event survived DeleteOldBufferedHashes")
	}
	if ev, _ := s.GetBufferedEvent(ctx, h1); ev == nil {
		t.Fatal("recent event deleted by DeleteOldBufferedHashes")
	}
}

// TestDecryptionTxn checks the stand-in for sqlstore's transaction: writes
// inside are visible inside, invisible outside until fn returns, all
// applied on success and none on failure.
func TestDecryptionTxn(t *testing.T) { storetest.Each(t, testDecryptionTxn) }

func testDecryptionTxn(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	must(t, s.PutSession(ctx, "111:0", []byte("old")))
	must(t, s.PutSession(ctx, "222:0", []byte("doomed")))
	ks, err := s.GetOrGenPreKeys(ctx, 1)
	must(t, err)
	pk := ks[0].KeyID

	err = s.DoDecryptionTxn(ctx, func(tctx context.Context) error {
		must(t, s.PutSession(tctx, "111:0", []byte("new")))
		must(t, s.DeleteSession(tctx, "222:0"))
		must(t, s.RemovePreKey(tctx, pk))
		must(t, s.PutIdentity(tctx, "111:0", key32(1)))
		must(t, s.PutSenderKey(tctx, "g@g.us", "111:0", []byte("sk")))
		must(t, s.PutBufferedEvent(tctx, key32(7), []byte("plain"), testTime))

		// Inside: the pending writes are read back.
		if got, _ := s.GetSession(tctx, "111:0"); string(got) != "new" {
			t.Errorf("inside: session %q, want new", got)
		}
		if has, _ := s.HasSession(tctx, "222:0"); has {
			t.Error("inside: deleted session still there")
		}
		if k, _ := s.GetPreKey(tctx, pk); k != nil {
			t.Error("inside: removed pre-key still there")
		}
		if ok, _ := s.IsTrustedIdentity(tctx, "111:0", key32(2)); ok {
			t.Error("inside: new identity not pinned")
		}
		// Nested calls join the outer unit.
		must(t, s.DoDecryptionTxn(tctx, func(nctx context.Context) error {
			return s.PutSession(nctx, "333:0", []byte("nested"))
		}))
		// Outside (another goroutine, plain context): nothing yet.
		if got, _ := s.GetSession(ctx, "111:0"); string(got) != "old" {
			t.Errorf("outside before commit: session %q, want old", got)
		}
		if ev, _ := s.GetBufferedEvent(ctx, key32(7)); ev != nil {
			t.Error("outside before commit: plaintext visible")
		}
		return nil
	})
	must(t, err)

	if got, _ := s.GetSession(ctx, "111:0"); string(got) != "new" {
		t.Errorf("after commit: session %q", got)
	}
	if has, _ := s.HasSession(ctx, "222:0"); has {
		t.Error("after commit: deleted session still there")
	}
	if got, _ := s.GetSession(ctx, "333:0"); string(got) != "nested" {
		t.Errorf("after commit: nested write %q", got)
	}
	if k, _ := s.GetPreKey(ctx, pk); k != nil {
		t.Error("after commit: pre-key not removed")
	}
	if ok, _ := s.IsTrustedIdentity(ctx, "111:0", key32(2)); ok {
		t.Error("after commit: identity not stored")
	}
	if k, _ := s.GetSenderKey(ctx, "g@g.us", "111:0"); string(k) != "sk" {
		t.Error("after commit: sender key not stored")
	}
	if ev, _ := s.GetBufferedEvent(ctx, key32(7)); ev == nil || string(ev.Plaintext) != "plain" {
		t.Errorf("after commit: buffered event %+v", ev)
	}

	// Failure: nothing is written.
	boom := errors.New("bad mac")
	err = s.DoDecryptionTxn(ctx, func(tctx context.Context) error {
		must(t, s.PutSession(tctx, "111:0", []byte("half")))
		must(t, s.PutBufferedEvent(tctx, key32(8), []byte("never"), testTime))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("DoDecryptionTxn error %v, want %v", err, boom)
	}
	if got, _ := s.GetSession(ctx, "111:0"); string(got) != "new" {
		t.Errorf("after failed txn: session %q, want new", got)
	}
	if ev, _ := s.GetBufferedEvent(ctx, key32(8)); ev != nil {
		t.Error("after failed txn: plaintext buffered")
	}

	if e == storetest.SQLite {
		// sqlstore's transaction is the database's: every account's
		// writes with its context join it, unlike the per-account
		// stand-in below.
		return
	}
	// Another account's store ignores this store's transaction.
	other, _ := newTestStore(t, e)
	must(t, s.DoDecryptionTxn(ctx, func(tctx context.Context) error {
		must(t, other.PutSession(tctx, "9:0", []byte("direct")))
		if got, _ := other.GetSession(ctx, "9:0"); string(got) != "direct" {
			t.Error("another store's write was deferred")
		}
		return nil
	}))
}

// ageBufferedEvent moves a buffered event's insert time back by age.
func (s *testStore) ageBufferedEvent(t *testing.T, hash [32]byte, age time.Duration) {
	t.Helper()
	at := time.Now().Add(-age).UnixMilli()
	if s.db.e == storetest.MongoDB {
		_, err := s.mongoStore().coll.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: eventBufID(hash)}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "insertTime", Value: at}}}})
		must(t, err)
		return
	}
	res, err := s.db.sql.db.RawDB.ExecContext(t.Context(),
		`UPDATE whatsmeow_event_buffer SET insert_timestamp = ? WHERE ciphertext_hash = ?`, at, hash[:])
	must(t, err)
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("aged %d buffered events, want 1", n)
	}
}
