package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/session"
)

// ServerOptions tunes a Server. Zero durations take the defaults in
// brackets; a negative ReadDelay means no read receipts.
type ServerOptions struct {
	Logger *slog.Logger
	// DeliveredDelay is the time from a send (or its delivery to a sim
	// account) to the delivered receipt [300ms].
	DeliveredDelay time.Duration
	// ReadDelay is the time from delivered to read [1.5s].
	ReadDelay time.Duration
	// PingInterval is how often each connection is pinged [1s]; one that
	// does not answer within PingTimeout [2s] is closed, as WhatsApp drops
	// a client that stopped answering (a paused process).
	PingInterval, PingTimeout time.Duration
}

// Server is the sim network served to daemons over WebSocket (see
// remote_wire.go). Its methods are for the process that runs it: tests and
// wildcatd sim serve inject inbound messages and read what it recorded.
type Server struct {
	opts    ServerOptions
	log     *slog.Logger
	builder *Network // builds messages exactly as the in-process network does

	mu       sync.Mutex
	accounts map[string]*remoteAccount
	byUser   map[string]string // JID or LID user -> account id
	overlaps []Overlap
	conns    []ConnRecord
	nextConn int
	closed   bool
	live     map[*serverConn]struct{}
	wg       sync.WaitGroup
}

// Overlap is one moment an account was connected from two places at once.
type Overlap struct {
	Account string    `json:"account"`
	At      time.Time `json:"at"`
	Old     string    `json:"old"` // peer label of the connection already there
	New     string    `json:"new"`
}

// ConnRecord is one connection of an account: who, from when, until when
// (zero while connected).
type ConnRecord struct {
	ID      int       `json:"id"`
	Account string    `json:"account"`
	Peer    string    `json:"peer"`
	From    time.Time `json:"from"`
	Until   time.Time `json:"until,omitzero"`
	Reason  string    `json:"reason,omitempty"`
}

// SentMessage is a message an account sent through the server.
type SentMessage struct {
	Account string    `json:"account"`
	To      string    `json:"to"`
	ID      string    `json:"id"`
	Text    string    `json:"text,omitempty"`
	Peer    string    `json:"peer"` // the connection it came over
	At      time.Time `json:"at"`
}

type remoteAccount struct {
	id       string
	jid, lid types.JID
	conn     *serverConn // live connection; nil when offline
	pending  []*delivery // not yet acked, by due time then seq
	seq      uint64
	acked    []string // ids of messages the account acknowledged, in order
	ackedSet map[string]bool
	sent     []SentMessage
	wake     chan struct{}
}

type delivery struct {
	seq   uint64
	due   time.Time
	f     frame
	onAck func()
}

// NewServer returns a server with no accounts; they appear when they
// connect or are injected to.
func NewServer(opts ServerOptions) *Server {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.DeliveredDelay, 300*time.Millisecond)
	def(&opts.ReadDelay, 1500*time.Millisecond)
	def(&opts.PingInterval, time.Second)
	def(&opts.PingTimeout, 2*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		opts: opts, log: opts.Logger,
		builder:  New(Options{Logger: opts.Logger}),
		accounts: map[string]*remoteAccount{},
		byUser:   map[string]string{},
		live:     map[*serverConn]struct{}{},
	}
}

// account returns the account, creating it. The caller holds mu.
func (srv *Server) account(id string) *remoteAccount {
	a := srv.accounts[id]
	if a == nil {
		a = &remoteAccount{id: id, jid: JID(id), lid: LID(id), ackedSet: map[string]bool{}, wake: make(chan struct{}, 1)}
		srv.accounts[id] = a
		srv.byUser[a.jid.User] = id
		srv.byUser[a.lid.User] = id
	}
	return a
}

func (a *remoteAccount) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// enqueue adds a delivery for a. The caller holds mu.
func (a *remoteAccount) enqueue(due time.Time, f frame, onAck func()) {
	a.seq++
	d := &delivery{seq: a.seq, due: due, f: f, onAck: onAck}
	d.f.Op, d.f.Seq = opDeliver, d.seq
	i, _ := slices.BinarySearchFunc(a.pending, d, func(x, y *delivery) int {
		if c := x.due.Compare(y.due); c != 0 {
			return c
		}
		return int(x.seq) - int(y.seq)
	})
	a.pending = slices.Insert(a.pending, i, d)
	a.signal()
}

// altOf is the other address of an account the server knows. The caller
// holds mu.
func (srv *Server) altOf(j types.JID) types.JID {
	id, ok := srv.byUser[j.User]
	if !ok {
		return types.EmptyJID
	}
	if j.Server == types.HiddenUserServer {
		return JID(id)
	}
	return LID(id)
}

// Inject queues a message from an external contact for accountID, as
// Network.Inject does in process: it is delivered when the account is
// connected and stays queued until its daemon acknowledges it (Acked).
// Only one-to-one content (text, media, location, reaction) is served
// remotely. It returns the message id.
func (srv *Server) Inject(accountID string, in *Inbound) (string, error) {
	if in.Group != "" || in.Vote != nil {
		return "", fmt.Errorf("%w: the remote sim network serves one-to-one messages only", session.ErrInvalidRequest)
	}
	from, err := ParseAddress(in.From)
	if err != nil {
		return "", err
	}
	at := in.Timestamp
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC().Truncate(time.Second)
	req := &session.SendRequest{Text: in.Text, Media: in.Media, Location: in.Location}
	if in.ReplyTo != "" {
		req.ReplyTo = &session.QuoteRef{MessageID: in.ReplyTo}
	}
	if in.Reaction != nil {
		r := *in.Reaction
		req.Reaction = &r
	}
	msg, err := srv.builder.buildMessage(req, JID(accountID), at)
	if err != nil {
		return "", err
	}
	id := in.ID
	if id == "" {
		id = newMessageID()
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	a := srv.account(accountID)
	info := types.MessageInfo{
		MessageSource: types.MessageSource{Chat: from, Sender: from, SenderAlt: srv.altOf(from)},
		ID:            id, Timestamp: at, PushName: in.PushName, Type: messageType(msg),
	}
	wm, err := encodeMessage(info, msg)
	if err != nil {
		return "", err
	}
	a.enqueue(time.Now(), frame{Kind: kindMessage, Msg: wm}, nil)
	return id, nil
}

// Acked lists the ids of the messages accountID's daemons acknowledged
// (stored), in order.
func (srv *Server) Acked(accountID string) []string {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if a := srv.accounts[accountID]; a != nil {
		return slices.Clone(a.acked)
	}
	return nil
}

// Pending is how many deliveries (messages and receipts) wait for
// accountID's acknowledgement.
func (srv *Server) Pending(accountID string) int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if a := srv.accounts[accountID]; a != nil {
		return len(a.pending)
	}
	return 0
}

// Sent lists what accountID sent, in order.
func (srv *Server) Sent(accountID string) []SentMessage {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if a := srv.accounts[accountID]; a != nil {
		return slices.Clone(a.sent)
	}
	return nil
}

// ConnectedFrom is the peer label of accountID's live connection, "" when
// it is offline.
func (srv *Server) ConnectedFrom(accountID string) string {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if a := srv.accounts[accountID]; a != nil && a.conn != nil {
		return a.conn.peer
	}
	return ""
}

// Overlaps lists every moment an account was connected twice.
func (srv *Server) Overlaps() []Overlap {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return slices.Clone(srv.overlaps)
}

// Connections lists every connection so far, oldest first.
func (srv *Server) Connections() []ConnRecord {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return slices.Clone(srv.conns)
}

// Stats is the server's record, as GET /v1/stats serves it.
type Stats struct {
	Overlaps    []Overlap               `json:"overlaps"`
	Connections []ConnRecord            `json:"connections"`
	Accounts    map[string]AccountStats `json:"accounts"`
}

// AccountStats is one account's part of Stats.
type AccountStats struct {
	ConnectedFrom string `json:"connectedFrom,omitempty"`
	Pending       int    `json:"pending"`
	Acked         int    `json:"acked"`
	Sent          int    `json:"sent"`
}

// Stats returns the server's record.
func (srv *Server) Stats() Stats {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	st := Stats{Overlaps: slices.Clone(srv.overlaps), Connections: slices.Clone(srv.conns), Accounts: map[string]AccountStats{}}
	for id, a := range srv.accounts {
		as := AccountStats{Pending: len(a.pending), Acked: len(a.acked), Sent: len(a.sent)}
		if a.conn != nil {
			as.ConnectedFrom = a.conn.peer
		}
		st.Accounts[id] = as
	}
	return st
}

// Handler serves the network: GET /v1/connect (the daemons' WebSocket),
// POST /v1/accounts/{id}/inbound (inject: {from, text, id, pushName};
// answers 202 with the message id) and GET /v1/stats.
func (srv *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+connectPath, srv.serveConnect)
	mux.HandleFunc("POST /v1/accounts/{id}/inbound", srv.serveInject)
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(srv.Stats())
	})
	return mux
}

func (srv *Server) serveInject(w http.ResponseWriter, r *http.Request) {
	var body struct {
		From     string `json:"from"`
		Text     string `json:"text"`
		ID       string `json:"id"`
		PushName string `json:"pushName"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	id, err := srv.Inject(r.PathValue("id"), &Inbound{From: body.From, Text: body.Text, ID: body.ID, PushName: body.PushName})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"id": id})
}

// Close ends every connection and waits for their goroutines.
func (srv *Server) Close() {
	srv.mu.Lock()
	srv.closed = true
	all := make([]*serverConn, 0, len(srv.live))
	for c := range srv.live {
		all = append(all, c)
	}
	srv.mu.Unlock()
	for _, c := range all {
		c.cancel()
		_ = c.c.CloseNow()
	}
	srv.wg.Wait()
}

// serverConn is one client connection.
type serverConn struct {
	srv    *Server
	c      *websocket.Conn
	acct   *remoteAccount
	peer   string
	rec    int // index in srv.conns
	ctx    context.Context
	cancel context.CancelFunc

	wmu      sync.Mutex // one writer at a time
	inFlight map[uint64]bool
	reason   string // why it ended, set under srv.mu
}

// connWindow bounds deliveries sent and not yet acked on one connection.
const connWindow = 64

func (srv *Server) serveConnect(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("account")
	if id == "" {
		http.Error(w, "account: missing", http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(wireReadLimit)
	ctx, cancel := context.WithCancel(context.Background())
	sc := &serverConn{srv: srv, c: c, peer: q.Get("peer"), ctx: ctx, cancel: cancel, inFlight: map[uint64]bool{}}

	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		cancel()
		_ = c.CloseNow()
		return
	}
	a := srv.account(id)
	sc.acct = a
	old := a.conn
	if old != nil {
		o := Overlap{Account: id, At: time.Now(), Old: old.peer, New: sc.peer}
		srv.overlaps = append(srv.overlaps, o)
		srv.log.Warn("sim account connected twice; the older connection is replaced",
			slog.String("account", id), slog.String("old", o.Old), slog.String("new", o.New))
		old.reason = "replaced"
	}
	a.conn = sc
	srv.nextConn++
	sc.rec = len(srv.conns)
	srv.conns = append(srv.conns, ConnRecord{ID: srv.nextConn, Account: id, Peer: sc.peer, From: time.Now()})
	srv.live[sc] = struct{}{}
	srv.wg.Add(1)
	srv.mu.Unlock()
	if old != nil {
		old.kick()
	}
	defer srv.wg.Done()
	sc.run()
}

// kick closes a replaced connection with closeReplaced.
func (sc *serverConn) kick() {
	go func() {
		_ = sc.c.Close(closeReplaced, "replaced by another connection of this account")
		sc.cancel()
	}()
}

func (sc *serverConn) run() {
	defer sc.end()
	// The client counts itself connected only once it has this: by then
	// the server has it as the account's connection.
	if err := sc.write(frame{Op: opHello}); err != nil {
		return
	}
	go sc.keepalive()
	go sc.pump()
	for {
		f, err := readFrame(sc.ctx, sc.c)
		if err != nil {
			return
		}
		switch f.Op {
		case opAck:
			sc.ack(f.Seq)
		case opSend:
			sc.answer(f.Ref, sc.srv.handleSend(sc, f.Msg))
		case opRead:
			sc.answer(f.Ref, sc.srv.handleRead(sc, f.Receipt))
		case opInject:
			if err := sc.srv.handleInject(sc, f.Ref, f.Msg); err != nil {
				sc.answer(f.Ref, err)
			}
		case opBye:
			sc.detach("bye")
			_ = sc.write(frame{Op: opBye})
			return
		default:
			sc.answer(f.Ref, fmt.Errorf("unknown op %q", f.Op))
		}
	}
}

func (sc *serverConn) write(f frame) error {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	ctx, cancel := context.WithTimeout(sc.ctx, 10*time.Second)
	defer cancel()
	return writeFrame(ctx, sc.c, f)
}

func (sc *serverConn) answer(ref uint64, err error) {
	if ref == 0 {
		return
	}
	f := frame{Op: opOK, Ref: ref}
	if err != nil {
		f = frame{Op: opError, Ref: ref, Error: err.Error()}
	}
	_ = sc.write(f)
}

// detach makes the account offline if this is still its connection.
func (sc *serverConn) detach(reason string) {
	srv := sc.srv
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if sc.acct.conn == sc {
		sc.acct.conn = nil
	}
	if sc.reason == "" {
		sc.reason = reason
	}
	if rec := &srv.conns[sc.rec]; rec.Until.IsZero() {
		rec.Until, rec.Reason = time.Now(), sc.reason
	}
}

func (sc *serverConn) end() {
	sc.detach("closed")
	sc.cancel()
	_ = sc.c.CloseNow()
	sc.srv.mu.Lock()
	delete(sc.srv.live, sc)
	sc.srv.mu.Unlock()
	sc.acct.signal()
}

// keepalive closes the connection when the client stops answering pings.
func (sc *serverConn) keepalive() {
	t := time.NewTicker(sc.srv.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-sc.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(sc.ctx, sc.srv.opts.PingTimeout)
		err := sc.c.Ping(ctx)
		cancel()
		if err != nil && sc.ctx.Err() == nil {
			sc.srv.log.Info("sim client stopped answering; dropped", slog.String("account", sc.acct.id), slog.String("peer", sc.peer))
			sc.detach("ping timeout")
			sc.cancel()
			_ = sc.c.CloseNow()
			return
		}
	}
}

// pump sends the account's due deliveries over this connection.
func (sc *serverConn) pump() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for sc.ctx.Err() == nil {
		out, wait := sc.due(time.Now())
		for _, f := range out {
			if err := sc.write(f); err != nil {
				return
			}
		}
		var tc <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-sc.ctx.Done():
			return
		case <-sc.acct.wake:
		case <-tc:
		}
	}
}

// due picks the deliveries to send now (in order, within the window) and
// how long until the next one is due (0: nothing scheduled).
func (sc *serverConn) due(now time.Time) ([]frame, time.Duration) {
	srv := sc.srv
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if sc.acct.conn != sc {
		return nil, 0
	}
	var out []frame
	for _, d := range sc.acct.pending {
		if d.due.After(now) {
			return out, d.due.Sub(now)
		}
		if sc.inFlight[d.seq] {
			continue
		}
		if len(sc.inFlight) >= connWindow {
			break
		}
		sc.inFlight[d.seq] = true
		out = append(out, d.f)
	}
	return out, 0
}

func (sc *serverConn) ack(seq uint64) {
	srv := sc.srv
	srv.mu.Lock()
	a := sc.acct
	delete(sc.inFlight, seq)
	var onAck func()
	if i := slices.IndexFunc(a.pending, func(d *delivery) bool { return d.seq == seq }); i >= 0 {
		d := a.pending[i]
		a.pending = slices.Delete(a.pending, i, i+1)
		onAck = d.onAck
		if d.f.Kind == kindMessage && d.f.Msg != nil && !a.ackedSet[d.f.Msg.ID] {
			a.ackedSet[d.f.Msg.ID] = true
			a.acked = append(a.acked, d.f.Msg.ID)
		}
	}
	srv.mu.Unlock()
	a.signal()
	if onAck != nil {
		onAck()
	}
}

// scheduleReceipts queues delivered and read receipts from peer for the
// message id to account a. The caller holds mu.
func (srv *Server) scheduleReceipts(a *remoteAccount, peer types.JID, id string, deliveredAt time.Time) {
	r := func(typ types.ReceiptType, at time.Time) {
		a.enqueue(at, frame{Kind: kindReceipt, Receipt: &wireReceipt{
			Peer: peer.String(), PeerAlt: jidString(srv.altOf(peer)), IDs: []string{id}, Type: string(typ), Timestamp: at,
		}}, nil)
	}
	r(types.ReceiptTypeDelivered, deliveredAt)
	if srv.opts.ReadDelay >= 0 {
		r(types.ReceiptTypeRead, deliveredAt.Add(srv.opts.ReadDelay))
	}
}

// handleSend records a message the account sent and carries it to its
// recipient: a sim account of this server, or an external contact that
// just "receives" it.
func (srv *Server) handleSend(sc *serverConn, m *wireMessage) error {
	if m == nil {
		return errors.New("send without a message")
	}
	var msg waE2E.Message
	if err := proto.Unmarshal(m.Proto, &msg); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	to, err := types.ParseJID(m.Chat)
	if err != nil {
		return fmt.Errorf("recipient %q: %w", m.Chat, err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	from := sc.acct
	from.sent = append(from.sent, SentMessage{Account: from.id, To: m.Chat, ID: m.ID, Text: messageText(&msg), Peer: sc.peer, At: time.Now()})
	recipient, onNetwork := srv.byUser[to.User]
	if !onNetwork || recipient == from.id {
		srv.scheduleReceipts(from, to, m.ID, time.Now().Add(srv.opts.DeliveredDelay))
		return nil
	}
	info := types.MessageInfo{
		MessageSource: types.MessageSource{Chat: from.jid, Sender: from.jid, SenderAlt: from.lid},
		ID:            m.ID, Timestamp: m.Timestamp, PushName: m.PushName, Type: m.Type,
	}
	wm, err := encodeMessage(info, &msg)
	if err != nil {
		return err
	}
	srv.accounts[recipient].enqueue(time.Now(), frame{Kind: kindMessage, Msg: wm}, func() {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		srv.scheduleReceipts(from, to, m.ID, time.Now().Add(srv.opts.DeliveredDelay))
	})
	return nil
}

// handleRead carries read receipts to a sim account of this server.
func (srv *Server) handleRead(sc *serverConn, r *wireReceipt) error {
	if r == nil {
		return errors.New("read without a receipt")
	}
	peer, err := types.ParseJID(r.Peer)
	if err != nil {
		return fmt.Errorf("peer %q: %w", r.Peer, err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	id, ok := srv.byUser[peer.User]
	if !ok {
		return nil
	}
	me := sc.acct
	srv.accounts[id].enqueue(time.Now(), frame{Kind: kindReceipt, Receipt: &wireReceipt{
		Peer: me.jid.String(), PeerAlt: me.lid.String(), IDs: r.IDs, Type: string(types.ReceiptTypeRead), Timestamp: time.Now(),
	}}, nil)
	return nil
}

// handleInject queues a message a daemon injected for its own account and
// answers once the account acknowledged it (stored it).
func (srv *Server) handleInject(sc *serverConn, ref uint64, m *wireMessage) error {
	if m == nil {
		return errors.New("inject without a message")
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	sc.acct.enqueue(time.Now(), frame{Kind: kindMessage, Msg: m}, func() { sc.answer(ref, nil) })
	return nil
}
