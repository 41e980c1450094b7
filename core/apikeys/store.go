package apikeys

import (
	"context"
	"time"
)

// Store keeps the keys. A revoked or rotated key stops on the next
// request, on every daemon: reads go to the store, except through Cached,
// for a store only one daemon writes.
type Store interface {
	// Insert stores a new key; ErrExists when the id is taken.
	Insert(ctx context.Context, k *Key) error
	// Get reads one key; ErrNotFound when there is none.
	Get(ctx context.Context, id string) (*Key, error)
	// List reads every key, by id.
	List(ctx context.Context) ([]*Key, error)
	// SetHash replaces a key's hash (rotation); ErrNotFound when there is none.
	SetHash(ctx context.Context, id string, hash []byte, rotatedAt time.Time) error
	// Delete removes a key; ErrNotFound when there is none.
	Delete(ctx context.Context, id string) error
	// Count counts the keys.
	Count(ctx context.Context) (int64, error)
}
