package outgoing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/clock"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outgoing"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// pace gives slots 10 s apart on the fake clock.
type pace struct {
	clk    *clock.Fake
	mu     sync.Mutex
	next   time.Time
	queued int
}

func (p *pace) Reserve(context.Context, string) (time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := later(p.clk.Now(), p.next)
	p.next = at.Add(10 * time.Second)
	return at, nil
}

func (p *pace) Queued(_ string, d int) {
	p.mu.Lock()
	p.queued += d
	p.mu.Unlock()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

type sessions struct {
	clk  *clock.Fake
	fail error
	mu   sync.Mutex
	sent map[string]time.Time
}

func (s *sessions) Send(_ context.Context, _ string, req *session.SendRequest) (*session.SendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	s.sent[req.ID] = s.clk.Now()
	return &session.SendResult{MessageID: req.ID}, nil
}

func (s *sessions) at(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.sent[id]
	return at, ok
}

type store struct {
	mu      sync.Mutex
	pending map[string]*messages.Message
	failed  map[string]string
}

func (s *store) StorePending(_ context.Context, m *messages.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[m.MessageID]; ok {
		return messages.ErrExists
	}
	m.StoredAt = time.Now()
	s.pending[m.MessageID] = m
	return nil
}

func (s *store) MarkFailed(_ context.Context, _, id, reason string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed[id] = reason
	return true, nil
}

func setup(t *testing.T) (*outgoing.Sender, *clock.Fake, *pace, *sessions, *store) {
	clk := clock.NewFake(t0)
	p := &pace{clk: clk}
	ss := &sessions{clk: clk, sent: map[string]time.Time{}}
	st := &store{pending: map[string]*messages.Message{}, failed: map[string]string{}}
	s := outgoing.New(outgoing.Options{Sessions: ss, Store: st, Workers: 1, QueueSize: 10, Pacer: p, Clock: clk})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, clk, p, ss, st
}

func req(id string) outgoing.Request {
	return outgoing.Request{AccountID: "acme", Send: &session.SendRequest{ID: id, To: "1@s.whatsapp.net", Text: id}}
}

// TestSendGoesAtOnceOrWaitsForItsSlot: a rule's or plugin's send whose slot
// is now is sent in the call (its error is the caller's, nothing stored);
// one that must wait is stored as pending with the account's JID and sent
// at its slot; the same send again (a re-run event) is not sent twice.
func TestSendGoesAtOnceOrWaitsForItsSlot(t *testing.T) {
	s, clk, p, ss, st := setup(t)
	own := func() string { return "15550000001@s.whatsapp.net" }
	if at, err := s.Send(context.Background(), req("A"), own); err != nil || !at.Equal(t0) {
		t.Fatalf("first send: %s, %v", at, err)
	}
	if at, ok := ss.at("A"); !ok || !at.Equal(t0) || len(st.pending) != 0 {
		t.Fatalf("first send sent at %s (%v), %d stored; want sent now, nothing stored", at, ok, len(st.pending))
	}
	if at, err := s.Send(context.Background(), req("B"), own); err != nil || !at.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("second send: %s, %v", at, err)
	}
	if at, err := s.Send(context.Background(), req("B"), own); err != nil || at.IsZero() {
		t.Fatalf("the same send again: %s, %v", at, err)
	}
	st.mu.Lock()
	b := st.pending["B"]
	st.mu.Unlock()
	if b == nil || b.From != own() || b.Text != "B" {
		t.Fatalf("waiting send stored as %+v", b)
	}
	if _, sent := ss.at("B"); sent {
		t.Fatal("sent before its slot")
	}
	if p.queued != 1 {
		t.Fatalf("queued %d, want 1", p.queued)
	}
	clk.Advance(10 * time.Second)
	poll.Until(t, 10*time.Second, func() error {
		if at, ok := ss.at("B"); !ok || !at.Equal(t0.Add(10*time.Second)) {
			return fmt.Errorf("B sent at %s (%v)", at, ok)
		}
		return nil
	})
	// An immediate send's error is the caller's.
	clk.Advance(time.Minute)
	ss.mu.Lock()
	ss.fail = session.ErrWrongState
	ss.mu.Unlock()
	if _, err := s.Send(context.Background(), req("C"), own); !errors.Is(err, session.ErrWrongState) {
		t.Fatalf("failing immediate send: %v", err)
	}
}

// TestCloseGivesUpWaitingSends: sends still waiting for their slot at
// shutdown are marked failed (not kept across a restart, and the client
// must learn it), and the stale-send sweep is told the oldest waiting.
func TestCloseGivesUpWaitingSends(t *testing.T) {
	s, _, p, ss, st := setup(t)
	if _, ok := s.OldestWaiting(); ok {
		t.Fatal("something waits in a new sender")
	}
	for _, id := range []string{"A", "B", "C"} {
		if _, _, err := s.Submit(context.Background(), req(id)); err != nil {
			t.Fatal(err)
		}
	}
	st.mu.Lock()
	b := st.pending["B"].StoredAt
	st.mu.Unlock()
	if oldest, ok := s.OldestWaiting(); !ok || !oldest.Equal(b) {
		t.Fatalf("oldest waiting %s (%v), want B's %s", oldest, ok, b)
	}
	poll.Until(t, 10*time.Second, func() error {
		if _, ok := ss.at("A"); !ok {
			return errors.New("A not sent")
		}
		return nil
	})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.failed) != 2 || st.failed["B"] == "" || st.failed["C"] == "" {
		t.Fatalf("failed at shutdown: %v, want B and C", st.failed)
	}
	if p.queued != 0 {
		t.Fatalf("queued %d after Close", p.queued)
	}
}

// Rule and plugin sends meet the same length limit as REST sends: a text,
// caption or edit over MaxTextChars is refused, naming the field, before
// anything is stored, reserved or sent; exactly the limit goes.
func TestRuleAndPluginSendsAreLimitedInLength(t *testing.T) {
	s, _, _, ss, st := setup(t)
	over := strings.Repeat("é", outgoing.MaxTextChars+1)
	for _, c := range []struct {
		field string
		send  *session.SendRequest
	}{
		{"text", &session.SendRequest{ID: "T1", To: "1@s.whatsapp.net", Text: over}},
		{"caption", &session.SendRequest{ID: "T2", To: "1@s.whatsapp.net", Media: &session.MediaSend{Kind: session.MediaImage, Data: []byte("x"), Caption: over}}},
		{"edit.text", &session.SendRequest{ID: "T3", To: "1@s.whatsapp.net", Edit: &session.EditSend{MessageID: "M", Text: over}}},
	} {
		_, err := s.Send(context.Background(), outgoing.Request{AccountID: "acme", Send: c.send}, nil)
		if !errors.Is(err, outgoing.ErrTooLong) || !strings.HasPrefix(err.Error(), c.field+" of ") {
			t.Fatalf("%s over the limit: %v", c.field, err)
		}
		if _, sent := ss.at(c.send.ID); sent {
			t.Fatalf("%s over the limit was sent", c.field)
		}
	}
	if len(st.pending) != 0 {
		t.Fatalf("%d refused sends were stored", len(st.pending))
	}
	ok := req("T4")
	ok.Send.Text = over[:len(over)-2] // exactly MaxTextChars characters
	if _, err := s.Send(context.Background(), ok, nil); err != nil {
		t.Fatalf("a text of exactly the limit: %v", err)
	}
	if _, sent := ss.at("T4"); !sent {
		t.Fatal("a text of exactly the limit was not sent")
	}
}

// Rule and plugin sends meet the REST send's poll checks: a poll WhatsApp
// would not take is refused, naming the field, before anything is stored,
// reserved or sent.
func TestRuleAndPluginPollsAreChecked(t *testing.T) {
	s, _, _, ss, st := setup(t)
	twelve := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}
	for _, c := range []struct {
		field string
		poll  session.PollSend
	}{
		{"poll.options", session.PollSend{Name: "Q", Options: []string{"a"}}},
		{"poll.options", session.PollSend{Name: "Q", Options: append(twelve, "m")}},
		{"poll.options[2]", session.PollSend{Name: "Q", Options: []string{"a", "b", "a"}}},
		{"poll.options[0]", session.PollSend{Name: "Q", Options: []string{"", "b"}}},
		{"poll.options[1]", session.PollSend{Name: "Q", Options: []string{"a", strings.Repeat("x", outgoing.MaxPollOptionChars+1)}}},
		{"poll.name", session.PollSend{Name: " ", Options: []string{"a", "b"}}},
		{"poll.name", session.PollSend{Name: strings.Repeat("q", outgoing.MaxPollNameChars+1), Options: []string{"a", "b"}}},
		{"poll.selectableCount", session.PollSend{Name: "Q", Options: []string{"a", "b"}, SelectableCount: 3}},
	} {
		p := c.poll
		send := &session.SendRequest{ID: "P-" + c.field, To: "1@s.whatsapp.net", Poll: &p}
		_, err := s.Send(context.Background(), outgoing.Request{AccountID: "acme", Send: send}, nil)
		var fe *outgoing.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, session.ErrInvalidRequest) {
			t.Fatalf("%s: %v", c.field, err)
		}
		if _, sent := ss.at(send.ID); sent {
			t.Fatalf("%s: refused poll was sent", c.field)
		}
	}
	if len(st.pending) != 0 {
		t.Fatalf("%d refused polls were stored", len(st.pending))
	}
	ok := req("P-ok")
	ok.Send.Text = ""
	ok.Send.Poll = &session.PollSend{Name: strings.Repeat("q", outgoing.MaxPollNameChars), Options: twelve, SelectableCount: 12}
	if _, err := s.Send(context.Background(), ok, nil); err != nil {
		t.Fatalf("a poll at every limit: %v", err)
	}
	if _, sent := ss.at("P-ok"); !sent {
		t.Fatal("a poll at every limit was not sent")
	}
}
