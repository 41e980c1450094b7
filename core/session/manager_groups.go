package session

import (
	"context"
	"errors"
	"fmt"
)

// ErrGroupsUnsupported: the account's driver does not manage groups (its
// Session is no GroupSession). Answer 501.
var ErrGroupsUnsupported = errors.New("the account's driver does not manage groups")

// Groups returns the group calls of the account's open session:
// ErrAccountNotFound for an unknown account, ErrWrongState when it has no
// running session here, ErrGroupsUnsupported when its driver has none.
func (m *Manager) Groups(ctx context.Context, id string) (GroupSession, error) {
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
	gs, ok := sess.(GroupSession)
	if !ok {
		return nil, fmt.Errorf("account %q: %w", id, ErrGroupsUnsupported)
	}
	return gs, nil
}
