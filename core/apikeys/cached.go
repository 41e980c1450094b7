package apikeys

import (
	"context"
	"sync"
	"time"
)

// Cached is a Store for the only writer of its keys: the embedded engine,
// whose database file one daemon holds locked, so every change to a key
// goes through this store. Reads are answered from memory and each write
// drops what it changes before it returns, so a revoked or rotated key
// still fails on the very next request — without a database read on every
// request (a fifth of a small request's cost). Never put it over a store
// other daemons write (MongoDB): their revocations would not be seen.
func Cached(s Store) Store { return &cached{Store: s, keys: map[string]*Key{}} }

type cached struct {
	Store
	mu   sync.RWMutex
	keys map[string]*Key // id → key as stored; absent: not read yet
	// gen counts writes: a read that a write overtook does not fill the
	// cache with what it read before the write.
	gen uint64
}

func (c *cached) Get(ctx context.Context, id string) (*Key, error) {
	c.mu.RLock()
	k, ok := c.keys[id]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		cp := *k
		return &cp, nil
	}
	k, err := c.Store.Get(ctx, id)
	if err != nil {
		return nil, err // unknown keys are not remembered: ids are the caller's to invent
	}
	cp := *k
	c.mu.Lock()
	if c.gen == gen {
		c.keys[id] = &cp
	}
	c.mu.Unlock()
	return k, nil
}

// forget drops id around a write, and counts the write so that no read
// begun before it ends caches what it read.
func (c *cached) forget(id string, write func() error) error {
	c.mu.Lock()
	c.gen++
	delete(c.keys, id)
	c.mu.Unlock()
	err := write()
	c.mu.Lock()
	c.gen++
	delete(c.keys, id)
	c.mu.Unlock()
	return err
}

func (c *cached) Insert(ctx context.Context, k *Key) error {
	return c.forget(k.ID, func() error { return c.Store.Insert(ctx, k) })
}

func (c *cached) SetHash(ctx context.Context, id string, hash []byte, rotatedAt time.Time) error {
	return c.forget(id, func() error { return c.Store.SetHash(ctx, id, hash, rotatedAt) })
}

func (c *cached) Delete(ctx context.Context, id string) error {
	return c.forget(id, func() error { return c.Store.Delete(ctx, id) })
}
