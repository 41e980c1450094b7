package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// sender is the slice of whatsmeow.Client that puts messages on the wire.
// It is the seam tests use to assert the exact waE2E.Message a send builds,
// without faking the rest of the driver.
type sender interface {
	SendMessage(ctx context.Context, to types.JID, message *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error)
	Upload(ctx context.Context, plaintext []byte, appInfo whatsmeow.MediaType) (whatsmeow.UploadResponse, error)
}

var _ sender = (*whatsmeow.Client)(nil)

// Session is one account's whatsmeow client plus the policy around it:
// store-before-ack, reconnect with backoff, events for every state change.
type Session struct {
	d       *Driver
	px      *proxied // nil: no proxy
	acct    session.Account
	sink    session.Sink
	devices DeviceStore
	log     *slog.Logger
	norm    Normalizer // live events
	hist    Normalizer // history sync
	now     func() time.Time

	mu      sync.Mutex
	cli     *whatsmeow.Client
	send    sender             // cli, or a test double of the send path
	own     types.JID          // set once paired/logged in (tests set it directly)
	runCtx  context.Context    // lives from Connect to Disconnect/Logout/Close
	stop    context.CancelFunc // ends runCtx
	reconn  bool               // a reconnect loop is running
	stopped bool               // Disconnect/Logout/Close asked us to stay down
}

var _ session.Session = (*Session)(nil)

// Connect implements session.Session.
func (s *Session) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cli != nil && s.cli.IsConnected() {
		return nil
	}
	dev, err := s.devices.GetDevice(ctx)
	if err != nil {
		return fmt.Errorf("load auth state of %s: %w", s.acct.ID, err)
	}
	cli := whatsmeow.NewClient(dev, waLogger{s.log.With(slog.String("component", "whatsmeow"))})
	// Acknowledge a message to WhatsApp only after every handler returned
	// success, i.e. after the event is stored; on failure WhatsApp
	// redelivers. The event buffer keeps the decrypted plaintext so the
	// redelivery can be handled although the Signal ratchet moved on.
	cli.SynchronousAck = true
	cli.EnableDecryptedEventBuffer = true
	// Reconnects are ours: exponential backoff with jitter, reported as
	// account events.
	cli.EnableAutoReconnect = false
	if s.px != nil {
		s.px.configure(cli)
		s.log.Info("connecting through a proxy", slog.String("proxy", s.px.url))
	} else {
		if h := s.d.HTTP; h.PreLogin != nil {
			cli.SetPreLoginHTTPClient(h.PreLogin)
		}
		if h := s.d.HTTP; h.Websocket != nil {
			cli.SetWebsocketHTTPClient(h.Websocket)
		}
		cli.SetMediaHTTPClient(s.d.mediaClient())
	}
	cli.AddEventHandlerWithSuccessStatus(s.handle)
	if s.stop != nil {
		s.stop()
	}
	if old := s.cli; old != nil {
		// A Connect while an earlier attempt is still dialling replaces it;
		// two clients on one device would fight over the session.
		old.Disconnect()
	}
	s.runCtx, s.stop = context.WithCancel(context.Background())
	s.cli, s.send, s.stopped = cli, cli, false
	if dev.ID != nil {
		s.own = dev.ID.ToNonAD()
	}

	if dev.ID == nil {
		// Unpaired: the QR channel must exist before Connect.
		qr, err := cli.GetQRChannel(s.runCtx)
		if err != nil {
			return fmt.Errorf("start QR pairing: %w", err)
		}
		go s.pumpQR(s.runCtx, qr)
	}
	go s.connectLoop(s.runCtx, cli, false)
	return nil
}

// connectLoop dials until connected or stopped. With delayFirst it waits a
// backoff step before the first attempt (a reconnect after a drop).
func (s *Session) connectLoop(ctx context.Context, cli *whatsmeow.Client, delayFirst bool) {
	lo, hi := s.d.backoff()
	delay := lo
	for attempt := 1; ; attempt++ {
		if delayFirst || attempt > 1 {
			// Full jitter keeps a fleet of daemons from reconnecting in step
			// after a shared outage.
			wait := delay/2 + rand.N(delay/2+1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			delay = min(delay*2, hi)
		}
		err := cli.Connect()
		if err == nil || errors.Is(err, whatsmeow.ErrAlreadyConnected) {
			if ctx.Err() != nil {
				// Stopped or replaced while dialling: do not stay online.
				cli.Disconnect()
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("connect failed; retrying", slog.Int("attempt", attempt), slog.Any("error", err))
		s.emitAccount(ctx, event.KindAccountDisconnected, event.AccountState{State: event.AccountDisconnected, Reason: "connect failed: " + err.Error()})
	}
}

// reconnect starts one reconnect loop unless one runs or we were stopped.
func (s *Session) reconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.reconn || s.cli == nil || s.cli.Store.ID == nil {
		return
	}
	s.reconn = true
	ctx, cli := s.runCtx, s.cli
	go func() {
		defer func() { s.mu.Lock(); s.reconn = false; s.mu.Unlock() }()
		s.connectLoop(ctx, cli, true)
	}()
}

func (s *Session) pumpQR(ctx context.Context, ch <-chan whatsmeow.QRChannelItem) {
	for item := range ch {
		switch item.Event {
		case whatsmeow.QRChannelEventCode:
			exp := s.now().Add(item.Timeout).UTC()
			s.emitAccount(ctx, event.KindAccountQR, event.AccountState{State: event.AccountPairing, QRCode: item.Code, ExpiresAt: &exp})
		case whatsmeow.QRChannelSuccess.Event:
			s.log.Info("paired by QR code")
		case whatsmeow.QRChannelTimeout.Event:
			s.emitAccount(ctx, event.KindAccountDisconnected, event.AccountState{State: event.AccountDisconnected, Reason: "QR code not scanned in time; connect again to get new codes"})
		default:
			reason := "pairing failed"
			if item.Error != nil {
				reason += ": " + item.Error.Error()
			}
			s.emitAccount(ctx, event.KindAccountDisconnected, event.AccountState{State: event.AccountDisconnected, Reason: reason})
		}
	}
}

// Disconnect implements session.Session.
func (s *Session) Disconnect(ctx context.Context) error {
	cli := s.halt()
	if cli == nil {
		return nil
	}
	cli.Disconnect()
	s.emitAccount(ctx, event.KindAccountDisconnected, event.AccountState{State: event.AccountDisconnected, Reason: "disconnected on request"})
	return nil
}

// Close implements session.Session: like Disconnect, without an event —
// the account stays in its state for the next daemon to resume.
func (s *Session) Close(ctx context.Context) error {
	if cli := s.halt(); cli != nil {
		cli.Disconnect()
	}
	if s.px != nil {
		s.px.close()
	}
	return nil
}

// halt stops loops and returns the client, if any.
func (s *Session) halt() *whatsmeow.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.stop != nil {
		s.stop()
	}
	return s.cli
}

// Logout implements session.Session.
func (s *Session) Logout(ctx context.Context) error {
	s.mu.Lock()
	cli := s.cli
	s.mu.Unlock()
	if cli == nil {
		dev, err := s.devices.GetDevice(ctx)
		if err != nil {
			return fmt.Errorf("load auth state of %s: %w", s.acct.ID, err)
		}
		cli = whatsmeow.NewClient(dev, waLogger{s.log})
	}
	var err error
	if cli.Store.ID != nil && cli.IsConnected() {
		// Tells the phone to unlink this device, then deletes the auth state.
		err = cli.Logout(ctx)
	}
	if cli.Store.ID != nil && (err != nil || !cli.IsConnected()) {
		// Offline or refused: forget the device locally all the same; the
		// phone drops it from "Linked devices" after its own timeout.
		if derr := cli.Store.Delete(ctx); derr != nil {
			return fmt.Errorf("delete auth state of %s: %w", s.acct.ID, derr)
		}
	}
	s.halt()
	cli.Disconnect()
	s.emitAccount(ctx, event.KindAccountLoggedOut, event.AccountState{State: event.AccountLoggedOut, Reason: "logged out on request"})
	return nil
}

// PairPhone implements session.Session.
func (s *Session) PairPhone(ctx context.Context, phone string) (string, error) {
	s.mu.Lock()
	cli := s.cli
	s.mu.Unlock()
	if cli == nil || cli.Store.ID != nil {
		return "", fmt.Errorf("pair by phone code: %w (connect an unpaired account first)", session.ErrWrongState)
	}
	name := s.d.DeviceName
	if name == "" {
		name = "Wildcat"
	}
	// The websocket may still be handshaking right after Connect.
	deadline := time.Now().Add(15 * time.Second)
	for !cli.IsConnected() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("pair by phone code: %w (not connected to WhatsApp)", session.ErrWrongState)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, err := cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, "Chrome ("+name+")")
	if err != nil {
		return "", fmt.Errorf("pair by phone code: %w", err)
	}
	s.emitAccount(ctx, event.KindAccountPairingCode, event.AccountState{State: event.AccountPairing, PairingCode: code})
	return code, nil
}

// MarkRead implements session.Session.
func (s *Session) MarkRead(ctx context.Context, chatID, senderID string, ids []string) error {
	cli, err := s.loggedIn()
	if err != nil {
		return err
	}
	chat, err := ParseRecipient(chatID)
	if err != nil {
		return err
	}
	var sender types.JID
	if senderID != "" {
		if sender, err = ParseRecipient(senderID); err != nil {
			return err
		}
	}
	if err := cli.MarkRead(ctx, ids, s.now(), chat, sender); err != nil {
		return fmt.Errorf("mark read in %s: %w", chat, err)
	}
	return nil
}

// SetTyping implements session.Session.
func (s *Session) SetTyping(ctx context.Context, chatID string, state session.TypingState) error {
	cli, err := s.loggedIn()
	if err != nil {
		return err
	}
	chat, err := ParseRecipient(chatID)
	if err != nil {
		return err
	}
	presence, media := types.ChatPresenceComposing, types.ChatPresenceMediaText
	switch state {
	case session.TypingComposing:
	case session.TypingRecording:
		media = types.ChatPresenceMediaAudio
	case session.TypingPaused:
		presence = types.ChatPresencePaused
	default:
		return fmt.Errorf("%w: unknown typing state %q", session.ErrInvalidRequest, state)
	}
	if err := cli.SendChatPresence(ctx, chat, presence, media); err != nil {
		return fmt.Errorf("send chat presence to %s: %w", chat, err)
	}
	return nil
}

func (s *Session) loggedIn() (*whatsmeow.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cli == nil || !s.cli.IsLoggedIn() {
		return nil, fmt.Errorf("account %s: %w (not connected)", s.acct.ID, session.ErrWrongState)
	}
	return s.cli, nil
}

func (s *Session) emit(ctx context.Context, ev *event.Event) error {
	if err := s.sink.Emit(ctx, ev); err != nil {
		s.log.Error("event not stored; WhatsApp will redeliver", slog.String("event_id", ev.ID), slog.String("kind", string(ev.Kind)), slog.Any("error", err))
		return err
	}
	return nil
}

func (s *Session) emitAccount(ctx context.Context, kind event.Kind, st event.AccountState) {
	ev, err := event.NewAccountEvent(kind, s.acct.ID, s.now(), st)
	if err != nil {
		s.log.Error("build account event", slog.Any("error", err))
		return
	}
	// Account events outlive the call that caused them (e.g. a Disconnect
	// whose ctx ends right after), so they are stored on their own clock.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = s.emit(ctx, ev)
}
