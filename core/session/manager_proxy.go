package session

import (
	"context"
	"log/slog"

	"github.com/wildcathub/wildcat/core/netproxy"
)

// SetProxy changes the account's proxy (proxy "" returns it to the
// driver's default). A session running here dials through the old one, so
// it is closed and started again, through the new one; an account without
// a session here only has its setting changed.
func (m *Manager) SetProxy(ctx context.Context, id, proxy string) (*AccountInfo, error) {
	if err := validateProxy(proxy); err != nil {
		return nil, err
	}
	defer m.ops.lock(id)()
	a, err := m.accounts.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.Proxy == proxy {
		return a, nil
	}
	if err := m.accounts.Apply(ctx, id, AccountChange{Proxy: &proxy}); err != nil {
		return nil, err
	}
	m.log.Info("account proxy changed", slog.String("account", id), slog.String("proxy", netproxy.Redact(proxy)))
	m.mu.Lock()
	running := m.sessions[id] != nil
	m.mu.Unlock()
	if running {
		if d, err := m.driver(a.Driver); err == nil {
			if sess := m.detach(id); sess != nil {
				if err := sess.Close(ctx); err != nil {
					m.log.Warn("closing the session for the new proxy failed", slog.String("account", id), slog.Any("error", err))
				}
			}
			a.Proxy = proxy
			m.startInBackground(a, d)
		}
	}
	return m.accounts.Get(ctx, id)
}
