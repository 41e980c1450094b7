package watest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

// pendingPair is a registration connection waiting to be paired.
type pendingPair struct {
	refs []string
	code *codePairing // set once the client asked for a pairing code
}

const qrRefs = 6

// startPairing answers a registration login the way WhatsApp does: with a
// pair-device IQ whose refs the client turns into QR codes.
func (s *Server) startPairing(c *conn) {
	refs := make([]string, qrRefs)
	for i := range refs {
		refs[i] = "2@" + base64.RawStdEncoding.EncodeToString(randomBytes(24))
	}
	s.mu.Lock()
	c.pair = &pendingPair{refs: refs}
	for _, ref := range refs {
		s.pairing[ref] = c
	}
	s.notify()
	s.mu.Unlock()

	children := make([]waBinary.Node, len(refs))
	for i, ref := range refs {
		children[i] = waBinary.Node{Tag: "ref", Content: []byte(ref)}
	}
	// The client's acknowledgement arrives on the read loop, which starts
	// after this returns, so nobody waits for it.
	c.sendIQAsync(waBinary.Node{
		Tag:     "iq",
		Attrs:   waBinary.Attrs{"from": serverJID, "type": "set", "id": s.newID("pd"), "xmlns": "md"},
		Content: []waBinary.Node{{Tag: "pair-device", Content: children}},
	})
}

// ScanQR does what the phone does when it scans code (one of the strings of
// an events.QR): it links the displaying client as a companion device of a
// new account with a fresh phone number, waits for the client's
// confirmation and tells it to reconnect (stream error 515). It returns once
// the client confirmed; the login that follows is the client's.
func (s *Server) ScanQR(ctx context.Context, code string) (*Account, error) {
	return s.ScanQRAs(ctx, code, "")
}

// ScanQRAs is ScanQR from the phone with the given number. Pairing a number
// that already has an account replaces its companion device, whose next
// login fails as logged out.
func (s *Server) ScanQRAs(ctx context.Context, code, phone string) (*Account, error) {
	parts := strings.Split(code, ",")
	if len(parts) != 4 {
		return nil, fmt.Errorf("watest: QR code has %d comma-separated parts, want 4", len(parts))
	}
	var keysIn [3][]byte
	for i, p := range parts[1:] {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil {
			return nil, fmt.Errorf("watest: QR code part %d: %w", i+2, err)
		}
		keysIn[i] = b
	}
	noisePub, identityPub, advSecret := keysIn[0], keysIn[1], keysIn[2]
	if len(noisePub) != 32 || len(identityPub) != 32 || len(advSecret) != 32 {
		return nil, errors.New("watest: QR code keys have the wrong sizes")
	}
	s.mu.Lock()
	c := s.pairing[parts[0]]
	s.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("watest: no live connection displays QR ref %q", parts[0])
	}
	if !bytes.Equal(noisePub, c.clientStatic[:]) {
		return nil, errors.New("watest: QR code's noise key is not the displaying connection's")
	}
	return s.pair(ctx, c, phone, [32]byte(identityPub), advSecret, nil)
}

// pair creates the account and sends pair-success, as the phone and server
// do once the phone learned the companion's identity key and ADV secret.
// phoneKey is the phone's identity if the pairing already used it.
func (s *Server) pair(ctx context.Context, c *conn, phone string, identityPub [32]byte, advSecret []byte, phoneKey *keys.KeyPair) (*Account, error) {
	ctx, cancel := s.waitCtx(ctx)
	defer cancel()
	if reg := c.payload.GetDevicePairingData(); reg != nil && !bytes.Equal(reg.GetEIdent(), identityPub[:]) {
		return nil, errors.New("watest: QR code's identity key differs from the one the client registered with")
	}

	s.mu.Lock()
	if phone == "" {
		phone = strconv.Itoa(s.nextPhone)
		s.nextPhone++
	}
	device := s.nextDevice
	s.nextDevice++
	if old := s.accounts[phone]; old != nil && phoneKey == nil {
		phoneKey = old.phoneKey // same phone, same identity
	} else if phoneKey == nil {
		phoneKey = keys.NewKeyPair()
	}
	s.mu.Unlock()

	a := &Account{
		srv:         s,
		phone:       phone,
		jid:         types.JID{User: phone, Device: device, Server: types.DefaultUserServer},
		lid:         types.JID{User: lidFor(phone), Device: device, Server: types.HiddenUserServer},
		phoneKey:    phoneKey,
		noiseKey:    c.clientStatic,
		identityKey: identityPub,
		advSecret:   advSecret,
		keyIndex:    uint32(device),
	}
	a.adoptRegistration(c)

	identity, err := a.signedDeviceIdentity()
	if err != nil {
		return nil, err
	}
	resp, err := c.request(ctx, waBinary.Node{
		Tag:   "iq",
		Attrs: waBinary.Attrs{"from": serverJID, "type": "set", "id": s.newID("ps"), "xmlns": "md"},
		Content: []waBinary.Node{{Tag: "pair-success", Content: []waBinary.Node{
			{Tag: "device-identity", Content: identity},
			{Tag: "platform", Attrs: waBinary.Attrs{"name": "android"}},
			{Tag: "device", Attrs: waBinary.Attrs{"jid": a.jid, "lid": a.lid}},
		}}},
	})
	if err != nil {
		return nil, fmt.Errorf("watest: pair-success: %w", err)
	}
	if typ, _ := resp.Attrs["type"].(string); typ != "result" {
		return nil, fmt.Errorf("watest: client rejected pairing: %s", resp.XMLString())
	}
	if _, ok := resp.GetOptionalChildByTag("pair-device-sign", "device-identity"); !ok {
		return nil, fmt.Errorf("watest: pairing confirmation without device-identity: %s", resp.XMLString())
	}

	s.mu.Lock()
	if old := s.accounts[phone]; old != nil {
		old.removed = true
		delete(s.lids, old.lid.User)
	}
	s.accounts[phone] = a
	s.lids[a.lid.User] = a
	if c.pair != nil {
		for _, ref := range c.pair.refs {
			delete(s.pairing, ref)
		}
		c.pair = nil
	}
	s.notify()
	s.mu.Unlock()
	s.logf("paired %s (lid %s)", a.jid, a.lid)

	// As WhatsApp does: make the client reconnect and log in as the device.
	if err := c.send(waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "515"}}); err != nil {
		s.logf("%v", err)
	}
	c.closeSoon("pairing done")
	return a, nil
}

// adoptRegistration keeps the Signal keys the companion sent in its
// registration payload, so contacts can message it before its first upload.
func (a *Account) adoptRegistration(c *conn) {
	reg := c.payload.GetDevicePairingData()
	if len(reg.GetERegid()) != 4 || len(reg.GetESkeyID()) != 3 || len(reg.GetESkeyVal()) != 32 || len(reg.GetESkeySig()) != 64 {
		return
	}
	a.regID = binary.BigEndian.Uint32(reg.GetERegid())
	a.signedPreKey = &publicPreKey{
		id:  preKeyID(reg.GetESkeyID()),
		pub: [32]byte(reg.GetESkeyVal()),
		sig: (*[64]byte)(bytes.Clone(reg.GetESkeySig())),
	}
}

// signedDeviceIdentity is the pair-success device-identity: the companion's
// ADV identity signed by the phone and authenticated with the ADV secret.
func (a *Account) signedDeviceIdentity() ([]byte, error) {
	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID:     proto.Uint32(mrand.Uint32()),
		Timestamp: proto.Uint64(uint64(time.Now().Unix())),
		KeyIndex:  proto.Uint32(a.keyIndex),
	})
	if err != nil {
		return nil, fmt.Errorf("watest: marshal ADV identity: %w", err)
	}
	msg := concat(whatsmeow.AdvAccountSignaturePrefix, details, a.identityKey[:])
	signed, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentity{
		Details:             details,
		AccountSignatureKey: a.phoneKey.Pub[:],
		AccountSignature:    xeddsaSign(a.phoneKey, msg),
	})
	if err != nil {
		return nil, fmt.Errorf("watest: marshal signed ADV identity: %w", err)
	}
	mac := hmac.New(sha256.New, a.advSecret)
	mac.Write(signed)
	out, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentityHMAC{Details: signed, HMAC: mac.Sum(nil)})
	if err != nil {
		return nil, fmt.Errorf("watest: marshal ADV identity HMAC: %w", err)
	}
	return out, nil
}

// lidFor derives a stable LID user from a phone number, so a re-paired
// phone keeps its LID as it does on WhatsApp.
func lidFor(phone string) string {
	sum := sha256.Sum256([]byte("lid:" + phone))
	n := binary.BigEndian.Uint64(sum[:8]) % 900_000_000_000_000
	return strconv.FormatUint(100_000_000_000_000+n, 10)
}

func preKeyID(b []byte) uint32 {
	return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}
