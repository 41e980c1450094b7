// Package store connects wildcatd to MongoDB — a real server given its URI,
// or the embedded engine — and owns the collections and indexes every other
// package relies on.
//
// The embedded engine (FerretDB on SQLite) shapes what the rest of the code
// may assume: no multi-document transactions, no change streams, no TTL
// indexes, and only _id equality is answered from an index. Point reads go by
// _id, writes are idempotent, and expiry is an explicit job.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// Options says which store to open.
type Options struct {
	// URI of a MongoDB server; empty starts the embedded engine.
	URI string
	// Database holds every Wildcat collection.
	Database string
	// DataDir is where the embedded engine keeps its files (DataDir/store).
	DataDir string
	// EmbeddedListen exposes the embedded engine on host:port; empty keeps it
	// on a private loopback port.
	EmbeddedListen string
	// EmbeddedSync is the embedded engine's durability; empty means SyncFull.
	EmbeddedSync Sync
	// Logger for the store component; nil discards.
	Logger *slog.Logger
}

// Store is an open connection to the database.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	engine *Engine // nil with an external MongoDB
	log    *slog.Logger
	uri    string // redacted, for logs

	closeOnce sync.Once
	closeErr  error
}

// Open starts the embedded engine if needed and creates the client. It does
// not wait for the server: the driver connects in the background and
// reconnects after losses, so a daemon started before its database simply
// reports not-ready until it can reach it.
func Open(opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: log}
	uri := opts.URI
	if uri == "" {
		e, err := StartEngineSync(filepath.Join(opts.DataDir, "store"), opts.EmbeddedListen, opts.EmbeddedSync, log.With(slog.String("engine", "ferretdb")))
		if err != nil {
			return nil, err
		}
		s.engine = e
		uri = e.URI()
		log.Info("embedded store started", slog.String("dir", e.Dir()), slog.String("uri", uri))
	}
	s.uri = redact(uri)

	client, err := mongo.Connect(options.Client().
		ApplyURI(uri).
		SetAppName("wildcatd").
		// Fail a request quickly when the server is gone instead of the
		// driver's 30 s default; callers retry or report not-ready.
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second))
	if err != nil {
		if s.engine != nil {
			s.engine.Stop()
		}
		return nil, fmt.Errorf("connect to %s: %w", s.uri, err)
	}
	s.client = client
	s.db = client.Database(opts.Database)
	return s, nil
}

// DB is the Wildcat database.
func (s *Store) DB() *mongo.Database { return s.db }

// Client is the underlying driver client.
func (s *Store) Client() *mongo.Client { return s.client }

// Embedded reports whether the store runs the embedded engine.
func (s *Store) Embedded() bool { return s.engine != nil }

// Ping checks that the primary answers within ctx.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("ping %s: %w", s.uri, err)
	}
	return nil
}

// Close disconnects and stops the embedded engine. Safe to call more than once.
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		if err := s.client.Disconnect(ctx); err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
			s.closeErr = fmt.Errorf("disconnect: %w", err)
		}
		if s.engine != nil {
			s.engine.Stop()
		}
		s.log.Info("store closed")
	})
	return s.closeErr
}

// Watch pings every interval until ctx ends and logs each change between
// reachable and unreachable, so an outage shows in the log even when nobody
// polls /readyz. onChange, if set, sees every transition.
func (s *Store) Watch(ctx context.Context, interval time.Duration, onChange func(up bool)) {
	up := true
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := s.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && up:
			s.log.Error("store connection lost; the driver keeps reconnecting", slog.Any("error", err))
		case err == nil && !up:
			s.log.Info("store connection restored")
		default:
			continue
		}
		up = err == nil
		if onChange != nil {
			onChange(up)
		}
	}
}

// redact hides a password in a URI meant for logs.
func redact(uri string) string {
	cs, err := connstring.Parse(uri)
	if err != nil || cs.Password == "" {
		return uri
	}
	return cs.Scheme + "://" + cs.Username + ":***@" + fmt.Sprint(cs.Hosts)
}

// Redact returns uri with its password hidden, for messages.
func Redact(uri string) string { return redact(uri) }
