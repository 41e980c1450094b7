package event

import (
	"fmt"
	"time"
)

// AccountStatus is the connection state of an account's session.
type AccountStatus string

const (
	AccountPairing      AccountStatus = "pairing" // waiting for a QR scan or pairing code
	AccountConnecting   AccountStatus = "connecting"
	AccountConnected    AccountStatus = "connected"
	AccountDisconnected AccountStatus = "disconnected" // will reconnect
	AccountLoggedOut    AccountStatus = "logged_out"   // must pair again
)

// AccountState is the payload of every account.* event. The session driver
// emits these itself; they have no WhatsApp message behind them.
type AccountState struct {
	State AccountStatus `json:"state" bson:"state"`
	// QRCode is the string to render as a QR code (account.qr); a new one
	// arrives before ExpiresAt until the phone scans one or pairing times out.
	QRCode    string     `json:"qrCode,omitempty" bson:"qrCode,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty" bson:"expiresAt,omitempty"`
	// PairingCode is the code to type on the phone (account.pairing_code).
	PairingCode string `json:"pairingCode,omitempty" bson:"pairingCode,omitempty"`
	// Reason explains a disconnect or logout (e.g. "stream replaced").
	Reason   string `json:"reason,omitempty" bson:"reason,omitempty"`
	JID      string `json:"jid,omitempty" bson:"jid,omitempty"`
	PushName string `json:"pushName,omitempty" bson:"pushName,omitempty"`
}

// NewAccountEvent builds an account.* event with its deterministic id. at is
// when the driver observed the change; pass the same value when re-emitting.
func NewAccountEvent(kind Kind, accountID string, at time.Time, state AccountState) (*Event, error) {
	var id string
	switch kind {
	case KindAccountQR:
		if state.QRCode == "" {
			return nil, fmt.Errorf("%s event for account %q: empty QR code", kind, accountID)
		}
		id = QREventID(accountID, state.QRCode)
	case KindAccountPairingCode:
		if state.PairingCode == "" {
			return nil, fmt.Errorf("%s event for account %q: empty pairing code", kind, accountID)
		}
		id = PairingCodeEventID(accountID, state.PairingCode)
	case KindAccountConnected, KindAccountDisconnected, KindAccountLoggedOut:
		id = AccountEventID(accountID, kind, at)
	default:
		return nil, fmt.Errorf("%q is not an account event kind", kind)
	}
	ev := &Event{
		ID:        id,
		Kind:      kind,
		AccountID: accountID,
		Timestamp: at.UTC(),
		Source:    SourcePhone,
		Account:   &state,
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	return ev, nil
}
