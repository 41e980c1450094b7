package storetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FerretDB v1 runs a conditional update as a query followed by a separate
// write, with no transaction around them: two clients racing
// findOneAndUpdate({_id: x, v: 0}, {$set: {v: 1}}) can both match. Lease
// and claim code is only meaningful on a server where that cannot happen,
// so tests of several daemons on one database put SerialProxy in front of
// FerretDB: it forwards one command at a time across all client
// connections, so each command runs alone and is atomic. It costs
// throughput, which tests can afford.

// MongoDB wire protocol: every message starts with a 16-byte header
// (messageLength, requestID, responseTo, opCode, all little-endian int32).
const (
	wireHeaderLen = 16
	// maxWireMessage bounds what the proxy buffers; MongoDB's own limit is
	// 48 MB.
	maxWireMessage = 48 << 20

	opReply      = 1
	opQuery      = 2004
	opCompressed = 2012
	opMsg        = 2013

	// OP_MSG flagBits.
	msgChecksumPresent = 1 << 0
	msgMoreToCome      = 1 << 1
	msgExhaustAllowed  = 1 << 16
)

// SerialProxy is a MongoDB wire-protocol proxy that serialises commands: a
// global lock is held from forwarding a request upstream until its reply
// has been read, so no two commands of any clients overlap on the server.
//
// It accepts OP_MSG and the legacy OP_QUERY (drivers' first handshake),
// each of which has exactly one reply. It clears exhaustAllowed, so the
// server never streams several replies to one request, and refuses (closes
// the connection) fire-and-forget requests (moreToCome: unacknowledged
// writes, which would run after the lock is released), compressed messages
// (FerretDB never negotiates compression) and other legacy opcodes. A
// tailable awaitData getMore holds the lock while the server waits; the
// daemon uses none.
type SerialProxy struct {
	ln       net.Listener
	upstream string
	log      *slog.Logger

	mu       sync.Mutex // the global command lock
	commands atomic.Int64
	busy     atomic.Int64 // nanoseconds the lock was held

	statMu     sync.Mutex
	perCommand map[string]CommandStats // nil unless CountCommands

	wg      sync.WaitGroup
	connsMu sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
}

// StartSerialProxy listens on listen ("127.0.0.1:0" for a free loopback
// port) and forwards to the MongoDB wire-protocol server at upstream
// (host:port).
func StartSerialProxy(listen, upstream string, log *slog.Logger) (*SerialProxy, error) {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("serial proxy listen %s: %w", listen, err)
	}
	p := &SerialProxy{ln: ln, upstream: upstream, log: log, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the host:port clients connect to.
func (p *SerialProxy) Addr() string { return p.ln.Addr().String() }

// Commands is how many requests have been forwarded.
func (p *SerialProxy) Commands() int64 { return p.commands.Load() }

// Busy is how long the server has been running commands: next to the
// elapsed time, how close it is to saturation.
func (p *SerialProxy) Busy() time.Duration { return time.Duration(p.busy.Load()) }

// CommandStats is the count and server time of one kind of command.
type CommandStats struct {
	Count int
	Busy  time.Duration
}

// CountCommands starts counting commands by name and collection
// (PerCommand), to find what saturates the server.
func (p *SerialProxy) CountCommands() {
	p.statMu.Lock()
	defer p.statMu.Unlock()
	if p.perCommand == nil {
		p.perCommand = map[string]CommandStats{}
	}
}

// PerCommand returns the counts since CountCommands.
func (p *SerialProxy) PerCommand() map[string]CommandStats {
	p.statMu.Lock()
	defer p.statMu.Unlock()
	out := make(map[string]CommandStats, len(p.perCommand))
	for k, v := range p.perCommand {
		out[k] = v
	}
	return out
}

// Close stops accepting, closes every connection and waits for their
// goroutines. Safe to call more than once.
func (p *SerialProxy) Close() {
	p.connsMu.Lock()
	if p.closed {
		p.connsMu.Unlock()
		return
	}
	p.closed = true
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.connsMu.Unlock()
	p.wg.Wait()
}

func (p *SerialProxy) track(c net.Conn) bool {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *SerialProxy) untrack(c net.Conn) {
	p.connsMu.Lock()
	delete(p.conns, c)
	p.connsMu.Unlock()
	_ = c.Close()
}

func (p *SerialProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			_ = c.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			if err := p.serve(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.log.Warn("serial proxy connection ended", slog.Any("error", err))
			}
		}()
	}
}

// serve relays one client connection over its own upstream connection.
func (p *SerialProxy) serve(client net.Conn) error {
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return fmt.Errorf("dial upstream %s: %w", p.upstream, err)
	}
	if !p.track(up) {
		_ = up.Close()
		return net.ErrClosed
	}
	defer p.untrack(up)
	for {
		req, err := readWireMessage(client)
		if err != nil {
			return err
		}
		req, err = prepareRequest(req)
		if err != nil {
			return err
		}
		reply, err := p.roundTrip(up, req)
		if err != nil {
			return err
		}
		if _, err := client.Write(reply); err != nil {
			return fmt.Errorf("write reply to client: %w", err)
		}
	}
}

// roundTrip forwards one request and reads its one reply under the global
// lock.
func (p *SerialProxy) roundTrip(up net.Conn, req []byte) ([]byte, error) {
	queued := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if wait := time.Since(queued); wait > SlowCommand {
		p.log.Warn("command waited for the serial proxy", slog.String("command", commandOf(req)), slog.Duration("waited", wait))
	}
	p.commands.Add(1)
	start := time.Now()
	if _, err := up.Write(req); err != nil {
		return nil, fmt.Errorf("forward request: %w", err)
	}
	reply, err := readWireMessage(up)
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	took := time.Since(start)
	p.busy.Add(int64(took))
	if p.perCommand != nil {
		p.statMu.Lock()
		st := p.perCommand[commandOf(req)]
		st.Count++
		st.Busy += took
		p.perCommand[commandOf(req)] = st
		p.statMu.Unlock()
	}
	if took > SlowCommand {
		p.log.Warn("slow command held the serial proxy", slog.String("command", commandOf(req)), slog.Duration("took", took))
	}
	if opcode(reply) == opMsg && msgFlags(reply)&msgMoreToCome != 0 {
		return nil, errors.New("server streamed a reply (moreToCome) the proxy did not allow")
	}
	return reply, nil
}

// prepareRequest checks that req has exactly one reply and clears the flags
// that would let the server send more than one.
func prepareRequest(req []byte) ([]byte, error) {
	switch op := opcode(req); op {
	case opQuery:
		return req, nil
	case opMsg:
		flags := msgFlags(req)
		if flags&msgMoreToCome != 0 {
			return nil, errors.New("refused OP_MSG with moreToCome: an unacknowledged request cannot be serialised")
		}
		if flags&msgChecksumPresent != 0 {
			// The checksum covers the flags we may change; drop it.
			req = req[:len(req)-4]
			binary.LittleEndian.PutUint32(req[0:4], uint32(len(req)))
			flags &^= msgChecksumPresent
		}
		flags &^= msgExhaustAllowed
		binary.LittleEndian.PutUint32(req[wireHeaderLen:], flags)
		return req, nil
	case opCompressed:
		return nil, errors.New("refused OP_COMPRESSED: the proxy serialises uncompressed messages only")
	default:
		return nil, fmt.Errorf("refused opcode %d", op)
	}
}

// SlowCommand is the duration above which the proxy logs a command: every
// other client waits for it.
var SlowCommand = 200 * time.Millisecond

// commandOf names an OP_MSG's command and its first argument (e.g.
// "find messages"), for the log.
func commandOf(m []byte) string {
	if opcode(m) != opMsg || len(m) < wireHeaderLen+5 || m[wireHeaderLen+4] != 0 {
		return fmt.Sprintf("opcode %d", opcode(m))
	}
	doc := bson.Raw(m[wireHeaderLen+5:])
	if n := int(int32(binary.LittleEndian.Uint32(doc))); len(doc) >= 4 && n <= len(doc) && n >= 5 {
		doc = doc[:n]
	}
	el, err := doc.IndexErr(0)
	if err != nil {
		return "?"
	}
	name := el.Key()
	if v, ok := el.Value().StringValueOK(); ok {
		name += " " + v
	}
	if db, ok := doc.Lookup("$db").StringValueOK(); ok {
		name += " (" + db + ")"
	}
	return name
}

func opcode(m []byte) int32 { return int32(binary.LittleEndian.Uint32(m[12:16])) }

func msgFlags(m []byte) uint32 {
	if len(m) < wireHeaderLen+4 {
		return 0
	}
	return binary.LittleEndian.Uint32(m[wireHeaderLen:])
}

// readWireMessage reads one whole length-prefixed message.
func readWireMessage(r net.Conn) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.LittleEndian.Uint32(head[:])))
	if n < wireHeaderLen || n > maxWireMessage {
		return nil, fmt.Errorf("wire message length %d out of range", n)
	}
	m := make([]byte, n)
	copy(m, head[:])
	if _, err := io.ReadFull(r, m[4:]); err != nil {
		return nil, fmt.Errorf("read wire message body: %w", err)
	}
	if op := opcode(m); op == opMsg && n < wireHeaderLen+4 {
		return nil, errors.New("OP_MSG shorter than its flags")
	}
	return m, nil
}
