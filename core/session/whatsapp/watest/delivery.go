package watest

import (
	"context"
	"fmt"
	"slices"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// delivery is a node the double owes a companion until the companion
// acknowledges it: a contact's message (acknowledged by a receipt or an
// ack) or a contact's receipt (acknowledged by an ack of class receipt).
// Unacknowledged deliveries are sent again on every login, as WhatsApp
// delivers offline messages, and on RedeliverUnacked.
type delivery struct {
	key      string
	id       types.MessageID
	to       *Account
	node     waBinary.Node
	attempts int         // guarded by srv.mu
	acks     []ClientAck // guarded by srv.mu
}

// ClientAck is one acknowledgement by the client of something the double
// delivered.
type ClientAck struct {
	MessageID types.MessageID
	// Receipt is true when the client answered with a receipt; Type is then
	// the receipt type: "" (delivered), "inactive" (delivered while not
	// marked online), "read", "retry" (could not decrypt)… Otherwise the
	// client answered with a bare ack and Error is its error code (0 for a
	// plain ack, e.g. 491 for a message that did not parse).
	Receipt bool
	Type    types.ReceiptType
	Error   int
	// Attempts is how many times the double had sent the node when this
	// acknowledgement arrived.
	Attempts int
}

func messageKey(id types.MessageID) string { return "message/" + id }

func receiptKey(id types.MessageID, typ types.ReceiptType) string {
	return "receipt/" + string(typ) + "/" + id
}

// deliver sends d to its account now if it is logged in, and keeps it until
// acknowledged.
func (s *Server) deliver(d *delivery) {
	s.mu.Lock()
	s.deliveries[d.key] = d
	d.to.pending = append(d.to.pending, d)
	c := d.to.conn
	if c != nil {
		d.attempts++
	}
	s.notify()
	s.mu.Unlock()
	if c != nil {
		if err := c.send(d.node); err != nil {
			s.logf("%v", err)
		}
	}
}

// acknowledge records ack for the delivery under key. Only the first
// acknowledgement settles a delivery; later ones (a read receipt after the
// delivery receipt) are recorded too.
func (s *Server) acknowledge(c *conn, key string, ack ClientAck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deliveries[key]
	if d == nil {
		// A receipt for a message the client received from elsewhere, or a
		// read receipt for a contact's message: keep it as its own record.
		d = &delivery{key: key, id: ack.MessageID}
		s.deliveries[key] = d
	}
	ack.Attempts = d.attempts
	d.acks = append(d.acks, ack)
	if d.to != nil {
		d.to.pending = slices.DeleteFunc(d.to.pending, func(p *delivery) bool { return p == d })
	}
	s.notify()
	if ack.Receipt && ack.Type == types.ReceiptTypeRetry {
		s.logf("%s: client could not decrypt %s and asked for a retry, which the double does not do", c.name, ack.MessageID)
	}
}

// handleClientReceipt records a receipt from the client: for a contact's
// message (delivery, retry) or about it (read, played).
func (s *Server) handleClientReceipt(c *conn, node *waBinary.Node) {
	ag := node.AttrGetter()
	id := ag.OptionalString("id")
	typ := types.ReceiptType(ag.OptionalString("type"))
	ids := []string{id}
	for _, item := range childrenOf(node.GetChildByTag("list")) {
		if itemID, ok := item.Attrs["id"].(string); ok && item.Tag == "item" {
			ids = append(ids, itemID)
		}
	}
	for _, mid := range ids {
		s.acknowledge(c, messageKey(mid), ClientAck{MessageID: mid, Receipt: true, Type: typ})
	}
	if typ == types.ReceiptTypeServerError {
		// A media retry request for the account's phone, not a receipt
		// for the contact.
		s.handleMediaRetryReceipt(c, node)
	}
	// WhatsApp acknowledges every receipt it accepts.
	attrs := waBinary.Attrs{"class": "receipt", "id": id}
	if to, ok := node.Attrs["to"]; ok {
		attrs["from"] = to
	}
	if typ != "" {
		attrs["type"] = string(typ)
	}
	if err := c.send(waBinary.Node{Tag: "ack", Attrs: attrs}); err != nil {
		s.logf("%v", err)
	}
}

// handleClientAck records an ack: of a contact's message (when the client
// could not handle it) or of a contact's receipt.
func (s *Server) handleClientAck(c *conn, node *waBinary.Node) {
	ag := node.AttrGetter()
	id := ag.OptionalString("id")
	ack := ClientAck{MessageID: id, Error: ag.OptionalInt("error")}
	switch ag.OptionalString("class") {
	case "message":
		s.acknowledge(c, messageKey(id), ack)
	case "receipt":
		s.acknowledge(c, receiptKey(id, types.ReceiptType(ag.OptionalString("type"))), ack)
	case "notification":
		s.acknowledge(c, notificationKey(id), ack)
	}
}

// WaitAck waits until the client acknowledged the message with the given ID
// that a contact sent, and returns the first acknowledgement.
func (s *Server) WaitAck(ctx context.Context, id types.MessageID) (ClientAck, error) {
	var ack ClientAck
	err := s.waitFor(ctx, "the client to acknowledge "+id, func() bool {
		if d := s.deliveries[messageKey(id)]; d != nil && len(d.acks) > 0 {
			ack = d.acks[0]
			return true
		}
		return false
	})
	return ack, err
}

// WaitReceipt waits until the client sent a receipt of the given type for
// the message id, for example types.ReceiptTypeRead after Client.MarkRead.
func (s *Server) WaitReceipt(ctx context.Context, id types.MessageID, typ types.ReceiptType) error {
	return s.waitFor(ctx, fmt.Sprintf("a %q receipt for %s", typ, id), func() bool {
		d := s.deliveries[messageKey(id)]
		return d != nil && slices.ContainsFunc(d.acks, func(a ClientAck) bool { return a.Receipt && a.Type == typ })
	})
}

// Acks returns every acknowledgement the client sent for the message id.
func (s *Server) Acks(id types.MessageID) []ClientAck {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.deliveries[messageKey(id)]; d != nil {
		return slices.Clone(d.acks)
	}
	return nil
}

// Unacked lists the IDs of messages to the account's companion that it has
// not acknowledged yet.
func (a *Account) Unacked() []types.MessageID {
	a.srv.mu.Lock()
	defer a.srv.mu.Unlock()
	var ids []types.MessageID
	for _, d := range a.pending {
		if d.key == messageKey(d.id) {
			ids = append(ids, d.id)
		}
	}
	return ids
}

// RedeliverUnacked sends every unacknowledged delivery again to every
// logged-in companion, as WhatsApp does when an ack is overdue. It returns
// how many nodes it sent. Deliveries to offline companions wait for their
// next login, which redelivers them anyway.
func (s *Server) RedeliverUnacked() int {
	type send struct {
		c *conn
		n waBinary.Node
	}
	var sends []send
	s.mu.Lock()
	for _, a := range s.accounts {
		if a.conn == nil {
			continue
		}
		for _, d := range a.pending {
			d.attempts++
			sends = append(sends, send{a.conn, d.node})
		}
	}
	s.mu.Unlock()
	for _, x := range sends {
		if err := x.c.send(x.n); err != nil {
			s.logf("%v", err)
		}
	}
	return len(sends)
}

// Redeliver sends the contact's message id to its account again even if
// it was acknowledged, as WhatsApp does when it lost the ack: the client
// must recognise the duplicate.
func (s *Server) Redeliver(id types.MessageID) error {
	s.mu.Lock()
	d := s.deliveries[messageKey(id)]
	var c *conn
	if d != nil && d.to != nil {
		c = d.to.conn
		if !slices.Contains(d.to.pending, d) {
			d.to.pending = append(d.to.pending, d)
		}
		if c != nil {
			d.attempts++
		}
	}
	s.mu.Unlock()
	if d == nil || d.to == nil {
		return fmt.Errorf("watest: no message %s was delivered by the double", id)
	}
	if c == nil {
		return nil // delivered at the next login
	}
	return c.send(d.node)
}
