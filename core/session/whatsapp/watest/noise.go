package watest

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/coder/websocket"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"go.mau.fi/whatsmeow/util/keys"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
	"google.golang.org/protobuf/proto"
)

// frameConn splits the websocket byte stream into WhatsApp frames: a 3-byte
// big-endian length and the payload. The client's first frame is preceded by
// the 4-byte connection header ("WA", magic, dictionary version).
type frameConn struct {
	ws     *websocket.Conn
	buf    []byte
	header []byte // the client's connection header, once read

	writeMu sync.Mutex
}

const maxFrame = socket.FrameMaxSize

func (f *frameConn) readFrame(ctx context.Context) ([]byte, error) {
	for {
		if f.header == nil && len(f.buf) >= len(socket.WAConnHeader) {
			if !bytes.HasPrefix(f.buf, []byte("WA")) {
				return nil, fmt.Errorf("bad connection header %x", f.buf[:4])
			}
			f.header = bytes.Clone(f.buf[:len(socket.WAConnHeader)])
			f.buf = f.buf[len(socket.WAConnHeader):]
		}
		if f.header != nil && len(f.buf) >= socket.FrameLengthSize {
			n := int(f.buf[0])<<16 | int(f.buf[1])<<8 | int(f.buf[2])
			if len(f.buf) >= socket.FrameLengthSize+n {
				frame := f.buf[socket.FrameLengthSize : socket.FrameLengthSize+n]
				f.buf = f.buf[socket.FrameLengthSize+n:]
				return frame, nil
			}
		}
		typ, data, err := f.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageBinary {
			return nil, fmt.Errorf("unexpected websocket message type %v", typ)
		}
		f.buf = append(f.buf, data...)
	}
}

func (f *frameConn) writeFrame(ctx context.Context, data []byte) error {
	if len(data) >= maxFrame {
		return fmt.Errorf("frame of %d bytes too large", len(data))
	}
	frame := make([]byte, socket.FrameLengthSize+len(data))
	frame[0], frame[1], frame[2] = byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	copy(frame[socket.FrameLengthSize:], data)
	f.writeMu.Lock()
	defer f.writeMu.Unlock()
	return f.ws.Write(ctx, websocket.MessageBinary, frame)
}

// noiseState is the responder's half of Noise_XX_25519_AESGCM_SHA256 as
// whatsmeow's handshake.go drives it. socket.NoiseHandshake keeps its chaining
// key private, so the final split cannot be done with it; this is the same
// symmetric state, kept here.
type noiseState struct {
	hash    []byte
	salt    []byte // chaining key
	key     cipher.AEAD
	counter uint32
}

func newNoiseState(header []byte) (*noiseState, error) {
	pattern := []byte(socket.NoiseStartPattern)
	ns := &noiseState{hash: pattern, salt: pattern}
	if len(pattern) != 32 {
		sum := sha256.Sum256(pattern)
		ns.hash, ns.salt = sum[:], sum[:]
	}
	var err error
	if ns.key, err = gcmutil.Prepare(ns.hash); err != nil {
		return nil, err
	}
	ns.authenticate(header)
	return ns, nil
}

func (ns *noiseState) authenticate(data []byte) {
	sum := sha256.Sum256(append(ns.hash, data...))
	ns.hash = sum[:]
}

func (ns *noiseState) iv() []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], ns.counter)
	ns.counter++
	return iv
}

func (ns *noiseState) encrypt(plaintext []byte) []byte {
	ct := ns.key.Seal(nil, ns.iv(), plaintext, ns.hash)
	ns.authenticate(ct)
	return ct
}

func (ns *noiseState) decrypt(ciphertext []byte) ([]byte, error) {
	pt, err := ns.key.Open(nil, ns.iv(), ciphertext, ns.hash)
	if err != nil {
		return nil, err
	}
	ns.authenticate(ciphertext)
	return pt, nil
}

func (ns *noiseState) mixDH(priv, pub *[32]byte) error {
	secret, err := curve25519.X25519(priv[:], pub[:])
	if err != nil {
		return fmt.Errorf("x25519: %w", err)
	}
	chain, key, err := expand(ns.salt, secret)
	if err != nil {
		return err
	}
	ns.salt, ns.counter = chain, 0
	ns.key, err = gcmutil.Prepare(key)
	return err
}

// split derives the transport keys. The client writes with the first and
// reads with the second, so the server does the opposite.
func (ns *noiseState) split() (fromClient, toClient cipher.AEAD, err error) {
	first, second, err := expand(ns.salt, nil)
	if err != nil {
		return nil, nil, err
	}
	if fromClient, err = gcmutil.Prepare(first); err != nil {
		return nil, nil, err
	}
	if toClient, err = gcmutil.Prepare(second); err != nil {
		return nil, nil, err
	}
	return fromClient, toClient, nil
}

func expand(salt, material []byte) (a, b []byte, err error) {
	r := hkdf.New(sha256.New, material, salt, nil)
	a, b = make([]byte, 32), make([]byte, 32)
	if _, err = io.ReadFull(r, a); err == nil {
		_, err = io.ReadFull(r, b)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("hkdf: %w", err)
	}
	return a, b, nil
}

// handshakeResult is what the server learns from a completed handshake.
type handshakeResult struct {
	transport    *noiseTransport
	payload      *waWa6.ClientPayload
	clientStatic [32]byte
}

// respond runs the responder side of the handshake on fc.
func respond(ctx context.Context, fc *frameConn, static *keys.KeyPair, certChain []byte) (*handshakeResult, error) {
	frame, err := fc.readFrame(ctx)
	if err != nil {
		return nil, fmt.Errorf("read client hello: %w", err)
	}
	var hello waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &hello); err != nil {
		return nil, fmt.Errorf("parse client hello: %w", err)
	}
	clientEphemeral := hello.GetClientHello().GetEphemeral()
	if len(clientEphemeral) != 32 {
		return nil, fmt.Errorf("client hello has a %d-byte ephemeral key", len(clientEphemeral))
	}
	ce := (*[32]byte)(clientEphemeral)

	ns, err := newNoiseState(fc.header)
	if err != nil {
		return nil, err
	}
	ns.authenticate(clientEphemeral)
	ephemeral := keys.NewKeyPair()
	ns.authenticate(ephemeral.Pub[:])
	if err := ns.mixDH(ephemeral.Priv, ce); err != nil {
		return nil, err
	}
	staticCT := ns.encrypt(static.Pub[:])
	if err := ns.mixDH(static.Priv, ce); err != nil {
		return nil, err
	}
	certCT := ns.encrypt(certChain)
	serverHello, err := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: ephemeral.Pub[:],
		Static:    staticCT,
		Payload:   certCT,
	}})
	if err != nil {
		return nil, fmt.Errorf("marshal server hello: %w", err)
	}
	if err := fc.writeFrame(ctx, serverHello); err != nil {
		return nil, fmt.Errorf("send server hello: %w", err)
	}

	frame, err = fc.readFrame(ctx)
	if err != nil {
		return nil, fmt.Errorf("read client finish: %w", err)
	}
	var finish waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &finish); err != nil {
		return nil, fmt.Errorf("parse client finish: %w", err)
	}
	clientStatic, err := ns.decrypt(finish.GetClientFinish().GetStatic())
	if err != nil {
		return nil, fmt.Errorf("decrypt client static key: %w", err)
	} else if len(clientStatic) != 32 {
		return nil, fmt.Errorf("client static key has %d bytes", len(clientStatic))
	}
	res := &handshakeResult{clientStatic: [32]byte(clientStatic)}
	if err := ns.mixDH(ephemeral.Priv, &res.clientStatic); err != nil {
		return nil, err
	}
	payloadBytes, err := ns.decrypt(finish.GetClientFinish().GetPayload())
	if err != nil {
		return nil, fmt.Errorf("decrypt client payload: %w", err)
	}
	res.payload = &waWa6.ClientPayload{}
	if err := proto.Unmarshal(payloadBytes, res.payload); err != nil {
		return nil, fmt.Errorf("parse client payload: %w", err)
	}
	read, write, err := ns.split()
	if err != nil {
		return nil, err
	}
	res.transport = &noiseTransport{fc: fc, read: read, write: write}
	return res, nil
}

// noiseTransport carries binary XML nodes after the handshake: each frame is
// AES-GCM with a per-direction counter as the nonce and no associated data.
type noiseTransport struct {
	fc          *frameConn
	read, write cipher.AEAD
	readCount   uint32

	writeMu    sync.Mutex
	writeCount uint32
}

func counterIV(n uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], n)
	return iv
}

var errEmptyFrame = errors.New("empty frame")

// readNode is called from one goroutine only.
func (t *noiseTransport) readNode(ctx context.Context) (node *waBinary.Node, err error) {
	frame, err := t.fc.readFrame(ctx)
	if err != nil {
		return nil, err
	}
	plain, err := t.read.Open(nil, counterIV(t.readCount), frame, nil)
	t.readCount++
	if err != nil {
		return nil, fmt.Errorf("decrypt frame: %w", err)
	}
	if len(plain) == 0 {
		return nil, errEmptyFrame
	}
	// The decoder is not written for hostile input; a malformed frame from the
	// client under test must end its connection, not the test binary.
	defer func() {
		if r := recover(); r != nil {
			node, err = nil, fmt.Errorf("decode frame: panic: %v", r)
		}
	}()
	unpacked, err := waBinary.Unpack(plain)
	if err != nil {
		return nil, fmt.Errorf("unpack frame: %w", err)
	}
	node, err = waBinary.Unmarshal(unpacked)
	if err != nil {
		return nil, fmt.Errorf("decode frame: %w", err)
	}
	return node, nil
}

func (t *noiseTransport) writeNode(ctx context.Context, node waBinary.Node) error {
	data, err := marshalNode(node)
	if err != nil {
		return err
	}
	// Encryption and the write share one lock so frames leave in counter order.
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	ct := t.write.Seal(nil, counterIV(t.writeCount), data, nil)
	t.writeCount++
	return t.fc.writeFrame(ctx, ct)
}

// marshalNode turns the encoder's panic on an unsupported attribute type
// (a bug in this package) into an error.
func marshalNode(node waBinary.Node) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("encode <%s>: %v", node.Tag, r)
		}
	}()
	return waBinary.Marshal(node)
}
