package watest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types/events"
)

// DropConnection cuts the companion's connection without a goodbye, as a
// network failure would. whatsmeow notices, emits events.Disconnected and,
// with EnableAutoReconnect, logs in again; unacknowledged messages are
// redelivered at that login. It reports whether there was a connection.
func (a *Account) DropConnection() bool {
	a.srv.mu.Lock()
	c := a.conn
	a.srv.mu.Unlock()
	if c == nil {
		return false
	}
	c.closeNow("dropped by the test")
	return true
}

// DropConnections cuts every client connection, logged in or not.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow("dropped by the test")
	}
}

// LogOutFromPhone removes the companion device as the phone's "Linked
// devices → Log out" does: a connected client gets stream error 401
// device_removed (events.LoggedOut with OnConnect false); any later login
// fails with reason 401 (events.LoggedOut with OnConnect true).
func (a *Account) LogOutFromPhone() {
	a.srv.mu.Lock()
	a.removed = true
	c := a.conn
	a.srv.notify()
	a.srv.mu.Unlock()
	if c == nil {
		return
	}
	err := c.send(waBinary.Node{
		Tag:     "stream:error",
		Attrs:   waBinary.Attrs{"code": "401"},
		Content: []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": "device_removed"}}},
	})
	if err != nil {
		a.srv.logf("%v", err)
	}
	c.closeSoon("logged out from the phone")
}

// RefuseLogin makes the companion's next login fail with <failure
// reason=…>. A logged-out reason (401, 403, 406…) also unlinks the device,
// as it does on WhatsApp; others (503, 500) leave it linked, and whatsmeow
// retries those on its own. Each call refuses one login.
func (a *Account) RefuseLogin(reason events.ConnectFailureReason) {
	a.srv.mu.Lock()
	defer a.srv.mu.Unlock()
	a.refusals = append(a.refusals, int(reason))
}

// LoggedOut reports whether the companion device is no longer linked.
func (a *Account) LoggedOut() bool {
	a.srv.mu.Lock()
	defer a.srv.mu.Unlock()
	return a.removed
}

// Stall holds client IQs back until released.
type Stall struct {
	srv      *Server
	match    string
	released chan struct{}
	once     sync.Once
	held     int // guarded by srv.mu
}

// StallIQ leaves unanswered every client IQ whose xmlns, type or first
// child's tag equals match ("usync", "passive", "media_conn", "get"…), until
// the stall is released; Release then answers them. Use it to see how the
// driver copes with a slow WhatsApp.
func (s *Server) StallIQ(match string) *Stall {
	st := &Stall{srv: s, match: match, released: make(chan struct{})}
	s.mu.Lock()
	s.stalls = append(s.stalls, st)
	s.mu.Unlock()
	return st
}

// Release answers the held IQs and stops holding new ones. It is idempotent.
func (st *Stall) Release() {
	st.once.Do(func() {
		s := st.srv
		s.mu.Lock()
		s.stalls = slices.DeleteFunc(s.stalls, func(x *Stall) bool { return x == st })
		s.mu.Unlock()
		close(st.released)
	})
}

// WaitHeld waits until the stall holds (or held) at least n IQs.
func (st *Stall) WaitHeld(ctx context.Context, n int) error {
	return st.srv.waitFor(ctx, fmt.Sprintf("%d IQs matching %q to stall", n, st.match), func() bool {
		return st.held >= n
	})
}

// matchStall returns the stall that holds node, counting it, or nil.
func (s *Server) matchStall(node *waBinary.Node) *Stall {
	xmlns, _ := node.Attrs["xmlns"].(string)
	typ, _ := node.Attrs["type"].(string)
	var child string
	if children := node.GetChildren(); len(children) > 0 {
		child = children[0].Tag
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.stalls {
		if st.match == xmlns || st.match == typ || st.match == child {
			st.held++
			s.notify()
			return st
		}
	}
	return nil
}
