package watest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/coder/websocket"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/types"
)

// conn is one client connection, from handshake to close.
type conn struct {
	srv  *Server
	name string
	ws   *websocket.Conn
	t    *noiseTransport

	payload      *waWa6.ClientPayload
	clientStatic [32]byte

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	waiters map[string]chan *waBinary.Node // server→client IQs awaiting an answer

	// Set under srv.mu.
	account *Account // after a successful login
	pair    *pendingPair
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request) (*conn, error) {
	// whatsmeow sends Origin: https://web.whatsapp.com, which is not this host.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(maxFrame + 16)
	c := &conn{srv: s, ws: ws, waiters: map[string]chan *waBinary.Node{}}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	s.mu.Lock()
	s.nextID++
	c.name = fmt.Sprintf("conn%d", s.nextID)
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return c, nil
}

func (c *conn) serve() {
	defer c.finish()
	fc := &frameConn{ws: c.ws}
	hctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.wait)
	hs, err := respond(hctx, fc, c.srv.static, c.srv.certChain)
	cancel()
	if err != nil {
		c.srv.logf("%s: handshake failed: %v", c.name, err)
		return
	}
	c.t, c.payload, c.clientStatic = hs.transport, hs.payload, hs.clientStatic

	if c.payload.Username == nil {
		c.srv.startPairing(c)
	} else if !c.srv.login(c) {
		return
	}
	for {
		node, err := c.t.readNode(c.ctx)
		if err != nil {
			if c.ctx.Err() == nil && !isClosed(err) {
				c.srv.logf("%s: read: %v", c.name, err)
			}
			return
		}
		if c.srv.opts.trace {
			c.srv.logf("%s ← %s", c.name, node.XMLString())
		}
		c.srv.dispatch(c, node)
	}
}

func isClosed(err error) bool {
	var ce websocket.CloseError
	return errors.As(err, &ce) || errors.Is(err, context.Canceled)
}

// finish forgets the connection everywhere once its read loop ends.
func (c *conn) finish() {
	c.closeNow("")
	s := c.srv
	s.mu.Lock()
	delete(s.conns, c)
	if c.pair != nil {
		for _, ref := range c.pair.refs {
			delete(s.pairing, ref)
		}
	}
	if a := c.account; a != nil && a.conn == c {
		a.conn = nil
	}
	s.notify()
	s.mu.Unlock()
	c.mu.Lock()
	for id, ch := range c.waiters {
		close(ch)
		delete(c.waiters, id)
	}
	c.mu.Unlock()
}

// closeNow drops the TCP connection without a close handshake, as a network
// failure would.
func (c *conn) closeNow(reason string) {
	if reason != "" {
		c.srv.logf("%s: closing: %s", c.name, reason)
	}
	c.cancel()
	_ = c.ws.CloseNow()
}

// closeSoon closes the connection after the client had time to handle what
// was sent last: whatsmeow drops queued nodes once its socket closes, so a
// stream error followed at once by a close may never be seen.
func (c *conn) closeSoon(reason string) {
	go func() {
		select {
		case <-time.After(time.Second):
			c.closeNow(reason)
		case <-c.ctx.Done():
		}
	}()
}

func (c *conn) send(node waBinary.Node) error {
	if c.t == nil {
		return errors.New("connection not established")
	}
	if c.srv.opts.trace {
		c.srv.logf("%s → %s", c.name, node.XMLString())
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.wait)
	defer cancel()
	if err := c.t.writeNode(ctx, node); err != nil {
		return fmt.Errorf("%s: send <%s>: %w", c.name, node.Tag, err)
	}
	return nil
}

// request sends a server→client IQ and waits for the client's answer.
func (c *conn) request(ctx context.Context, node waBinary.Node) (*waBinary.Node, error) {
	id, _ := node.Attrs["id"].(string)
	ch := make(chan *waBinary.Node, 1)
	c.mu.Lock()
	c.waiters[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, id)
		c.mu.Unlock()
	}()
	if err := c.send(node); err != nil {
		return nil, err
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: connection closed before the answer to %s", c.name, id)
		}
		return resp, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: waiting for the answer to %s: %w", c.name, id, ctx.Err())
	}
}

// sendIQAsync sends a server→client IQ whose answer nobody awaits; the
// answer is still matched, so it is not reported as unexpected.
func (c *conn) sendIQAsync(node waBinary.Node) {
	id, _ := node.Attrs["id"].(string)
	c.mu.Lock()
	c.waiters[id] = make(chan *waBinary.Node, 1)
	c.mu.Unlock()
	if err := c.send(node); err != nil {
		c.srv.logf("%v", err)
	}
}

// takeWaiter hands an IQ answer to the request waiting for it.
func (c *conn) takeWaiter(node *waBinary.Node) bool {
	id, _ := node.Attrs["id"].(string)
	c.mu.Lock()
	ch, ok := c.waiters[id]
	if ok {
		delete(c.waiters, id)
	}
	c.mu.Unlock()
	if ok {
		ch <- node
	}
	return ok
}

// dispatch handles one node from the client. It runs on the read loop, so
// anything that may wait (a stalled IQ) moves to its own goroutine.
func (s *Server) dispatch(c *conn, node *waBinary.Node) {
	defer s.recoverNode(c, node)
	switch node.Tag {
	case "iq":
		switch typ, _ := node.Attrs["type"].(string); typ {
		case "result", "error":
			if !c.takeWaiter(node) {
				s.logf("%s: unexpected IQ answer %s", c.name, node.XMLString())
			}
		default:
			s.handleIQ(c, node)
		}
	case "receipt":
		s.handleClientReceipt(c, node)
	case "ack":
		s.handleClientAck(c, node)
	case "message":
		s.handleClientMessage(c, node)
	case "presence", "chatstate":
		// Nothing observes presence in the double.
	default:
		s.logf("%s: ignored node %s", c.name, node.XMLString())
	}
}

// recoverNode turns a panic while handling a client node (malformed input
// the handlers did not foresee) into a logged, closed connection.
func (s *Server) recoverNode(c *conn, node *waBinary.Node) {
	if r := recover(); r != nil {
		s.logf("%s: panic handling %s: %v\n%s", c.name, node.XMLString(), r, debug.Stack())
		c.closeNow("panic")
	}
}

// serverJID is the "from" of everything the server itself says.
var serverJID = types.ServerJID
