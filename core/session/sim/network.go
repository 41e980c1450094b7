// Package sim is the simulator driver ("sim"): an in-process WhatsApp-like
// network for first runs, demos, rule development, tests and benchmarks.
//
// Every sim account of a daemon lives on one Network. An account pairs
// through the same states as a real one (rotating QR codes, then
// connected), has a stable fake phone-number JID and LID derived from its
// id, exchanges messages with the network's other accounts and with
// external contacts (any other number), receives receipts after
// configurable delays, and keeps sent media in memory so it can be
// downloaded again. Faults (failed, slow or dropped sends, dropped
// connections) are switched on per account for tests.
//
// Nothing is short-cut: every message an account receives or sends is
// built as a whatsmeow *events.Message (waE2E proto and MessageInfo) and
// turned into an event by whatsapp.Normalizer, the path a real message
// takes, before it reaches the Sink.
package sim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/session"
)

// Name is the driver name accounts use.
const Name = "sim"

// Options tunes a Network. Zero durations take the defaults in brackets; a
// negative PairDelay or ReadDelay means "never" (tests then call Scan, or
// expect no read receipts).
type Options struct {
	// Auth holds each paired account's sim auth state, so a paired
	// account reconnects after a restart without pairing.
	Auth AuthStore
	// Groups holds the network's groups, so they outlive a restart; nil
	// leaves the sim without groups.
	Groups GroupStore
	Logger *slog.Logger

	// QRInterval is how long each QR code is shown before the next [20s].
	QRInterval time.Duration
	// PairDelay is when the simulated phone scans the QR code (or types the
	// pairing code) after pairing starts [3s].
	PairDelay time.Duration
	// DeliveredDelay is the time from send to the delivered receipt [300ms].
	DeliveredDelay time.Duration
	// ReadDelay is the time from delivered to the read receipt [1.5s].
	ReadDelay time.Duration
	// ReconnectDelay is how soon a dropped connection comes back [1s].
	ReconnectDelay time.Duration

	// NetworkURL, when set, is a remote sim network (Server, served by
	// wildcatd sim serve or a test) that the sessions connect to instead of
	// this in-process one, so several daemons share one network. It serves
	// one-to-one messages and receipts; its DeliveredDelay and ReadDelay
	// apply, not these.
	NetworkURL string
	// Peer labels this process's connections on the remote network [host/pid].
	Peer string
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.QRInterval, 20*time.Second)
	def(&o.PairDelay, 3*time.Second)
	def(&o.DeliveredDelay, 300*time.Millisecond)
	def(&o.ReadDelay, 1500*time.Millisecond)
	def(&o.ReconnectDelay, time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.NetworkURL != "" && o.Peer == "" {
		o.Peer = defaultPeer()
	}
}

// Faults are the misbehaviours one account's sends can be given.
type Faults struct {
	// FailSends makes Send return an error wrapping it.
	FailSends error
	// SendDelay makes Send wait this long before the network accepts.
	SendDelay time.Duration
	// DropSends accepts sends but loses them: nothing arrives, no receipts.
	DropSends bool
}

// ErrNotOnNetwork: no open sim session has that account id.
var ErrNotOnNetwork = errors.New("no sim session for this account on this network")

// Network is one daemon's simulated WhatsApp. It is the "sim" Driver.
type Network struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	sessions map[string]*Session // by account id
	byUser   map[string]string   // phone-number or LID user part -> account id
	inboxes  map[string]*inbox   // by account id; outlives sessions
	media    map[string][]byte   // by direct path
	faults   map[string]Faults

	grp groupBook // groups.go
}

// New returns an empty network.
func New(opts Options) *Network {
	opts.defaults()
	return &Network{
		opts:     opts,
		log:      opts.Logger,
		sessions: map[string]*Session{},
		byUser:   map[string]string{},
		inboxes:  map[string]*inbox{},
		media:    map[string][]byte{},
		faults:   map[string]Faults{},
	}
}

// Name implements session.Driver.
func (n *Network) Name() string { return Name }

// Open implements session.Driver: the session joins the network, so
// messages to its JID queue for it even before it connects. The account's
// proxy is stored like any account's but not used: the simulated network
// is in-process, there is no connection to route through a proxy.
func (n *Network) Open(ctx context.Context, acct session.Account, sink session.Sink) (session.Session, error) {
	if n.opts.Auth == nil {
		return nil, errors.New("sim network has no store for auth state")
	}
	s := newSession(n, acct, sink)
	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.sessions[acct.ID]; old != nil && !old.isClosed() {
		return nil, fmt.Errorf("sim account %q already has an open session", acct.ID)
	}
	n.sessions[acct.ID] = s
	n.byUser[s.jid.User] = acct.ID
	n.byUser[s.lid.User] = acct.ID
	return s, nil
}

// release forgets a closed session.
func (n *Network) release(s *Session) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sessions[s.acct.ID] == s {
		delete(n.sessions, s.acct.ID)
	}
}

func (n *Network) session(accountID string) *Session {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sessions[accountID]
}

// Hosts reports whether accountID is a sim account with an open session
// on this network (connected or not).
func (n *Network) Hosts(accountID string) bool { return n.session(accountID) != nil }

// accountFor returns the account id a JID belongs to, if it is a sim
// account of this network.
func (n *Network) accountFor(j types.JID) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	id, ok := n.byUser[j.User]
	return id, ok
}

func (n *Network) inbox(accountID string) *inbox {
	n.mu.Lock()
	defer n.mu.Unlock()
	b := n.inboxes[accountID]
	if b == nil {
		b = newInbox(n.log.With(slog.String("account", accountID)))
		n.inboxes[accountID] = b
	}
	return b
}

// SetFaults replaces the faults of an account's sends; the zero Faults
// clears them.
func (n *Network) SetFaults(accountID string, f Faults) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults[accountID] = f
}

func (n *Network) faultsOf(accountID string) Faults {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.faults[accountID]
}

// Scan completes an account's pairing now, as if the phone had scanned the
// QR code. It answers session.ErrWrongState when the account is not pairing.
func (n *Network) Scan(accountID string) error {
	s := n.session(accountID)
	if s == nil {
		return fmt.Errorf("scan %q: %w", accountID, ErrNotOnNetwork)
	}
	return s.scan()
}

// DropConnection simulates a lost connection: the account reports
// disconnected, then reconnects on its own after ReconnectDelay. Messages
// sent to it meanwhile wait and arrive after the reconnect.
func (n *Network) DropConnection(accountID string) error {
	s := n.session(accountID)
	if s == nil {
		return fmt.Errorf("drop connection of %q: %w", accountID, ErrNotOnNetwork)
	}
	return s.drop()
}

// Close closes every open session.
func (n *Network) Close(ctx context.Context) error {
	n.mu.Lock()
	all := make([]*Session, 0, len(n.sessions))
	for _, s := range n.sessions {
		all = append(all, s)
	}
	n.mu.Unlock()
	var errs []error
	for _, s := range all {
		errs = append(errs, s.Close(ctx))
	}
	return errors.Join(errs...)
}

func (n *Network) putMedia(data []byte) (directPath string, sum [32]byte) {
	sum = sha256.Sum256(data)
	directPath = fmt.Sprintf("/sim/%x", sum)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.media[directPath] = data
	return directPath, sum
}

func (n *Network) getMedia(directPath string) ([]byte, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, ok := n.media[directPath]
	return b, ok
}

// JID is the fake phone-number JID of a sim account: +1 555 and seven
// digits derived from the id, so it is the same on every daemon and run.
func JID(accountID string) types.JID {
	return types.NewJID(fmt.Sprintf("1555%07d", idNumber(accountID, "pn")%10_000_000), types.DefaultUserServer)
}

// LID is the fake LID of a sim account, derived like JID.
func LID(accountID string) types.JID {
	return types.NewJID(fmt.Sprintf("9%014d", idNumber(accountID, "lid")%100_000_000_000_000), types.HiddenUserServer)
}

func idNumber(accountID, salt string) uint64 {
	sum := sha256.Sum256([]byte(salt + ":" + accountID))
	return binary.BigEndian.Uint64(sum[:8])
}

// ForgetAuth deletes an account's sim auth state (the account is being
// deleted); its next session must pair again.
func (n *Network) ForgetAuth(ctx context.Context, accountID string) error {
	if n.opts.Auth == nil {
		return nil
	}
	return n.opts.Auth.Delete(ctx, accountID)
}
