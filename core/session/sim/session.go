package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
)

type state int

const (
	stateIdle         state = iota // open, not connected
	statePairing                   // showing QR codes
	stateConnected                 // online
	stateDisconnected              // dropped, reconnecting on its own
	stateClosed
)

// errClosed: the session was closed; open a new one.
var errClosed = errors.New("sim session is closed")

// Session is one sim account's connection to the Network.
type Session struct {
	n    *Network
	acct session.Account
	sink session.Sink
	jid  types.JID
	lid  types.JID
	log  *slog.Logger

	// transition serialises state changes together with the account events
	// that report them, so the stored state follows the real order.
	transition sync.Mutex

	mu      sync.Mutex
	state   state
	rc      *remoteConn        // the remote network connection (remote.go); nil in process
	stopRun context.CancelFunc // ends the current run: pairing or inbox delivery
	scanned chan struct{}

	ctx    context.Context // Open → Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newSession(n *Network, acct session.Account, sink session.Sink) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	return &Session{
		n: n, acct: acct, sink: sink,
		jid: JID(acct.ID), lid: LID(acct.ID),
		log:     n.log.With(slog.String("account", acct.ID)),
		stopRun: func() {},
		scanned: make(chan struct{}, 1),
		ctx:     ctx, cancel: cancel,
	}
}

func (s *Session) getState() state {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Session) isClosed() bool { return s.getState() == stateClosed }

func (s *Session) normalizer(src event.Source) *whatsapp.Normalizer {
	return &whatsapp.Normalizer{AccountID: s.acct.ID, Source: src}
}

func (s *Session) paired(ctx context.Context) (bool, error) {
	a, err := s.n.opts.Auth.Load(ctx, s.acct.ID)
	if err != nil {
		return false, fmt.Errorf("read sim auth state: %w", err)
	}
	return a != nil, nil
}

// Connect implements session.Session: a paired account comes online at
// once; an unpaired one starts showing QR codes until the simulated phone
// scans one (after PairDelay, or when Network.Scan says so).
func (s *Session) Connect(ctx context.Context) error {
	s.transition.Lock()
	defer s.transition.Unlock()
	switch s.getState() {
	case stateClosed:
		return errClosed
	case statePairing, stateConnected, stateDisconnected:
		return fmt.Errorf("sim account %q is already connecting or connected: %w", s.acct.ID, session.ErrWrongState)
	}
	paired, err := s.paired(ctx)
	if err != nil {
		return err
	}
	run := s.newRun()
	if paired {
		if err := s.goOnline(ctx, run); err != nil {
			s.stopRun()
			s.setState(stateIdle)
			return err
		}
		return nil
	}
	s.setState(statePairing)
	s.drainScan()
	s.wg.Go(func() { s.pair(run) })
	return nil
}

// newRun ends the previous run and starts a new one.
func (s *Session) newRun() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopRun()
	ctx, cancel := context.WithCancel(s.ctx)
	s.stopRun = cancel
	return ctx
}

func (s *Session) endRun() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopRun()
	s.stopRun = func() {}
}

func (s *Session) setState(st state) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateClosed {
		s.state = st
	}
}

func (s *Session) drainScan() {
	select {
	case <-s.scanned:
	default:
	}
}

// goOnline reports connected and starts delivering the inbox. The caller
// holds transition.
func (s *Session) goOnline(ctx context.Context, run context.Context) error {
	ev, err := event.NewAccountEvent(event.KindAccountConnected, s.acct.ID, time.Now(), event.AccountState{
		State: event.AccountConnected, JID: s.jid.String(), PushName: s.pushName(),
	})
	if err != nil {
		return err
	}
	var rc *remoteConn
	if s.n.opts.NetworkURL != "" {
		if rc, err = s.dialRemote(run); err != nil {
			return err
		}
	}
	s.setState(stateConnected)
	// The connection is in place before "connected" is reported: whoever
	// sees the state may send or inject at once.
	if rc != nil {
		s.mu.Lock()
		s.rc = rc
		s.mu.Unlock()
	}
	if err := s.sink.Emit(ctx, ev); err != nil {
		if rc != nil {
			s.mu.Lock()
			s.rc = nil
			s.mu.Unlock()
			_ = rc.c.CloseNow()
		}
		return fmt.Errorf("report connected: %w", err)
	}
	if rc != nil {
		s.wg.Go(func() { rc.run(run) })
		return nil
	}
	b := s.n.inbox(s.acct.ID)
	s.wg.Go(func() { b.run(run, s) })
	return nil
}

func (s *Session) pushName() string {
	if s.acct.Name != "" {
		return s.acct.Name
	}
	return s.acct.ID
}

// pair shows rotating QR codes until the phone "scans" one.
func (s *Session) pair(run context.Context) {
	auto := make(<-chan time.Time)
	if s.n.opts.PairDelay >= 0 {
		t := time.NewTimer(s.n.opts.PairDelay)
		defer t.Stop()
		auto = t.C
	}
	for {
		expires := time.Now().Add(s.n.opts.QRInterval)
		if err := s.emitAccount(run, event.KindAccountQR, event.AccountState{State: event.AccountPairing, QRCode: newQRCode(s.acct.ID), ExpiresAt: &expires}); err != nil {
			s.log.Warn("sim QR code not reported", slog.Any("error", err))
		}
		rotate := time.NewTimer(s.n.opts.QRInterval)
		select {
		case <-run.Done():
			rotate.Stop()
			return
		case <-rotate.C:
			continue
		case <-auto:
		case <-s.scanned:
		}
		rotate.Stop()
		s.completePairing(run)
		return
	}
}

// completePairing saves the auth state and goes online, retrying while
// the store fails.
func (s *Session) completePairing(run context.Context) {
	for attempt := 1; ; attempt++ {
		err := s.tryCompletePairing(run)
		if err == nil || run.Err() != nil {
			return
		}
		wait := min(time.Duration(attempt)*200*time.Millisecond, 5*time.Second)
		s.log.Warn("sim pairing not stored; retrying", slog.Duration("retry_in", wait), slog.Any("error", err))
		select {
		case <-run.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (s *Session) tryCompletePairing(run context.Context) error {
	s.transition.Lock()
	defer s.transition.Unlock()
	if run.Err() != nil || s.getState() != statePairing {
		return nil
	}
	a := Auth{JID: s.jid.String(), LID: s.lid.String(), PairedAt: time.Now().UTC()}
	if err := s.n.opts.Auth.Save(run, s.acct.ID, a); err != nil {
		return fmt.Errorf("store sim auth state: %w", err)
	}
	return s.goOnline(run, run)
}

// emitAccount reports an account event while holding transition, unless
// run has ended meanwhile (the state moved on).
func (s *Session) emitAccount(run context.Context, kind event.Kind, st event.AccountState) error {
	s.transition.Lock()
	defer s.transition.Unlock()
	if run.Err() != nil {
		return nil
	}
	ev, err := event.NewAccountEvent(kind, s.acct.ID, time.Now(), st)
	if err != nil {
		return err
	}
	return s.sink.Emit(run, ev)
}

func (s *Session) scan() error {
	if s.getState() != statePairing {
		return fmt.Errorf("sim account %q is not pairing: %w", s.acct.ID, session.ErrWrongState)
	}
	select {
	case s.scanned <- struct{}{}:
	default:
	}
	return nil
}

// drop simulates a lost connection and the driver's own reconnect.
func (s *Session) drop() error {
	s.transition.Lock()
	defer s.transition.Unlock()
	if s.getState() != stateConnected {
		return fmt.Errorf("sim account %q is not connected: %w", s.acct.ID, session.ErrWrongState)
	}
	run := s.newRun() // stops inbox delivery
	s.setState(stateDisconnected)
	ev, err := event.NewAccountEvent(event.KindAccountDisconnected, s.acct.ID, time.Now(), event.AccountState{
		State: event.AccountDisconnected, Reason: "connection dropped (simulated)",
	})
	if err != nil {
		return err
	}
	if err := s.sink.Emit(run, ev); err != nil {
		s.log.Warn("sim disconnect not reported", slog.Any("error", err))
	}
	s.wg.Go(func() { s.reconnect(run) })
	return nil
}

// reconnect brings a disconnected session back online, every
// ReconnectDelay until it succeeds or run ends.
func (s *Session) reconnect(run context.Context) {
	for attempt := 1; ; attempt++ {
		select {
		case <-run.Done():
			return
		case <-time.After(s.n.opts.ReconnectDelay):
		}
		s.transition.Lock()
		var err error
		if run.Err() == nil && s.getState() == stateDisconnected {
			err = s.goOnline(run, run)
		}
		s.transition.Unlock()
		if err == nil {
			return
		}
		s.log.Warn("sim reconnect failed; retrying", slog.Int("attempt", attempt), slog.Any("error", err))
	}
}

// Disconnect implements session.Session: offline, auth state kept. On the
// remote network it returns once the server has seen the goodbye.
func (s *Session) Disconnect(ctx context.Context) error {
	err := s.disconnect(ctx)
	s.waitRemote(ctx)
	return err
}

func (s *Session) disconnect(ctx context.Context) error {
	s.transition.Lock()
	defer s.transition.Unlock()
	prev := s.getState()
	if prev == stateClosed {
		return errClosed
	}
	s.endRun()
	s.setState(stateIdle)
	if prev == stateIdle {
		return nil
	}
	ev, err := event.NewAccountEvent(event.KindAccountDisconnected, s.acct.ID, time.Now(), event.AccountState{
		State: event.AccountDisconnected, Reason: "disconnected",
	})
	if err != nil {
		return err
	}
	return s.sink.Emit(ctx, ev)
}

// Logout implements session.Session: the auth state is deleted and
// account.logged_out reported; ErrNotPaired when there was nothing to unlink.
func (s *Session) Logout(ctx context.Context) error {
	err := s.logout(ctx)
	s.waitRemote(ctx)
	return err
}

func (s *Session) logout(ctx context.Context) error {
	s.transition.Lock()
	defer s.transition.Unlock()
	prev := s.getState()
	if prev == stateClosed {
		return errClosed
	}
	paired, err := s.paired(ctx)
	if err != nil {
		return err
	}
	if !paired && prev != statePairing {
		return fmt.Errorf("sim account %q: %w", s.acct.ID, session.ErrNotPaired)
	}
	s.endRun()
	s.setState(stateIdle)
	if err := s.n.opts.Auth.Delete(ctx, s.acct.ID); err != nil {
		return fmt.Errorf("delete sim auth state: %w", err)
	}
	ev, err := event.NewAccountEvent(event.KindAccountLoggedOut, s.acct.ID, time.Now(), event.AccountState{
		State: event.AccountLoggedOut, Reason: "logged out",
	})
	if err != nil {
		return err
	}
	return s.sink.Emit(ctx, ev)
}

// PairPhone implements session.Session: the code is reported as
// account.pairing_code and the simulated phone "types" it after PairDelay.
func (s *Session) PairPhone(ctx context.Context, phone string) (string, error) {
	s.transition.Lock()
	defer s.transition.Unlock()
	if s.getState() != statePairing {
		return "", fmt.Errorf("sim account %q is not pairing: %w", s.acct.ID, session.ErrWrongState)
	}
	if !isDigits(phone) || len(phone) < 7 || len(phone) > 15 {
		return "", fmt.Errorf("%w: phone %q is not 7 to 15 digits", session.ErrInvalidRequest, phone)
	}
	code := newPairingCode()
	ev, err := event.NewAccountEvent(event.KindAccountPairingCode, s.acct.ID, time.Now(), event.AccountState{
		State: event.AccountPairing, PairingCode: code,
	})
	if err != nil {
		return "", err
	}
	if err := s.sink.Emit(ctx, ev); err != nil {
		return "", fmt.Errorf("report pairing code: %w", err)
	}
	return code, nil
}

// Close implements session.Session: everything stops, nothing is reported,
// so the stored state is what the next start resumes.
func (s *Session) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return nil
	}
	s.state = stateClosed
	s.mu.Unlock()
	s.cancel()
	s.n.release(s)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close sim session %q: %w", s.acct.ID, ctx.Err())
	}
}

// DownloadMedia implements session.Session from the network's media store.
func (s *Session) DownloadMedia(ctx context.Context, msg *event.Message) (io.ReadCloser, error) {
	if msg == nil || !msg.HasMedia || msg.Media == nil || msg.Media.DirectPath == "" {
		return nil, session.ErrNoMedia
	}
	b, ok := s.n.getMedia(msg.Media.DirectPath)
	if !ok {
		return nil, fmt.Errorf("sim media %s is not held by this daemon (sim media lives in memory): %w", msg.Media.DirectPath, session.ErrNoMedia)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// SetTyping implements session.Session; the sim shows typing to nobody.
func (s *Session) SetTyping(ctx context.Context, chatID string, st session.TypingState) error {
	if s.getState() != stateConnected {
		return fmt.Errorf("sim account %q is not connected: %w", s.acct.ID, session.ErrWrongState)
	}
	return nil
}

func newQRCode(accountID string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "2@sim-" + accountID + "," + base64.StdEncoding.EncodeToString(b[:])
}

// pairingAlphabet is the one WhatsApp uses for pairing codes (no 0, O, I).
const pairingAlphabet = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"

func newPairingCode() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	var sb strings.Builder
	for i, c := range b {
		if i == 4 {
			sb.WriteByte('-')
		}
		sb.WriteByte(pairingAlphabet[int(c)%len(pairingAlphabet)])
	}
	return sb.String()
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// ensure the sim stays a complete session.Session.
var _ session.Session = (*Session)(nil)
