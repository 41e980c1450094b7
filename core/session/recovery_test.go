package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestRedeliveryOfUnfinishedMessageIsPassedOnAgain: a stored message whose
// pipeline run did not finish goes to OnEvent again when redelivered; once
// marked processed, a redelivery is skipped.
func TestRedeliveryOfUnfinishedMessageIsPassedOnAgain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testRedeliveryOfUnfinishedMessageIsPassedOnAgain(t, e) })
}

func testRedeliveryOfUnfinishedMessageIsPassedOnAgain(t *testing.T, e storetest.Engine) {
	db := storetest.NewDatabase(t)
	msgs := messages.New(db, nil)
	var mu sync.Mutex
	calls, refuse := 0, true
	m := session.NewManager(session.ManagerOptions{Accounts: accountStore(t, e), Messages: msgs, OnEvent: func(context.Context, *event.Event) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if refuse {
			return errors.New("pipeline full")
		}
		return nil
	}})
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	ctx := context.Background()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := &event.Event{
		ID: event.MessageEventID("acme", "M1"), Kind: event.KindMessageReceived, AccountID: "acme",
		Timestamp: at, ChatID: "1@s.whatsapp.net", Source: event.SourcePhone,
		Message: &event.Message{AccountID: "acme", MessageID: "M1", ChatID: "1@s.whatsapp.net",
			From: "1@s.whatsapp.net", Timestamp: at.Unix(), Type: event.TypeText, Text: "hi"},
	}
	if err := m.Emit(ctx, ev); err == nil {
		t.Fatal("Emit succeeded although OnEvent refused")
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	if err := m.Emit(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if err := msgs.MarkProcessed(ctx, ev.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.Emit(ctx, ev); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Fatalf("OnEvent called %d times, want 2 (refused, redelivered unfinished; not after done)", calls)
	}
}

// TestBeforeOpenRunsBeforeTheSessionOpens: the recovery hook runs for the
// account before its driver opens a session, and a failure is retried.
func TestBeforeOpenRunsBeforeTheSessionOpens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testBeforeOpenRunsBeforeTheSessionOpens(t, e) })
}

func testBeforeOpenRunsBeforeTheSessionOpens(t *testing.T, e storetest.Engine) {
	db := storetest.NewDatabase(t)
	f := &flaky{}
	var mu sync.Mutex
	var hooks []string
	m := session.NewManager(session.ManagerOptions{Accounts: accountStore(t, e), Messages: messages.New(db, nil),
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		BeforeOpen: func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			hooks = append(hooks, id)
			f.mu.Lock()
			opened := f.sinks[id] != nil
			f.mu.Unlock()
			if opened {
				t.Errorf("BeforeOpen of %s ran after the session opened", id)
			}
			if len(hooks) == 1 {
				return errors.New("store hiccup")
			}
			return nil
		}})
	m.Register(f)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	if err := m.Start(context.Background(), []session.AccountSpec{{ID: "acme", Driver: "sim"}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, func() error {
		if f.attempts.Load() < 1 {
			return errors.New("not connected yet")
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(hooks) != 2 || hooks[0] != "acme" {
		t.Fatalf("BeforeOpen calls %v, want acme twice (failed, then retried)", hooks)
	}
}
