package watest

import (
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types/events"
)

// login answers a device login: <success> for a known, linked device whose
// Noise key matches the one it paired with, <failure> otherwise. After a
// success it delivers the messages the device has not acknowledged yet, as
// WhatsApp delivers offline messages. It reports whether to keep serving.
func (s *Server) login(c *conn) bool {
	user := strconv.FormatUint(c.payload.GetUsername(), 10)
	device := c.payload.GetDevice()

	s.mu.Lock()
	a := s.accounts[user]
	reason := 0
	switch {
	case a == nil, a.removed, uint32(a.jid.Device) != device, a.noiseKey != c.clientStatic:
		reason = int(events.ConnectFailureLoggedOut)
	case len(a.refusals) > 0:
		reason = a.refusals[0]
		a.refusals = a.refusals[1:]
		if events.ConnectFailureReason(reason).IsLoggedOut() {
			a.removed = true
		}
	}
	var old *conn
	var pending []*delivery
	if reason == 0 {
		old, a.conn, c.account = a.conn, c, a
		pending = append(pending, a.pending...)
		for _, d := range pending {
			d.attempts++
		}
		s.notify()
	}
	s.mu.Unlock()

	if reason != 0 {
		s.logf("%s: refusing login of %s.%d with reason %d", c.name, user, device, reason)
		if err := c.send(waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{
			"reason":   strconv.Itoa(reason),
			"location": "watest",
		}}); err != nil {
			s.logf("%v", err)
			return false
		}
		c.closeSoon("login refused")
		return true
	}
	if old != nil {
		// The device came back before the double noticed its old connection
		// died; WhatsApp keeps only the newest.
		old.closeNow("superseded by " + c.name)
	}
	if err := c.send(waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{
		"t":        strconv.FormatInt(time.Now().Unix(), 10),
		"lid":      a.lid,
		"props":    "1",
		"location": "watest",
	}}); err != nil {
		s.logf("%v", err)
		return false
	}
	for _, d := range pending {
		if err := c.send(d.node); err != nil {
			s.logf("%v", err)
			return false
		}
	}
	// The end of the offline queue, as WhatsApp marks it.
	if err := c.send(waBinary.Node{Tag: "ib", Content: []waBinary.Node{{
		Tag: "offline", Attrs: waBinary.Attrs{"count": strconv.Itoa(len(pending))},
	}}}); err != nil {
		s.logf("%v", err)
		return false
	}
	return true
}

// loginComplete records the post-connect passive IQ, the last thing
// whatsmeow does before it emits events.Connected.
func (s *Server) loginComplete(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := c.account; a != nil && a.conn == c {
		a.logins++
		s.notify()
	}
}
