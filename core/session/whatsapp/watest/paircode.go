package watest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"go.mau.fi/whatsmeow/util/keys"
	"golang.org/x/crypto/curve25519"
)

// codePairing is the state of pairing by phone code (Client.PairPhone) on
// one registration connection.
type codePairing struct {
	phone      string
	ref        string
	wrappedEph []byte // the companion's ephemeral key, encrypted with the code
	finished   chan *waBinary.Node
}

// The PBKDF2 round count whatsmeow uses to stretch the 8-character code.
const linkCodeRounds = 2 << 16

// linkCodeIQ handles the client's two link_code_companion_reg IQs:
// companion_hello (the client asks for a code) and companion_finish (the
// client answers the phone's notification with its key bundle).
func (s *Server) linkCodeIQ(c *conn, node *waBinary.Node) ([]waBinary.Node, *iqError) {
	reg := node.GetChildByTag("link_code_companion_reg")
	stage, _ := reg.Attrs["stage"].(string)
	s.mu.Lock()
	pair := c.pair
	s.mu.Unlock()
	if pair == nil {
		return nil, &iqError{400, "bad-request"}
	}
	switch stage {
	case "companion_hello":
		jid, _ := reg.Attrs["jid"].(types.JID)
		wrapped, _ := reg.GetChildByTag("link_code_pairing_wrapped_companion_ephemeral_pub").Content.([]byte)
		authKey, _ := reg.GetChildByTag("companion_server_auth_key_pub").Content.([]byte)
		if jid.User == "" || len(wrapped) != 80 || !bytes.Equal(authKey, c.clientStatic[:]) {
			s.logf("%s: malformed companion_hello %s", c.name, reg.XMLString())
			return nil, &iqError{400, "bad-request"}
		}
		cp := &codePairing{
			phone:      jid.User,
			ref:        "watest-link-" + strconv.FormatInt(time.Now().UnixNano(), 36),
			wrappedEph: wrapped,
			finished:   make(chan *waBinary.Node, 1),
		}
		s.mu.Lock()
		pair.code = cp
		s.notify()
		s.mu.Unlock()
		return []waBinary.Node{{Tag: "link_code_companion_reg", Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: []byte(cp.ref)},
		}}}, nil
	case "companion_finish":
		s.mu.Lock()
		cp := pair.code
		s.mu.Unlock()
		ref, _ := reg.GetChildByTag("link_code_pairing_ref").Content.([]byte)
		if cp == nil || string(ref) != cp.ref {
			return nil, &iqError{400, "bad-request"}
		}
		select {
		case cp.finished <- &reg:
		default:
		}
		return nil, nil
	}
	return nil, &iqError{400, "bad-request"}
}

// EnterPairingCode does what the phone with number phone does when its user
// types code (as Client.PairPhone returned it) under "Link with phone
// number": it completes the key exchange with the client that asked for the
// code, then links it like ScanQR does.
func (s *Server) EnterPairingCode(ctx context.Context, phone, code string) (*Account, error) {
	ctx, cancel := s.waitCtx(ctx)
	defer cancel()
	code = strings.ReplaceAll(strings.ToUpper(code), "-", "")
	var c *conn
	var cp *codePairing
	err := s.waitFor(ctx, "a client to ask for a pairing code for "+phone, func() bool {
		for cc := range s.conns {
			if cc.pair != nil && cc.pair.code != nil && cc.pair.code.phone == phone {
				c, cp = cc, cc.pair.code
				return true
			}
		}
		return false
	})
	if err != nil {
		return nil, err
	}

	companionEph, err := linkCodeCrypt(code, cp.wrappedEph[:32], cp.wrappedEph[32:48], cp.wrappedEph[48:80])
	if err != nil {
		return nil, err
	}
	phoneKey := keys.NewKeyPair()
	s.mu.Lock()
	if old := s.accounts[phone]; old != nil {
		phoneKey = old.phoneKey
	}
	s.mu.Unlock()
	primaryEph := keys.NewKeyPair()
	salt, iv := randomBytes(32), randomBytes(16)
	wrappedPrimary, err := linkCodeCrypt(code, salt, iv, primaryEph.Pub[:])
	if err != nil {
		return nil, err
	}
	err = c.send(waBinary.Node{
		Tag: "notification",
		Attrs: waBinary.Attrs{
			"from": serverJID,
			"id":   s.newID("lc"),
			"type": "link_code_companion_reg",
			"t":    strconv.FormatInt(time.Now().Unix(), 10),
		},
		Content: []waBinary.Node{{Tag: "link_code_companion_reg", Attrs: waBinary.Attrs{"stage": "primary_hello"}, Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: []byte(cp.ref)},
			{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: concat(salt, iv, wrappedPrimary)},
			{Tag: "primary_identity_pub", Content: phoneKey.Pub[:]},
		}}},
	})
	if err != nil {
		return nil, fmt.Errorf("watest: %w", err)
	}

	var finish *waBinary.Node
	select {
	case finish = <-cp.finished:
	case <-ctx.Done():
		return nil, fmt.Errorf("watest: waiting for the client's companion_finish: %w", ctx.Err())
	}
	bundle, _ := finish.GetChildByTag("link_code_pairing_wrapped_key_bundle").Content.([]byte)
	companionIdentity, _ := finish.GetChildByTag("companion_identity_public").Content.([]byte)
	if len(bundle) < 44 || len(companionIdentity) != 32 {
		return nil, errors.New("watest: malformed companion_finish")
	}
	ephShared, err := curve25519.X25519(primaryEph.Priv[:], companionEph)
	if err != nil {
		return nil, fmt.Errorf("watest: %w", err)
	}
	bundleKey := hkdfutil.SHA256(ephShared, bundle[:32], []byte("link_code_pairing_key_bundle_encryption_key"), 32)
	block, err := aes.NewCipher(bundleKey)
	if err != nil {
		return nil, fmt.Errorf("watest: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("watest: %w", err)
	}
	plain, err := gcm.Open(nil, bundle[32:44], bundle[44:], nil)
	if err != nil {
		return nil, errors.New("watest: cannot open the client's key bundle: wrong pairing code?")
	}
	if len(plain) != 96 || !bytes.Equal(plain[:32], companionIdentity) || !bytes.Equal(plain[32:64], phoneKey.Pub[:]) {
		return nil, errors.New("watest: the client's key bundle names other keys")
	}
	identityShared, err := curve25519.X25519(phoneKey.Priv[:], companionIdentity)
	if err != nil {
		return nil, fmt.Errorf("watest: %w", err)
	}
	advSecret := hkdfutil.SHA256(concat(ephShared, identityShared, plain[64:]), nil, []byte("adv_secret"), 32)
	return s.pair(ctx, c, phone, [32]byte(companionIdentity), advSecret, phoneKey)
}

// linkCodeCrypt is the AES-CTR wrapping of ephemeral keys under the
// PBKDF2-stretched pairing code; it is its own inverse.
func linkCodeCrypt(code string, salt, iv, data []byte) ([]byte, error) {
	key, err := pbkdf2.Key(sha256.New, code, salt, linkCodeRounds, 32)
	if err != nil {
		return nil, fmt.Errorf("watest: pbkdf2: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("watest: %w", err)
	}
	out := make([]byte, len(data))
	cipher.NewCTR(block, iv).XORKeyStream(out, data)
	return out, nil
}
