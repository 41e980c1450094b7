package watest

import (
	"context"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// Account is a WhatsApp account that paired a companion device (the client
// under test) with the double: its phone, its companion device and the keys
// the companion published.
type Account struct {
	srv   *Server
	phone string
	jid   types.JID // phone:N@s.whatsapp.net, the companion device
	lid   types.JID // lid:N@lid

	// phoneKey is the primary device's identity: it signs the companion's
	// ADV identity and is the account's identity towards the companion.
	phoneKey    *keys.KeyPair
	noiseKey    [32]byte // the companion's static Noise key
	identityKey [32]byte // the companion's Signal identity key
	advSecret   []byte
	keyIndex    uint32

	// Guarded by srv.mu.
	regID        uint32
	signedPreKey *publicPreKey
	preKeys      []*publicPreKey // one-time pre-keys not yet handed out
	uploads      int
	removed      bool
	refusals     []int
	conn         *conn // the logged-in connection, if any
	logins       int
	pending      []*delivery // messages to the companion it has not acknowledged
}

// publicPreKey is a pre-key as the companion published it.
type publicPreKey struct {
	id  uint32
	pub [32]byte
	sig *[64]byte // signed pre-keys only
}

// JID is the companion device's JID (phone:N@s.whatsapp.net).
func (a *Account) JID() types.JID { return a.jid }

// LID is the companion device's LID (lid:N@lid).
func (a *Account) LID() types.JID { return a.lid }

// Phone is the account's phone number.
func (a *Account) Phone() string { return a.phone }

// Connected reports whether the companion is logged in on a live connection.
func (a *Account) Connected() bool {
	a.srv.mu.Lock()
	defer a.srv.mu.Unlock()
	return a.conn != nil
}

// Logins is how many times the companion completed a login (up to the
// post-connect passive IQ, after which whatsmeow emits events.Connected).
func (a *Account) Logins() int {
	a.srv.mu.Lock()
	defer a.srv.mu.Unlock()
	return a.logins
}

// WaitLogins waits until the companion has completed at least n logins.
func (a *Account) WaitLogins(ctx context.Context, n int) error {
	return a.srv.waitFor(ctx, fmt.Sprintf("%s to complete login #%d", a.jid, n), func() bool {
		return a.logins >= n
	})
}

// PreKeysUploaded is how many pre-key uploads (encrypt set) the companion made.
func (a *Account) PreKeysUploaded() int {
	a.srv.mu.Lock()
	defer a.srv.mu.Unlock()
	return a.uploads
}

// Account returns the account of a phone number or a device JID, or nil.
func (s *Server) Account(phoneOrJID string) *Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.Contains(phoneOrJID, "@") {
		jid, err := types.ParseJID(phoneOrJID)
		if err != nil {
			return nil
		}
		return s.accountByJIDLocked(jid.ToNonAD())
	}
	return s.accounts[phoneOrJID]
}

// accountByJIDLocked finds the account a phone-number or LID JID names.
func (s *Server) accountByJIDLocked(jid types.JID) *Account {
	switch jid.Server {
	case types.DefaultUserServer:
		return s.accounts[jid.User]
	case types.HiddenUserServer:
		return s.lids[jid.User]
	}
	return nil
}

// Accounts lists the paired accounts.
func (s *Server) Accounts() []*Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Account, 0, len(s.accounts))
	for _, a := range s.accounts {
		out = append(out, a)
	}
	return out
}
