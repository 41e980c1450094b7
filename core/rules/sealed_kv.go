package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/sealing"
)

// SealedKV wraps st so that the values rules Set are sealed at rest
// (package sealing), stored as a JSON string holding the sealed text so
// every engine still holds JSON. Numbers stay clear: they are what Incr
// adds to, in one atomic update of the engine, which it could not do to a
// sealed value. With keys nil values are written as they are and sealed
// ones cannot be read.
func SealedKV(st Store, keys *sealing.Keyring) Store { return &sealedKV{Store: st, keys: keys} }

type sealedKV struct {
	Store
	keys *sealing.Keyring
}

// envelope is what the store holds for value: the sealed text as a JSON
// string, or value itself with encryption off — unless value is a JSON
// string that would read as an envelope, which is then escaped.
func envelope(keys *sealing.Keyring, value json.RawMessage) (json.RawMessage, error) {
	if isNumber(value) {
		return value, nil // Incr must be able to add to it
	}
	if !keys.Enabled() {
		var s string
		if json.Unmarshal(value, &s) != nil || !strings.HasPrefix(s, "\x1bwc") {
			return value, nil
		}
		return json.Marshal(sealing.Escape(string(value)))
	}
	s, err := keys.SealString(string(value))
	if err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// unwrap reads an envelope back; plain JSON (counters, values stored
// before encryption was on) reads as it is.
func unwrap(keys *sealing.Keyring, stored json.RawMessage) (json.RawMessage, bool, error) {
	var s string
	if len(stored) == 0 || stored[0] != '"' || json.Unmarshal(stored, &s) != nil || !strings.HasPrefix(s, "\x1bwc") {
		return stored, false, nil
	}
	p, err := keys.OpenString(s)
	if err != nil {
		return nil, true, err
	}
	return json.RawMessage(p), true, nil
}

func (k *sealedKV) Get(ctx context.Context, rule, key string) (json.RawMessage, bool, error) {
	v, found, err := k.Store.Get(ctx, rule, key)
	if err != nil || !found {
		return v, found, err
	}
	p, _, err := unwrap(k.keys, v)
	if err != nil {
		return nil, false, fmt.Errorf("kv get %q of rule %s: %w", key, rule, err)
	}
	return p, true, nil
}

func (k *sealedKV) Set(ctx context.Context, rule, key string, value json.RawMessage, ttl time.Duration) error {
	env, err := envelope(k.keys, value)
	if err != nil {
		return err
	}
	return k.Store.Set(ctx, rule, key, env, ttl)
}

// KVEntries is an engine's rule KV as the engine-to-engine copy sees it
// (SQLiteKV, MongoKV).
type KVEntries interface {
	Export(ctx context.Context, batch int, fn func([]*KVEntry) error) error
	Import(ctx context.Context, es []*KVEntry) error
}

// ReencryptKV re-seals under the active key every value of kv that is not
// under it, values stored in the clear before encryption was on included
// (counters stay clear), and reports how many it rewrote.
func ReencryptKV(ctx context.Context, kv KVEntries, keys *sealing.Keyring) (int64, error) {
	var n int64
	err := kv.Export(ctx, 500, func(es []*KVEntry) error {
		var out []*KVEntry
		for _, e := range es {
			p, sealed, err := unwrap(keys, e.Value)
			if err != nil {
				return fmt.Errorf("kv %q of rule %s: %w", e.Key, e.Rule, err)
			}
			if sealed {
				var s string
				_ = json.Unmarshal(e.Value, &s)
				if !keys.StaleString(s) {
					continue
				}
			} else if isNumber(p) {
				continue // a counter
			}
			c := *e
			if c.Value, err = envelope(keys, p); err != nil {
				return err
			}
			out = append(out, &c)
		}
		if len(out) == 0 {
			return nil
		}
		n += int64(len(out))
		return kv.Import(ctx, out)
	})
	if err != nil {
		return n, fmt.Errorf("reencrypt rule kv: %w", err)
	}
	return n, nil
}

func isNumber(v json.RawMessage) bool {
	var f float64
	return json.Unmarshal(v, &f) == nil
}
