package session

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
)

// accountSink is the Sink one session reports to. It pins the account id,
// so a driver bug cannot write into another account.
type accountSink struct {
	m  *Manager
	id string
}

func (s *accountSink) Emit(ctx context.Context, ev *event.Event) error {
	if ev != nil && ev.AccountID != s.id {
		return fmt.Errorf("session of account %q emitted an event of account %q", s.id, ev.AccountID)
	}
	return s.m.Emit(ctx, ev)
}

// Emit stores ev — messages in the messages collection, receipts, edits and
// revokes applied to the message they target, account state in the account
// document — and then hands it to OnEvent. It returns nil only once the
// event is stored and OnEvent took it, and is idempotent by event id.
func (m *Manager) Emit(ctx context.Context, ev *event.Event) error {
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	if m.guard != nil {
		// A daemon that no longer holds the account's lease writes nothing
		// for it; the stored messages name the writer and its epoch.
		w, err := m.guard(ev.AccountID)
		if err != nil {
			return fmt.Errorf("emit %s event %q: %w", ev.Kind, ev.ID, err)
		}
		ctx = messages.WithWriter(ctx, w)
	}
	fresh, err := m.store(ctx, ev)
	if err != nil {
		return fmt.Errorf("store %s event %q: %w", ev.Kind, ev.ID, err)
	}
	m.noteState(ev)
	if !fresh {
		// A redelivered message whose first run did not finish the pipeline
		// (the daemon died, or OnEvent refused it) goes through it again:
		// the stages are idempotent, so a run still queued is harmless.
		pending, err := m.redeliveredPending(ctx, ev)
		if err != nil {
			return fmt.Errorf("store %s event %q: %w", ev.Kind, ev.ID, err)
		}
		if !pending {
			m.log.Debug("event already stored", slog.String("account", ev.AccountID), slog.String("event_id", ev.ID))
			return nil
		}
		m.log.Debug("event already stored but not through the pipeline; submitting again",
			slog.String("account", ev.AccountID), slog.String("event_id", ev.ID))
	}
	if m.onEvent != nil {
		if err := m.onEvent(ctx, ev); err != nil {
			return fmt.Errorf("hand %s event %q on: %w", ev.Kind, ev.ID, err)
		}
	}
	return nil
}

// redeliveredPending reports whether ev, a message event already stored,
// has not finished the pipeline.
func (m *Manager) redeliveredPending(ctx context.Context, ev *event.Event) (bool, error) {
	if !messages.Recoverable(ev) {
		return false, nil
	}
	return m.msgs.PipelinePending(ctx, messages.DocID(ev.AccountID, ev.Message.MessageID))
}

// store persists ev and reports whether it was new. Only message documents
// can be recognised as already stored; every other event counts as new,
// since applying it again is harmless.
func (m *Manager) store(ctx context.Context, ev *event.Event) (fresh bool, err error) {
	switch ev.Kind {
	case event.KindMessageReceived, event.KindMessageSent, event.KindMessageReaction:
		return m.msgs.Record(ctx, ev)
	case event.KindMessageEdited:
		if fresh, err = m.msgs.Record(ctx, ev); err != nil {
			return false, err
		}
		// Applied even when the edit message was already stored: a crash
		// between the two writes must not lose the edit, and ApplyEdit
		// recognises an edit it has applied.
		_, err = m.msgs.ApplyEdit(ctx, ev)
		return fresh, err
	case event.KindMessageRevoked:
		if fresh, err = m.msgs.Record(ctx, ev); err != nil {
			return false, err
		}
		_, err = m.msgs.ApplyRevoke(ctx, ev)
		return fresh, err
	case event.KindMessageStatus:
		_, err = m.msgs.ApplyStatus(ctx, ev)
		return true, err
	case event.KindAccountQR, event.KindAccountPairingCode, event.KindAccountConnected,
		event.KindAccountDisconnected, event.KindAccountLoggedOut:
		c := accountChange(ev)
		if err := m.accounts.Apply(ctx, ev.AccountID, c); err != nil {
			return false, err
		}
		level := slog.LevelInfo
		if ev.Kind == event.KindAccountQR {
			level = slog.LevelDebug // a new code every 20 s while pairing
		}
		m.log.Log(ctx, level, "account state", slog.String("account", ev.AccountID), slog.String("event", string(ev.Kind)),
			slog.String("state", string(c.State)), slog.String("reason", c.Reason), slog.String("jid", ev.Account.JID))
		return true, nil
	}
	if ev.Kind == event.KindGroupUpdate {
		// The group's chat carries its subject.
		_, err = m.msgs.ApplyGroup(ctx, ev)
		return true, err
	}
	// Presence, typing and history events have no document of their own
	// yet; they go to OnEvent only.
	return true, nil
}

// accountChange turns an account.* event into the account update.
func accountChange(ev *event.Event) AccountChange {
	st := ev.Account
	at := ev.Timestamp
	if at.IsZero() {
		at = time.Now()
	}
	c := AccountChange{Reason: st.Reason, At: at}
	switch ev.Kind {
	case event.KindAccountQR:
		c.State = StatePairing
		exp := at.Add(20 * time.Second)
		if st.ExpiresAt != nil {
			exp = *st.ExpiresAt
		}
		c.QR = &QR{Code: st.QRCode, ExpiresAt: exp.UTC()}
	case event.KindAccountPairingCode:
		c.State = StatePairing
		c.PairingCode = st.PairingCode
	case event.KindAccountConnected:
		c.State = StateConnected
		c.ClearPairing, c.ClearLastError = true, true
		c.JID, c.PushName = st.JID, st.PushName
	case event.KindAccountDisconnected:
		c.State = StateDisconnected
	case event.KindAccountLoggedOut:
		c.State = StateLoggedOut
		c.ClearPairing = true
	}
	return c
}
