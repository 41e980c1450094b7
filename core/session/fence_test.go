package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestGuardFencesEveryWriteOfASession: with a Guard (several daemons on one
// MongoDB), Start starts only owned accounts, an event is stored only
// while the guard allows it — recording the writer and its epoch — and a
// refused event is neither stored nor handed on.
func TestGuardFencesEveryWriteOfASession(t *testing.T) {
	db := storetest.NewDatabase(t)
	msgs := messages.New(db, nil)
	var mu sync.Mutex
	owned := map[string]int64{"mine": 3}
	handed := 0
	m := session.NewManager(session.ManagerOptions{
		Accounts: session.NewMongoAccounts(db), Messages: msgs, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		Owns: func(id string) bool { mu.Lock(); defer mu.Unlock(); _, ok := owned[id]; return ok },
		Guard: func(id string) (messages.Writer, error) {
			mu.Lock()
			defer mu.Unlock()
			if e, ok := owned[id]; ok {
				return messages.Writer{Instance: "me", Epoch: e}, nil
			}
			return messages.Writer{}, errors.New("lease lost")
		},
		OnEvent: func(context.Context, *event.Event) error { mu.Lock(); handed++; mu.Unlock(); return nil },
	})
	f := &flaky{}
	m.Register(f)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	ctx := context.Background()
	if err := m.Start(ctx, []session.AccountSpec{{ID: "mine", Driver: "sim"}, {ID: "theirs", Driver: "sim"}}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	_, startedTheirs := f.sinks["theirs"]
	sink := f.sinks["mine"]
	f.mu.Unlock()
	if startedTheirs || sink == nil {
		t.Fatalf("started: theirs %v, mine %v; want only the owned account", startedTheirs, sink != nil)
	}

	msg := func(id string) *event.Event {
		return &event.Event{ID: "mine:" + id, Kind: event.KindMessageReceived, AccountID: "mine", Timestamp: time.Now(), ChatID: "1@s.whatsapp.net",
			Source: event.SourcePhone, Message: &event.Message{AccountID: "mine", MessageID: id, ChatID: "1@s.whatsapp.net", From: "1@s.whatsapp.net", Type: event.TypeText, Text: id}}
	}
	if err := sink.Emit(ctx, msg("A")); err != nil {
		t.Fatal(err)
	}
	got, err := msgs.Get(ctx, "mine", "A")
	if err != nil {
		t.Fatal(err)
	}
	if got.Writer == nil || *got.Writer != (messages.Writer{Instance: "me", Epoch: 3}) {
		t.Fatalf("stored with writer %+v, want me at epoch 3", got.Writer)
	}

	// The lease is gone: the session's next event is refused.
	mu.Lock()
	delete(owned, "mine")
	before := handed
	mu.Unlock()
	if err := sink.Emit(ctx, msg("B")); err == nil {
		t.Fatal("an event of an account whose lease is lost was accepted")
	}
	if _, err := msgs.Get(ctx, "mine", "B"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("refused event stored: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if handed != before {
		t.Fatal("a refused event was handed to the pipeline")
	}
}
