package session

import (
	"context"
	"errors"
	"fmt"
)

// ErrChannelsUnsupported: the account's driver does not read channels
// (its Session is no ChannelSession). Answer 501.
var ErrChannelsUnsupported = errors.New("the account's driver does not read channels")

// Channels returns the channel calls of the account's open session:
// ErrAccountNotFound for an unknown account, ErrWrongState when it has no
// running session here, ErrChannelsUnsupported when its driver has none.
func (m *Manager) Channels(ctx context.Context, id string) (ChannelSession, error) {
	sess := m.session(id)
	if sess == nil {
		if err := m.noSession(id); errors.Is(err, ErrClosed) {
			return nil, err
		}
		if _, err := m.accounts.Get(ctx, id); err != nil {
			return nil, err
		}
		return nil, m.noSession(id)
	}
	cs, ok := sess.(ChannelSession)
	if !ok {
		return nil, fmt.Errorf("account %q: %w", id, ErrChannelsUnsupported)
	}
	return cs, nil
}
