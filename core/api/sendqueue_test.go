package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outgoing"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
)

// queueAccounts knows one connected account.
type queueAccounts struct{ Accounts }

func (queueAccounts) GetAccount(_ context.Context, id string) (*session.AccountInfo, error) {
	if id != "acme" {
		return nil, session.ErrAccountNotFound
	}
	return &session.AccountInfo{ID: id, State: session.StateConnected, JID: "15550000001@s.whatsapp.net"}, nil
}

type queueMedia struct{ MediaStore }

func (queueMedia) MaxBytes() int64 { return 1 << 20 }

// heldSessions blocks every send until released.
type heldSessions struct {
	release chan struct{}
	mu      sync.Mutex
	sent    []string
}

func (h *heldSessions) Send(ctx context.Context, _ string, req *session.SendRequest) (*session.SendResult, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	h.mu.Lock()
	h.sent = append(h.sent, req.Text)
	h.mu.Unlock()
	return &session.SendResult{MessageID: req.ID, Timestamp: time.Now()}, nil
}

// pendingStore records what the sender stored as pending.
type pendingStore struct {
	mu      sync.Mutex
	pending []string
}

func (p *pendingStore) StorePending(_ context.Context, m *messages.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, m.Text)
	return nil
}

func (p *pendingStore) MarkFailed(context.Context, string, string, string) (bool, error) {
	return true, nil
}

func (p *pendingStore) texts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.pending...)
}

// TestSendQueueFullIs503WithRetryAfter: with one worker and a queue of one,
// both busy, POST …/messages answers 503 with Retry-After and stores
// nothing; once the sends finish, the next POST is accepted again (README,
// Sending: "queue full: 503 with Retry-After"; send.queue_size).
func TestSendQueueFullIs503WithRetryAfter(t *testing.T) {
	sessions := &heldSessions{release: make(chan struct{})}
	store := &pendingStore{}
	sender := outgoing.New(outgoing.Options{Sessions: sessions, Store: store, Workers: 1, QueueSize: 1})
	released := false
	release := func() {
		if !released {
			released = true
			close(sessions.release)
		}
	}
	t.Cleanup(func() { release(); _ = sender.Close(context.Background()) })

	s := New(Options{Accounts: queueAccounts{}, Messages: struct{ MessageStore }{}, Sender: sender, Media: queueMedia{}})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	url := "http://" + s.Addr() + "/v1/accounts/acme/messages"
	post := func(text string) (*http.Response, []byte) {
		return do(t, "POST", url, "application/json", fmt.Sprintf(`{"to":"15550000002","text":%q}`, text))
	}

	for _, text := range []string{"sending", "queued"} {
		if resp, body := post(text); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d %s", text, resp.StatusCode, body)
		}
	}
	resp, body := post("one too many")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("full queue: %d %s, want 503", resp.StatusCode, body)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After %q, want 1", ra)
	}
	var problem struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(body, &problem); err != nil || problem.Status != 503 || problem.Detail == "" {
		t.Fatalf("problem %s (%v)", body, err)
	}
	if got := store.texts(); len(got) != 2 {
		t.Fatalf("stored %v: the refused message must not be stored", got)
	}

	// The queue drains: accepted again.
	release()
	poll.Until(t, 30*time.Second, func() error {
		sessions.mu.Lock()
		n := len(sessions.sent)
		sessions.mu.Unlock()
		if n != 2 {
			return fmt.Errorf("%d of 2 sent", n)
		}
		return nil
	})
	poll.Until(t, 30*time.Second, func() error {
		if resp, body := post("after the queue drained"); resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		return nil
	})

	// A stopping sender is unavailable too, with the same hint.
	if err := sender.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, body := post("while stopping"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("stopped sender: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if !errors.Is(func() error { _, _, err := sender.Submit(context.Background(), outgoing.Request{}); return err }(), outgoing.ErrClosed) {
		t.Fatal("Submit after Close is not ErrClosed")
	}
}
