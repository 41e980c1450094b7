// Package store connects wildcatd to MongoDB, the engine for installations
// that run several daemons, and names the collections the packages' MongoDB
// implementations share. The embedded engine is SQLite (core/store/sqlite);
// the tests run this engine against an in-process FerretDB
// (core/store/storetest) or the server WILDCAT_TEST_MONGODB_URI names.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// Options says which server to connect to.
type Options struct {
	// URI of a MongoDB server (mongodb:// or mongodb+srv://); required.
	URI string
	// Database holds every Wildcat collection.
	Database string
	// Logger for the store component; nil discards.
	Logger *slog.Logger
}

// Store is an open connection to the database.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	log    *slog.Logger
	uri    string // redacted, for logs

	closeOnce sync.Once
	closeErr  error
}

// Open creates the client. It does not wait for the server: the driver
// connects in the background and reconnects after losses, so a daemon
// started before its database simply reports not-ready until it can reach it.
func Open(opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.URI == "" {
		return nil, errors.New("store: no MongoDB URI")
	}
	s := &Store{log: log}
	uri := opts.URI
	s.uri = redact(uri)

	client, err := mongo.Connect(options.Client().
		ApplyURI(uri).
		SetAppName("wildcatd").
		// Fail a request quickly when the server is gone instead of the
		// driver's 30 s default; callers retry or report not-ready.
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second))
	if err != nil {
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

// Ping checks that the primary answers within ctx.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("ping %s: %w", s.uri, err)
	}
	return nil
}

// Close disconnects. Safe to call more than once.
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		if err := s.client.Disconnect(ctx); err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
			s.closeErr = fmt.Errorf("disconnect: %w", err)
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
