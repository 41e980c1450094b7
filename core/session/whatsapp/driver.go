package whatsapp

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/store"

	"github.com/wildcathub/wildcat/core/netguard"
	"github.com/wildcathub/wildcat/core/session"
)

// DriverName is the value of an account's "driver" field for real WhatsApp.
const DriverName = "whatsapp"

// DeviceStore is one account's WhatsApp auth state. authstore implements
// it on both engines: on MongoDB (authstore.New) in the account's
// auth_{accountId} collection, with nothing on local disk, so any daemon
// sharing the database can run the account; on the embedded engine
// (authstore.SQLite) in whatsmeow's own sqlstore on the database file.
type DeviceStore interface {
	// GetDevice returns the stored device, or a fresh unpaired one whose
	// Save (after pairing) stores it as this account's. The device's
	// Delete (logout) removes all of the account's auth state.
	GetDevice(ctx context.Context) (*store.Device, error)
	// Delete removes all of the account's auth state, paired or not; for
	// the removal of an account whose logout did not get that far.
	Delete(ctx context.Context) error
}

// HTTPClients lets the caller choose how whatsmeow reaches WhatsApp. Nil
// fields keep whatsmeow's defaults. Tests point all three at the protocol
// double. An account with a proxy (its own or Driver.Proxy) does not use
// them: it reaches WhatsApp only through the proxy (proxy.go).
type HTTPClients struct {
	// PreLogin is used for the websocket before pairing, Websocket after;
	// whatsmeow switches between them on the reconnect after pairing, so a
	// redirect must set both.
	PreLogin  *http.Client
	Websocket *http.Client
	Media     *http.Client
}

// mediaClient is the client media is downloaded and uploaded with:
// HTTP.Media, or one behind the SSRF guard. A media message names its own
// download URL, which whatsmeow prefers to the direct path, and any contact
// can send one pointing at the daemon's network (cloud metadata, admin
// ports); WhatsApp's media hosts are public, so the guard costs nothing.
func (d *Driver) mediaClient() *http.Client {
	if d.HTTP.Media != nil {
		return d.HTTP.Media
	}
	return guardedMedia()
}

// guardedMedia is shared by every session: one connection pool.
var guardedMedia = sync.OnceValue(func() *http.Client {
	return &http.Client{Transport: netguard.Transport(netguard.NewDialer(30*time.Second, false))}
})

// Driver runs real WhatsApp sessions through whatsmeow.
type Driver struct {
	// Devices opens an account's auth state.
	Devices func(accountID string) DeviceStore
	// MediaRetries holds the phone's answers to media retry requests,
	// shared across daemons; nil keeps none (expired media cannot be
	// fetched again).
	MediaRetries MediaRetryStore
	// Logger for the driver; whatsmeow's own log lines go through it too.
	Logger *slog.Logger
	// HTTP overrides whatsmeow's HTTP clients; nil fields keep defaults
	// (for Media: a client behind the SSRF guard, see mediaClient).
	HTTP HTTPClients
	// ReconnectMin and ReconnectMax bound the exponential reconnect backoff
	// (jittered); zero means 1 s and 2 min.
	ReconnectMin, ReconnectMax time.Duration
	// DeviceName is what the phone shows under "Linked devices"; zero means
	// "Wildcat".
	DeviceName string

	// Proxy is the proxy URL of accounts without their own
	// (drivers.whatsapp.proxy); "" connects them directly.
	Proxy string
	// ProxyTLS configures TLS of the connections made through a proxy
	// (to WhatsApp, and to an https:// proxy); nil: the system's roots.
	// Tests trust the protocol double's certificate with it.
	ProxyTLS *tls.Config
	// Resolver looks up media hosts for the SSRF guard of proxied media
	// (which resolves them itself and asks the proxy for the checked
	// address); nil: the system's resolver.
	Resolver netguard.Resolver
}

var _ session.Driver = (*Driver)(nil)

// Name implements session.Driver.
func (d *Driver) Name() string { return DriverName }

// Open implements session.Driver: it prepares the session; Connect dials.
func (d *Driver) Open(ctx context.Context, acct session.Account, sink session.Sink) (session.Session, error) {
	if d.Devices == nil {
		return nil, fmt.Errorf("whatsapp driver: no device store configured")
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	px, err := d.proxied(acct)
	if err != nil {
		return nil, err
	}
	s := &Session{
		d:       d,
		px:      px,
		acct:    acct,
		sink:    sink,
		devices: d.Devices(acct.ID),
		log:     log.With(slog.String("account_id", acct.ID)),
		norm:    Normalizer{AccountID: acct.ID},
		hist:    Normalizer{AccountID: acct.ID, Source: "history"},
		now:     time.Now,
	}
	return s, nil
}

// DeleteAuthState removes all of an account's WhatsApp auth state (account
// removal). Logging out already does; this also covers an account whose
// logout failed or never ran.
func (d *Driver) DeleteAuthState(ctx context.Context, accountID string) error {
	if d.Devices == nil {
		return fmt.Errorf("whatsapp driver: no device store configured")
	}
	return d.Devices(accountID).Delete(ctx)
}

func (d *Driver) backoff() (time.Duration, time.Duration) {
	lo, hi := d.ReconnectMin, d.ReconnectMax
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = 2 * time.Minute
	}
	return lo, max(lo, hi)
}
