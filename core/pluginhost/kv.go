package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// KV is the plugins' key-value store: every plugin has its own namespace
// (its name), values are bytes. Expired entries read as absent and stay
// stored until Sweep removes them.
type KV interface {
	// Get reads a key of plugin's namespace; found is false for an absent
	// or expired key.
	Get(ctx context.Context, plugin, key string) (value []byte, found bool, err error)
	// Set writes a key; ttl > 0 makes it expire, 0 keeps it until deleted.
	Set(ctx context.Context, plugin, key string, value []byte, ttl time.Duration) error
	// Delete removes a key; an absent key is not an error.
	Delete(ctx context.Context, plugin, key string) error
	// Sweep deletes the expired keys of every plugin and returns how many.
	Sweep(ctx context.Context) (int64, error)
}

// MaxKVKey is the longest key a plugin may use, in bytes.
const MaxKVKey = 512

func checkKey(key string) error {
	if key == "" {
		return errors.New("kv: empty key")
	}
	if len(key) > MaxKVKey {
		return fmt.Errorf("kv: key of %d bytes is longer than %d", len(key), MaxKVKey)
	}
	return nil
}
