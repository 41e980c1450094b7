package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// The client side of the remote sim network (remote_wire.go): with
// Options.NetworkURL set, a connected sim session holds a WebSocket to the
// Server instead of reading the in-process inbox.

// ErrRemoteOnly: what was asked is served by the in-process network only
// (groups, status posts, broadcast lists, votes).
var ErrRemoteOnly = fmt.Errorf("%w: the remote sim network serves one-to-one messages only", session.ErrInvalidRequest)

// defaultPeer labels this process's connections on the server.
func defaultPeer() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", h, os.Getpid())
}

// CheckNetworkURL reports whether u can be dialled as a remote sim network
// (http, https, ws or wss with a host).
func CheckNetworkURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return err
	}
	switch p.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("scheme %q is not http, https, ws or wss", p.Scheme)
	}
	if p.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// remoteConn is a session's live connection to the Server.
type remoteConn struct {
	s    *Session
	c    *websocket.Conn
	wmu  sync.Mutex
	mu   sync.Mutex
	refs map[uint64]chan frame
	ref  uint64
	done chan struct{} // closed when run has returned
}

// dialRemote opens the account's connection. The caller holds transition.
func (s *Session) dialRemote(ctx context.Context) (*remoteConn, error) {
	base := strings.TrimSuffix(s.n.opts.NetworkURL, "/")
	q := url.Values{"account": {s.acct.ID}, "name": {s.pushName()}, "peer": {s.n.opts.Peer}}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, base+connectPath+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("connect to the sim network %s: %w", base, err)
	}
	c.SetReadLimit(wireReadLimit)
	if f, err := readFrame(dctx, c); err != nil || f.Op != opHello {
		_ = c.CloseNow()
		if err == nil {
			err = fmt.Errorf("first frame %q, want hello", f.Op)
		}
		return nil, fmt.Errorf("connect to the sim network %s: %w", base, err)
	}
	return &remoteConn{s: s, c: c, refs: map[uint64]chan frame{}, done: make(chan struct{})}, nil
}

func (rc *remoteConn) write(ctx context.Context, f frame) error {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return writeFrame(ctx, rc.c, f)
}

// request sends f and waits for the server's answer.
func (rc *remoteConn) request(ctx context.Context, f frame) error {
	ch := make(chan frame, 1)
	rc.mu.Lock()
	rc.ref++
	f.Ref = rc.ref
	rc.refs[f.Ref] = ch
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		delete(rc.refs, f.Ref)
		rc.mu.Unlock()
	}()
	if err := rc.write(ctx, f); err != nil {
		return fmt.Errorf("sim network: %w", err)
	}
	select {
	case a := <-ch:
		if a.Op == opError {
			return fmt.Errorf("sim network: %s", a.Error)
		}
		return nil
	case <-rc.done:
		return fmt.Errorf("sim account %q lost its connection: %w", rc.s.acct.ID, session.ErrWrongState)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run serves the connection until run ends (the session disconnects or
// closes: an orderly goodbye) or the connection fails (reconnect) or is
// replaced (stop, as on WhatsApp). Deliveries are stored in order by a
// worker, so the reader keeps answering the server's pings while the
// store is slow.
func (rc *remoteConn) run(run context.Context) {
	defer close(rc.done)
	s := rc.s
	queue := make(chan frame, connWindow)
	readErr := make(chan error, 1)
	readCtx, stopRead := context.WithCancel(context.Background())
	defer stopRead()
	go func() {
		defer close(queue)
		for {
			f, err := readFrame(readCtx, rc.c)
			if err != nil {
				readErr <- err
				return
			}
			switch f.Op {
			case opDeliver:
				select {
				case queue <- f:
				case <-readCtx.Done():
					return
				}
			case opOK, opError:
				rc.mu.Lock()
				ch := rc.refs[f.Ref]
				rc.mu.Unlock()
				if ch != nil {
					ch <- f
				}
			case opBye:
				readErr <- nil
				return
			}
		}
	}()
	for {
		select {
		case <-run.Done():
			rc.goodbye()
			return
		case f, ok := <-queue:
			if !ok {
				err := <-readErr
				_ = rc.c.CloseNow()
				s.remoteLost(run, websocket.CloseStatus(err) == closeReplaced, err)
				return
			}
			if err := rc.deliver(run, f); err != nil {
				continue // run ended: the server redelivers it
			}
			if err := rc.write(run, frame{Op: opAck, Seq: f.Seq}); err != nil && run.Err() == nil {
				s.log.Warn("sim ack not sent; the network will redeliver", slog.Any("error", err))
			}
		}
	}
}

// goodbye tells the server this connection is over and waits (briefly)
// for its answer, so the account is offline there before the session's
// Close or Disconnect returns.
func (rc *remoteConn) goodbye() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rc.write(ctx, frame{Op: opBye}); err == nil {
		_ = rc.c.Close(websocket.StatusNormalClosure, "bye")
	}
	_ = rc.c.CloseNow()
}

// deliver stores one delivery, retrying while the store fails; it returns
// an error only when run ends first.
func (rc *remoteConn) deliver(run context.Context, f frame) error {
	s := rc.s
	var evs []*event.Event
	switch {
	case f.Kind == kindMessage && f.Msg != nil:
		m, err := f.Msg.event()
		if err == nil {
			var ev *event.Event
			if ev, err = s.normalizer(event.SourcePhone).Message(m); err == nil {
				evs = []*event.Event{ev}
			}
		}
		if err != nil {
			s.log.Error("sim delivery not normalisable; dropped", slog.Uint64("seq", f.Seq), slog.Any("error", err))
			return nil
		}
	case f.Kind == kindReceipt && f.Receipt != nil:
		r, err := f.Receipt.event()
		if err == nil {
			evs, err = s.normalizer(event.SourcePhone).Receipt(r)
		}
		if err != nil {
			s.log.Error("sim receipt not normalisable; dropped", slog.Uint64("seq", f.Seq), slog.Any("error", err))
			return nil
		}
	default:
		return nil
	}
	for attempt := 1; ; attempt++ {
		err := emitAll(run, s.sink, evs)
		if err == nil {
			return nil
		}
		retry := min(time.Duration(1<<min(attempt, 6))*100*time.Millisecond, 5*time.Second)
		if run.Err() == nil {
			s.log.Warn("sim delivery failed; retrying", slog.Int("attempt", attempt), slog.Duration("retry_in", retry), slog.Any("error", err))
		}
		select {
		case <-run.Done():
			return run.Err()
		case <-time.After(retry):
		}
	}
}

func emitAll(ctx context.Context, sink session.Sink, evs []*event.Event) error {
	for _, ev := range evs {
		if err := sink.Emit(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// remote is the live connection, nil when there is none.
func (s *Session) remote() *remoteConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rc
}

// waitRemote waits until the connection a Disconnect or Logout ended has
// said goodbye.
func (s *Session) waitRemote(ctx context.Context) {
	if rc := s.remote(); rc != nil {
		select {
		case <-rc.done:
		case <-ctx.Done():
		}
	}
}

// remoteLost handles a connection that ended while run was current:
// replaced means another connection of the account took over (stop, as
// whatsmeow does on stream:replaced); anything else is a lost connection,
// re-dialled after ReconnectDelay.
func (s *Session) remoteLost(run context.Context, replaced bool, cause error) {
	s.transition.Lock()
	defer s.transition.Unlock()
	if run.Err() != nil || s.getState() != stateConnected {
		return
	}
	if replaced {
		s.endRun()
		s.setState(stateIdle)
		ev, err := event.NewAccountEvent(event.KindAccountDisconnected, s.acct.ID, time.Now(), event.AccountState{
			State: event.AccountDisconnected, Reason: "stream replaced: the same session connected elsewhere",
		})
		if err == nil {
			err = s.sink.Emit(s.ctx, ev)
		}
		if err != nil {
			s.log.Warn("sim replacement not reported", slog.Any("error", err))
		}
		return
	}
	next := s.newRun()
	s.setState(stateDisconnected)
	ev, err := event.NewAccountEvent(event.KindAccountDisconnected, s.acct.ID, time.Now(), event.AccountState{
		State: event.AccountDisconnected, Reason: "connection to the sim network lost",
	})
	if err == nil {
		err = s.sink.Emit(next, ev)
	}
	if err != nil {
		s.log.Warn("sim disconnect not reported", slog.Any("error", err))
	}
	s.log.Info("sim network connection lost; reconnecting", slog.Any("error", cause))
	s.wg.Go(func() { s.reconnect(next) })
}

// sendRemote hands a sent message to the network, which carries it to its
// recipient and sends the receipts back.
func (s *Session) sendRemote(ctx context.Context, info types.MessageInfo, msg *waE2E.Message) error {
	rc := s.remote()
	if rc == nil {
		return fmt.Errorf("sim account %q is not connected: %w", s.acct.ID, session.ErrWrongState)
	}
	wm, err := encodeMessage(info, msg)
	if err != nil {
		return err
	}
	return rc.request(ctx, frame{Op: opSend, Msg: wm})
}

// injectRemote has the network deliver an inbound message to this session
// and returns once the session stored it.
func (s *Session) injectRemote(ctx context.Context, info types.MessageInfo, msg *waE2E.Message) error {
	rc := s.remote()
	if rc == nil {
		return fmt.Errorf("sim account %q is not connected: %w", s.acct.ID, session.ErrWrongState)
	}
	wm, err := encodeMessage(info, msg)
	if err != nil {
		return err
	}
	return rc.request(ctx, frame{Op: opInject, Msg: wm})
}
