package wildcat

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Account is one WhatsApp account the daemon manages.
type Account struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Driver string `json:"driver"`
	// DriverAvailable is false when this daemon has no driver of that name.
	DriverAvailable bool `json:"driverAvailable"`
	// State is created, connecting, pairing, connected, disconnected or
	// logged_out; Reason and Since say why and since when.
	State     string    `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	JID       string    `json:"jid,omitempty"`
	PushName  string    `json:"pushName,omitempty"`
	LastError string    `json:"lastError,omitempty"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
	// Proxy is the account's own proxy, its password masked
	// (socks5://user:***@host:1080); "" when it uses the daemon's default.
	Proxy string `json:"proxy,omitempty"`
	// Instance is the daemon running the account's session (Account only;
	// empty while its lease moves between daemons).
	Instance string `json:"instance,omitempty"`
}

// Account states.
const (
	StateCreated      = "created"
	StateConnecting   = "connecting"
	StatePairing      = "pairing"
	StateConnected    = "connected"
	StateDisconnected = "disconnected"
	StateLoggedOut    = "logged_out"
)

// CreateAccount is the body of CreateAccount.
type CreateAccount struct {
	ID string `json:"id"`
	// Driver is "whatsapp" (a real phone) or "sim" (the simulator).
	Driver string `json:"driver"`
	Name   string `json:"name,omitempty"`
	// Proxy routes the account's WhatsApp connection and media through a
	// proxy: socks5://, http:// (CONNECT) or https:// with host and port,
	// user:password@ allowed. Empty: the daemon's default
	// (drivers.whatsapp.proxy).
	Proxy string `json:"proxy,omitempty"`
}

// AccountUpdate is the body of UpdateAccount; nil fields stay as they are.
type AccountUpdate struct {
	// Proxy replaces the account's proxy; "" returns it to the daemon's
	// default. A running session reconnects through the new one.
	Proxy *string `json:"proxy,omitempty"`
}

// QRCode is the pairing QR code of an account, valid until ExpiresAt.
type QRCode struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Accounts lists every account the key may see.
func (c *Client) Accounts(ctx context.Context) ([]Account, error) {
	var out struct {
		Accounts []Account `json:"accounts"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/accounts"}, &out)
	return out.Accounts, err
}

// Account returns one account.
func (c *Client) Account(ctx context.Context, id string) (*Account, error) {
	var a Account
	if err := c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + esc(id)}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// CreateAccount adds an account; it starts in state created (ConnectAccount
// starts it).
func (c *Client) CreateAccount(ctx context.Context, in CreateAccount) (*Account, error) {
	var a Account
	if err := c.do(ctx, request{method: http.MethodPost, path: "/accounts", body: in}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// UpdateAccount changes an account's settings (PATCH /v1/accounts/{id}).
func (c *Client) UpdateAccount(ctx context.Context, id string, in AccountUpdate) (*Account, error) {
	var a Account
	if err := c.do(ctx, request{method: http.MethodPatch, path: "/accounts/" + esc(id), body: in}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// ConnectAccount starts connecting an account (pairing if it has no
// session yet). ErrConflict when it is already connecting or connected.
func (c *Client) ConnectAccount(ctx context.Context, id string) (*Account, error) {
	var a Account
	if err := c.do(ctx, request{method: http.MethodPost, path: "/accounts/" + esc(id) + "/connect"}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// LogoutAccount unlinks the account from its phone; it stays listed, in
// state logged_out.
func (c *Client) LogoutAccount(ctx context.Context, id string) (*Account, error) {
	var a Account
	if err := c.do(ctx, request{method: http.MethodPost, path: "/accounts/" + esc(id) + "/logout"}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// DeleteAccount removes an account; purge also deletes its stored history.
func (c *Client) DeleteAccount(ctx context.Context, id string, purge bool) error {
	var q url.Values
	if purge {
		q = url.Values{"purge": {"true"}}
	}
	return c.do(ctx, request{method: http.MethodDelete, path: "/accounts/" + esc(id), query: q}, nil)
}

// QR returns the account's current pairing QR code. ErrConflict when the
// account is not pairing. The code rotates: poll it, or watch the
// account.qr events of Events.
func (c *Client) QR(ctx context.Context, id string) (*QRCode, error) {
	var q QRCode
	if err := c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + esc(id) + "/qr"}, &q); err != nil {
		return nil, err
	}
	return &q, nil
}

// PairingCode asks for a code to type on the phone (WhatsApp › Linked
// devices › Link with phone number) instead of scanning a QR code; phone is
// the account's number in international form.
func (c *Client) PairingCode(ctx context.Context, id, phone string) (string, error) {
	var out struct {
		Code string `json:"code"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/accounts/" + esc(id) + "/pairing-code",
		body: map[string]string{"phone": phone}}, &out)
	return out.Code, err
}

// SimInbound is a message the simulated network delivers to a sim
// account, as if a contact had sent it.
type SimInbound struct {
	From     string `json:"from"`
	Text     string `json:"text,omitempty"`
	ID       string `json:"id,omitempty"`
	PushName string `json:"pushName,omitempty"`
}

// SimInboundResult names the event the inbound message became.
type SimInboundResult struct {
	EventID   string `json:"eventId"`
	Kind      string `json:"kind"`
	MessageID string `json:"messageId"`
}

// SimulateInbound delivers a message to a sim account (only on daemons
// with the sim driver): for demos, tests and rule development.
func (c *Client) SimulateInbound(ctx context.Context, account string, in SimInbound) (*SimInboundResult, error) {
	var out SimInboundResult
	if err := c.do(ctx, request{method: http.MethodPost, path: "/accounts/" + esc(account) + "/sim/inbound", body: in}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
