package pluginhost

import (
	"context"
	"fmt"
	"time"

	"github.com/wildcathub/wildcat/core/sealing"
)

// SealedKV wraps kv so that values are sealed at rest (package sealing);
// keys stay clear, they are how entries are found. With keys nil values
// are written as they are and sealed ones cannot be read.
func SealedKV(kv KV, keys *sealing.Keyring) KV { return &sealedKV{KV: kv, keys: keys} }

type sealedKV struct {
	KV
	keys *sealing.Keyring
}

func (k *sealedKV) Get(ctx context.Context, plugin, key string) ([]byte, bool, error) {
	v, found, err := k.KV.Get(ctx, plugin, key)
	if err != nil || !found {
		return v, found, err
	}
	p, err := k.keys.Open(v, []byte(plugin))
	if err != nil {
		return nil, false, fmt.Errorf("kv get %q of plugin %s: %w", key, plugin, err)
	}
	return p, true, nil
}

func (k *sealedKV) Set(ctx context.Context, plugin, key string, value []byte, ttl time.Duration) error {
	// The namespace is bound to the value: a value copied under another
	// plugin's name does not open.
	s, err := k.keys.Seal(value, []byte(plugin))
	if err != nil {
		return err
	}
	return k.KV.Set(ctx, plugin, key, s, ttl)
}

// KVEntries is an engine's plugin KV as the engine-to-engine copy sees it
// (SQLiteKV, MongoKV).
type KVEntries interface {
	Export(ctx context.Context, batch int, fn func([]*KVEntry) error) error
	Import(ctx context.Context, es []*KVEntry) error
}

// ReencryptKV re-seals under the active key every value of kv that is not
// under it (plaintext ones included) and reports how many it rewrote.
func ReencryptKV(ctx context.Context, kv KVEntries, keys *sealing.Keyring) (int64, error) {
	var n int64
	err := kv.Export(ctx, 500, func(es []*KVEntry) error {
		var out []*KVEntry
		for _, e := range es {
			if !keys.Stale(e.Value) {
				continue
			}
			p, err := keys.Open(e.Value, []byte(e.Plugin))
			if err != nil {
				return fmt.Errorf("kv %q of plugin %s: %w", e.Key, e.Plugin, err)
			}
			c := *e
			if c.Value, err = keys.Seal(p, []byte(e.Plugin)); err != nil {
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
		return n, fmt.Errorf("reencrypt plugin kv: %w", err)
	}
	return n, nil
}
