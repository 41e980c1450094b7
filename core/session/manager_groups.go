package session

import (
	"context"
	"errors"
	"fmt"
)

// ErrGroupsUnsupported: the account's driver does not manage groups (its
// Session is no GroupSession). Answer 501.
var ErrGroupsUnsupported = errors.New("the account's driver does not manage groups")

// ErrChannelsUnsupported: the account's driver does not read channels
// (its Session is no ChannelSession). Answer 501.
var ErrChannelsUnsupported = errors.New("the account's driver does not read channels")

// Groups returns the group calls of the account's open session:
// ErrAccountNotFound for an unknown account, ErrWrongState when it has no
// running session here, ErrGroupsUnsupported when its driver has none.
func (m *Manager) Groups(ctx context.Context, id string) (GroupSession, error) {
	return capability[GroupSession](ctx, m, id, ErrGroupsUnsupported)
}

// Channels returns the channel calls of the account's open session, with
// the errors of Groups (ErrChannelsUnsupported when its driver has none).
func (m *Manager) Channels(ctx context.Context, id string) (ChannelSession, error) {
	return capability[ChannelSession](ctx, m, id, ErrChannelsUnsupported)
}

// capability is the account's open session as the optional interface C,
// or unsupported when its driver's session does not implement it.
func capability[C any](ctx context.Context, m *Manager, id string, unsupported error) (C, error) {
	var none C
	sess := m.session(id)
	if sess == nil {
		if err := m.noSession(id); errors.Is(err, ErrClosed) {
			return none, err
		}
		if _, err := m.accounts.Get(ctx, id); err != nil {
			return none, err
		}
		return none, m.noSession(id)
	}
	c, ok := sess.(C)
	if !ok {
		return none, fmt.Errorf("account %q: %w", id, unsupported)
	}
	return c, nil
}
