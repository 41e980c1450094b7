package session

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/wildcathub/wildcat/core/accountid"
	"github.com/wildcathub/wildcat/core/netproxy"
)

// State is an account's place in its lifecycle:
//
//	created → pairing → connected ⇄ disconnected → logged_out
//
// logged_out accounts pair again through connect (→ pairing).
type State string

const (
	// StateCreated: never paired; connect starts pairing.
	StateCreated State = "created"
	// StatePairing: waiting for a QR scan or a pairing code on the phone.
	StatePairing State = "pairing"
	// StateConnected: linked and online.
	StateConnected State = "connected"
	// StateDisconnected: linked but offline; the driver reconnects.
	StateDisconnected State = "disconnected"
	// StateLoggedOut: unlinked (by the API or from the phone); must pair again.
	StateLoggedOut State = "logged_out"
)

// AccountInfo is one stored account. It is the truth
// about an account: every daemon reads it, nothing about an account lives
// only in memory.
type AccountInfo struct {
	ID     string `bson:"_id"`
	Driver string `bson:"driver"`
	Name   string `bson:"name"`
	State  State  `bson:"state"`
	// Reason explains the last state transition (e.g. "stream replaced").
	Reason    string `bson:"reason,omitempty"`
	JID       string `bson:"jid,omitempty"`
	PushName  string `bson:"pushName,omitempty"`
	LastError string `bson:"lastError,omitempty"`
	// Since is when the account entered State.
	Since     time.Time `bson:"since"`
	CreatedAt time.Time `bson:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
	// QR is the current code while pairing, kept here so any daemon can
	// answer GET /qr.
	QR          *QR    `bson:"qr,omitempty"`
	PairingCode string `bson:"pairingCode,omitempty"`
	// Proxy is the URL of the proxy the account's WhatsApp connection and
	// media go through ("" for the driver's default); sealed at rest when
	// encryption is on (SealedAccounts), never answered unredacted.
	Proxy string `bson:"proxy,omitempty"`
}

// QR is a pairing QR code and when it stops being valid.
type QR struct {
	Code      string    `bson:"code"`
	ExpiresAt time.Time `bson:"expiresAt"`
}

// AccountSpec is what a caller chooses when creating an account.
type AccountSpec struct {
	ID     string
	Driver string
	Name   string
	// Proxy is the account's proxy URL (netproxy.Parse); "" for the
	// driver's default.
	Proxy string
}

// Errors of account management; callers decide by them.
var (
	// ErrAccountNotFound: no account has that id. Answer 404.
	ErrAccountNotFound = errors.New("account not found")
	// ErrAccountExists: the id is taken. Answer 409.
	ErrAccountExists = errors.New("account already exists")
	// ErrDriverUnavailable: the account's driver is known but not part of
	// this build or not registered. Answer 503; the account itself is fine.
	ErrDriverUnavailable = errors.New("driver not available")
)

// InvalidError is a request value the manager refuses; Field names it.
// Answer 400.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// AccountStore keeps the accounts: one record per account, the truth every
// daemon reads. The Manager decides what changes; the store writes it.
type AccountStore interface {
	// Insert stores a new account; ErrAccountExists when the id is taken.
	Insert(ctx context.Context, a *AccountInfo) error
	// Get reads one account; ErrAccountNotFound when there is none.
	Get(ctx context.Context, id string) (*AccountInfo, error)
	// List reads every account, ordered by id.
	List(ctx context.Context) ([]*AccountInfo, error)
	// Delete removes an account; a missing one is not an error.
	Delete(ctx context.Context, id string) error
	// Apply writes one change atomically (see AccountChange). A missing
	// account (deleted while its session still ran) is not an error.
	Apply(ctx context.Context, id string, c AccountChange) error
}

// AccountChange is one update of an account. A change of State also sets
// Since (to At) and Reason; the same state again (a rotating QR code) only
// updates the other fields, so Since stays the time of the transition.
// updatedAt is always set to the time of the write.
type AccountChange struct {
	State  State // "" keeps the state
	Reason string
	At     time.Time

	// Set when non-nil or non-empty.
	QR          *QR
	PairingCode string
	JID         string
	PushName    string
	LastError   string
	// Proxy, when non-nil, replaces the proxy ("" removes it).
	Proxy *string

	// ClearPairing removes the QR code and the pairing code;
	// ClearLastError the last error.
	ClearPairing   bool
	ClearLastError bool
}

// stripedLock serialises this process's work on one key: lifecycle calls
// per account, and on MongoDB the writes to one account document (FerretDB
// runs a conditional update as read, modify, unconditional write, so two
// concurrent ones can both match).
type stripedLock struct {
	stripes [32]sync.Mutex
}

func (l *stripedLock) lock(id string) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &l.stripes[h.Sum32()%uint32(len(l.stripes))]
	m.Lock()
	return m.Unlock
}

// validateSpec checks an account to be created.
func validateSpec(spec AccountSpec) error {
	if err := accountid.Check(spec.ID); err != nil {
		return &InvalidError{Field: "id", Reason: err.Error()}
	}
	if err := accountid.CheckDriver(spec.Driver); err != nil {
		return &InvalidError{Field: "driver", Reason: err.Error()}
	}
	if len(spec.Name) > 256 {
		return &InvalidError{Field: "name", Reason: "must be at most 256 bytes"}
	}
	return validateProxy(spec.Proxy)
}

// validateProxy checks an account's proxy URL; "" is none.
func validateProxy(raw string) error {
	if raw == "" {
		return nil
	}
	if len(raw) > 2048 {
		return &InvalidError{Field: "proxy", Reason: "must be at most 2048 bytes"}
	}
	if _, err := netproxy.Parse(raw); err != nil {
		return &InvalidError{Field: "proxy", Reason: err.Error()}
	}
	return nil
}
