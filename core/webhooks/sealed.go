package webhooks

import (
	"context"
	"fmt"

	"github.com/wildcathub/wildcat/core/sealing"
)

// Sealed wraps st so that what lets someone act as Wildcat towards a
// receiver — the signing secrets and the custom header values (often a
// receiver's own token) — is sealed at rest (package sealing). With keys nil
// values are written as they are and sealed ones cannot be read.
func Sealed(st EndpointStore, keys *sealing.Keyring) EndpointStore {
	return &sealedEndpoints{EndpointStore: st, keys: keys}
}

type sealedEndpoints struct {
	EndpointStore
	keys *sealing.Keyring
}

// mapSecrets returns a copy of e with its secrets and header values passed
// through f.
func mapSecrets(e *Endpoint, f func(string) (string, error)) (*Endpoint, error) {
	c := *e
	var err error
	if c.Secret, err = f(e.Secret); err != nil {
		return nil, fmt.Errorf("webhook endpoint %s: secret: %w", e.ID, err)
	}
	if c.PreviousSecret, err = f(e.PreviousSecret); err != nil {
		return nil, fmt.Errorf("webhook endpoint %s: previous secret: %w", e.ID, err)
	}
	if e.Headers != nil {
		c.Headers = make(map[string]string, len(e.Headers))
		for k, v := range e.Headers {
			if c.Headers[k], err = f(v); err != nil {
				return nil, fmt.Errorf("webhook endpoint %s: header %s: %w", e.ID, k, err)
			}
		}
	}
	return &c, nil
}

func (s *sealedEndpoints) Insert(ctx context.Context, e *Endpoint) error {
	c, err := mapSecrets(e, s.keys.SealString)
	if err != nil {
		return err
	}
	return s.EndpointStore.Insert(ctx, c)
}

func (s *sealedEndpoints) Replace(ctx context.Context, e *Endpoint) error {
	c, err := mapSecrets(e, s.keys.SealString)
	if err != nil {
		return err
	}
	return s.EndpointStore.Replace(ctx, c)
}

func (s *sealedEndpoints) Get(ctx context.Context, id string) (*Endpoint, error) {
	e, err := s.EndpointStore.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return mapSecrets(e, s.keys.OpenString)
}

func (s *sealedEndpoints) List(ctx context.Context) ([]*Endpoint, error) {
	es, err := s.EndpointStore.List(ctx)
	if err != nil {
		return nil, err
	}
	for i, e := range es {
		if es[i], err = mapSecrets(e, s.keys.OpenString); err != nil {
			return nil, err
		}
	}
	return es, nil
}

// Reencrypt re-seals under the active key every endpoint of st (the
// engine's store, not a Sealed one) whose secrets or headers are not under
// it, plaintext ones included, and reports how many it rewrote.
func Reencrypt(ctx context.Context, st EndpointStore, keys *sealing.Keyring) (int, error) {
	es, err := st.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("reencrypt webhook endpoints: %w", err)
	}
	n := 0
	for _, e := range es {
		stale := false
		_, _ = mapSecrets(e, func(v string) (string, error) {
			stale = stale || keys.StaleString(v)
			return v, nil
		})
		if !stale {
			continue
		}
		p, err := mapSecrets(e, keys.OpenString)
		if err != nil {
			return n, err
		}
		if err := Sealed(st, keys).Replace(ctx, p); err != nil {
			return n, fmt.Errorf("reencrypt webhook endpoint %s: %w", e.ID, err)
		}
		n++
	}
	return n, nil
}
