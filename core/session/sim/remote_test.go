package sim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// remoteNet serves a sim network over loopback for the test.
func remoteNet(t *testing.T, opts sim.ServerOptions) (*sim.Server, string) {
	t.Helper()
	if opts.DeliveredDelay == 0 {
		opts.DeliveredDelay = time.Millisecond
	}
	if opts.ReadDelay == 0 {
		opts.ReadDelay = time.Millisecond
	}
	srv := sim.NewServer(opts)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return srv, hs.URL
}

// remoteWorld is a daemon (manager + sim driver) on the remote network.
func remoteWorld(t *testing.T, st stores, url, peer string) *world {
	return newWorldOn(t, st, sim.Options{NetworkURL: url, Peer: peer})
}

func (w *world) has(accountID, messageID string) bool {
	_, err := w.msgs.Get(context.Background(), accountID, messageID)
	return err == nil
}

func waitAcked(t *testing.T, srv *sim.Server, account, id string) {
	t.Helper()
	poll.Until(t, 30*time.Second, func() error {
		if !slices.Contains(srv.Acked(account), id) {
			return fmt.Errorf("%s not acked by %s (pending %d)", id, account, srv.Pending(account))
		}
		return nil
	})
}

// TestRemoteInboundIsAckedOnlyOnceStored: an injected message reaches the
// daemon over the WebSocket; while the store refuses it the server keeps
// it (not acked), and once stored it is acked.
func TestRemoteInboundIsAckedOnlyOnceStored(t *testing.T) {
	srv, url := remoteNet(t, sim.ServerOptions{})
	w := remoteWorld(t, newStores(t, storetest.SQLite), url, "d1")
	storeDown := errors.New("store down")
	refused := make(chan struct{}, 1)
	w.mu.Lock()
	w.gate = func(ev *event.Event) error {
		if ev.Kind == event.KindMessageReceived {
			select {
			case refused <- struct{}{}:
			default:
			}
			return storeDown
		}
		return nil
	}
	w.mu.Unlock()
	w.connect("a")
	if got := srv.ConnectedFrom("a"); got != "d1" {
		t.Fatalf("connected from %q, want d1", got)
	}
	id, err := srv.Inject("a", &sim.Inbound{From: "15550001111", Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	<-refused
	if srv.Acked("a") != nil || srv.Pending("a") != 1 {
		t.Fatalf("refused message: acked %v, pending %d; want not acked, 1 pending", srv.Acked("a"), srv.Pending("a"))
	}
	w.mu.Lock()
	w.gate = nil
	w.mu.Unlock()
	waitAcked(t, srv, "a", id)
	if !w.has("a", id) {
		t.Fatal("acked message is not stored")
	}
}

// TestRemoteRedeliversUnackedAfterReconnect: a daemon that goes away before
// storing a message gets it again from the server on the next connection
// (a new daemon on the same store).
func TestRemoteRedeliversUnackedAfterReconnect(t *testing.T) {
	srv, url := remoteNet(t, sim.ServerOptions{})
	st := newStores(t, storetest.SQLite)
	w1 := remoteWorld(t, st, url, "d1")
	w1.mu.Lock()
	w1.gate = func(ev *event.Event) error {
		if ev.Kind == event.KindMessageReceived {
			return errors.New("store down")
		}
		return nil
	}
	w1.mu.Unlock()
	w1.connect("a")
	id, err := srv.Inject("a", &sim.Inbound{From: "15550001111", Text: "keep me"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w1.mgr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		if p := srv.ConnectedFrom("a"); p != "" {
			return fmt.Errorf("still connected from %s", p)
		}
		return nil
	})
	if srv.Acked("a") != nil {
		t.Fatalf("acked %v before any daemon stored it", srv.Acked("a"))
	}

	w2 := remoteWorld(t, st, url, "d2")
	if _, err := w2.mgr.Connect(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, srv, "a", id)
	if !w2.has("a", id) {
		t.Fatal("redelivered message is not stored")
	}
	if o := srv.Overlaps(); len(o) != 0 {
		t.Fatalf("overlaps %v; the first daemon said goodbye before the second came", o)
	}
}

// TestRemoteSecondConnectionIsRecordedAndReplaces: the same account
// connected from two daemons is what the server exists to catch: it
// records the overlap and, like WhatsApp, replaces the older connection,
// whose session stops without reconnecting.
func TestRemoteSecondConnectionIsRecordedAndReplaces(t *testing.T) {
	srv, url := remoteNet(t, sim.ServerOptions{})
	w1 := remoteWorld(t, newStores(t, storetest.SQLite), url, "d1")
	w2 := remoteWorld(t, newStores(t, storetest.SQLite), url, "d2")
	w1.connect("a")
	w2.connect("a")
	o := srv.Overlaps()
	if len(o) != 1 || o[0].Account != "a" || o[0].Old != "d1" || o[0].New != "d2" {
		t.Fatalf("overlaps %+v, want one: a from d1 then d2", o)
	}
	poll.Until(t, 30*time.Second, func() error {
		for _, ev := range w1.events("a", event.KindAccountDisconnected) {
			if strings.Contains(ev.Account.Reason, "replaced") {
				return nil
			}
		}
		return errors.New("the replaced session has not reported it")
	})
	if got := srv.ConnectedFrom("a"); got != "d2" {
		t.Fatalf("connected from %q, want d2", got)
	}
	id, err := srv.Inject("a", &sim.Inbound{From: "15550001111", Text: "to the new one"})
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, srv, "a", id)
	if !w2.has("a", id) || w1.has("a", id) {
		t.Fatalf("stored by d2: %v, by d1: %v; want d2 only", w2.has("a", id), w1.has("a", id))
	}
	if n := len(srv.Overlaps()); n != 1 {
		t.Fatalf("%d overlaps; the replaced session reconnected", n)
	}
}

// TestRemoteSendsAcrossDaemons: an account on one daemon writes to an
// account on another and to an outside contact; the server records both
// sends, the recipient stores the message, and the receipts come back.
func TestRemoteSendsAcrossDaemons(t *testing.T) {
	srv, url := remoteNet(t, sim.ServerOptions{ReadDelay: -1}) // read receipts only when b reads
	w1 := remoteWorld(t, newStores(t, storetest.SQLite), url, "d1")
	w2 := remoteWorld(t, newStores(t, storetest.SQLite), url, "d2")
	w1.connect("a")
	w2.connect("b")

	res := w1.send("a", "b", "hi b")
	poll.Until(t, 30*time.Second, func() error {
		m, err := w2.msgs.Get(context.Background(), "b", res.MessageID)
		if err != nil {
			return err
		}
		if m.Text != "hi b" || m.From != sim.JID("a").String() {
			return fmt.Errorf("b stored %q from %s", m.Text, m.From)
		}
		return nil
	})
	w1.waitStatus("a", res.MessageID, messages.StatusDelivered)
	if err := w2.mgr.MarkRead(context.Background(), "b", sim.JID("a").String(), sim.JID("a").String(), []string{res.MessageID}); err != nil {
		t.Fatal(err)
	}
	w1.waitStatus("a", res.MessageID, messages.StatusRead)

	ext, err := w1.mgr.Send(context.Background(), "a", &session.SendRequest{To: "15550002222@s.whatsapp.net", Text: "hi outside"})
	if err != nil {
		t.Fatal(err)
	}
	w1.waitStatus("a", ext.MessageID, messages.StatusDelivered)
	sent := srv.Sent("a")
	if len(sent) != 2 || sent[0].Text != "hi b" || sent[1].Text != "hi outside" || sent[1].Peer != "d1" {
		t.Fatalf("server recorded sends %+v", sent)
	}

	if _, err := w1.mgr.Send(context.Background(), "a", &session.SendRequest{To: sim.GroupJIDFor("a", 1), Text: "group"}); !errors.Is(err, sim.ErrRemoteOnly) {
		t.Fatalf("group send on the remote network: %v, want ErrRemoteOnly", err)
	}
}

// TestRemoteInjectThroughTheDaemon: the daemon's own Inject (the REST sim
// inbound route) goes through the network and returns once stored.
func TestRemoteInjectThroughTheDaemon(t *testing.T) {
	srv, url := remoteNet(t, sim.ServerOptions{})
	w := remoteWorld(t, newStores(t, storetest.SQLite), url, "d1")
	w.connect("a")
	ev, err := w.net.Inject(context.Background(), "a", &sim.Inbound{From: "15550001111", Text: "via daemon"})
	if err != nil {
		t.Fatal(err)
	}
	if !w.has("a", ev.Message.MessageID) {
		t.Fatal("Inject returned before the message was stored")
	}
	if !slices.Contains(srv.Acked("a"), ev.Message.MessageID) {
		t.Fatalf("server acked %v", srv.Acked("a"))
	}
}

// TestRemoteDropsSilentClients: a client that stops answering pings (a
// paused process) is dropped, so the account is offline on the server.
func TestRemoteDropsSilentClients(t *testing.T) {
	srv, url := remoteNet(t, sim.ServerOptions{PingInterval: 20 * time.Millisecond, PingTimeout: 500 * time.Millisecond})
	ctx := context.Background()
	// A client that never reads never answers a ping.
	c, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1)+"/v1/connect?account=a&peer=silent", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	poll.Until(t, 30*time.Second, func() error {
		cs := srv.Connections()
		if len(cs) != 1 || cs[0].Until.IsZero() {
			return fmt.Errorf("connections %+v", cs)
		}
		if cs[0].Reason != "ping timeout" {
			return fmt.Errorf("ended for %q", cs[0].Reason)
		}
		return nil
	})
	if srv.ConnectedFrom("a") != "" {
		t.Fatal("silent client still counted as connected")
	}
	// A live session answers pings and stays.
	w := remoteWorld(t, newStores(t, storetest.SQLite), url, "d1")
	w.connect("b")
	id, err := srv.Inject("b", &sim.Inbound{From: "15550001111", Text: "still there"})
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, srv, "b", id)
	for _, c := range srv.Connections() {
		if c.Account == "b" && !c.Until.IsZero() {
			t.Fatalf("a session that answers pings was dropped: %+v", c)
		}
	}
}

// TestRemoteDroppedConnectionReconnects: DropConnection on the remote
// network says goodbye and comes back; what was injected meanwhile
// arrives.
func TestRemoteDroppedConnectionReconnects(t *testing.T) {
	srv, url := remoteNet(t, sim.ServerOptions{})
	w := remoteWorld(t, newStores(t, storetest.SQLite), url, "d1")
	w.connect("a")
	if err := w.net.DropConnection("a"); err != nil {
		t.Fatal(err)
	}
	id, err := srv.Inject("a", &sim.Inbound{From: "15550001111", Text: "while away"})
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(t, srv, "a", id)
	w.waitState("a", session.StateConnected)
	if n := len(srv.Connections()); n != 2 {
		t.Fatalf("%d connections, want 2 (before and after the drop)", n)
	}
	if len(srv.Overlaps()) != 0 {
		t.Fatalf("overlaps %v", srv.Overlaps())
	}
}
