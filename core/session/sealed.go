package session

import (
	"context"
	"fmt"

	"github.com/wildcathub/wildcat/core/sealing"
)

// SealedAccounts wraps st so that an account's proxy URL, which may carry
// the proxy's password, is sealed at rest (package sealing). With keys nil
// values are written as they are and sealed ones cannot be read.
func SealedAccounts(st AccountStore, keys *sealing.Keyring) AccountStore {
	return &sealedAccounts{AccountStore: st, keys: keys}
}

type sealedAccounts struct {
	AccountStore
	keys *sealing.Keyring
}

func (s *sealedAccounts) Insert(ctx context.Context, a *AccountInfo) error {
	c := *a
	var err error
	if c.Proxy, err = s.keys.SealString(a.Proxy); err != nil {
		return fmt.Errorf("account %q: seal proxy: %w", a.ID, err)
	}
	return s.AccountStore.Insert(ctx, &c)
}

func (s *sealedAccounts) Apply(ctx context.Context, id string, c AccountChange) error {
	if c.Proxy != nil {
		sealed, err := s.keys.SealString(*c.Proxy)
		if err != nil {
			return fmt.Errorf("account %q: seal proxy: %w", id, err)
		}
		c.Proxy = &sealed
	}
	return s.AccountStore.Apply(ctx, id, c)
}

func (s *sealedAccounts) open(a *AccountInfo) error {
	p, err := s.keys.OpenString(a.Proxy)
	if err != nil {
		return fmt.Errorf("account %q: open proxy: %w", a.ID, err)
	}
	a.Proxy = p
	return nil
}

func (s *sealedAccounts) Get(ctx context.Context, id string) (*AccountInfo, error) {
	a, err := s.AccountStore.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.open(a); err != nil {
		return nil, err
	}
	return a, nil
}

func (s *sealedAccounts) List(ctx context.Context) ([]*AccountInfo, error) {
	as, err := s.AccountStore.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if err := s.open(a); err != nil {
			return nil, err
		}
	}
	return as, nil
}

// ReencryptAccounts re-seals under the active key the proxy of every
// account of st (the engine's store, not a SealedAccounts) that is not
// under it, plaintext included, and reports how many it rewrote.
func ReencryptAccounts(ctx context.Context, st AccountStore, keys *sealing.Keyring) (int64, error) {
	as, err := st.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("reencrypt accounts: %w", err)
	}
	var n int64
	for _, a := range as {
		if !keys.StaleString(a.Proxy) {
			continue
		}
		plain, err := keys.OpenString(a.Proxy)
		if err != nil {
			return n, fmt.Errorf("reencrypt account %q: %w", a.ID, err)
		}
		if err := SealedAccounts(st, keys).Apply(ctx, a.ID, AccountChange{Proxy: &plain}); err != nil {
			return n, fmt.Errorf("reencrypt account %q: %w", a.ID, err)
		}
		n++
	}
	return n, nil
}
