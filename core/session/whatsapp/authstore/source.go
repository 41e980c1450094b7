package authstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/store/sqlstore/upgrades"
	_ "modernc.org/sqlite" // the "sqlite" driver of a SQLite source

	"github.com/wildcathub/wildcat/core/sealing"
)

// A Source is another program's whatsmeow sqlstore — wuzapi, GoWA,
// mautrix-whatsapp or any program built on whatsmeow keep their linked
// devices in that layout — opened to import its devices into Wildcat
// (wildcatd accounts import). It is never written: a SQLite file is opened
// read-only (mode=ro, query_only), a PostgreSQL database in read-only
// transactions (default_transaction_read_only), and whatsmeow's Upgrade is
// never run on it; a schema this build's whatsmeow cannot read is refused
// (ErrSourceSchema).
type Source struct {
	db        *sql.DB
	container *sqlstore.Container
	// Dialect is "sqlite" or "postgres".
	Dialect string
	// Version is the source's whatsmeow schema version.
	Version int
}

// ErrSourceSchema means the source's whatsmeow schema is one this build's
// whatsmeow does not read: older (the program that owns it has not been
// updated) or newer (Wildcat is older than it).
var ErrSourceSchema = errors.New("unsupported whatsmeow schema")

// ErrNotSource means the location holds no whatsmeow store.
var ErrNotSource = errors.New("not a whatsmeow store")

// SchemaVersion is the whatsmeow sqlstore schema this build reads.
func SchemaVersion() int { return len(upgrades.Table) }

// IsPostgresURL reports whether loc names a PostgreSQL database.
func IsPostgresURL(loc string) bool {
	return strings.HasPrefix(loc, "postgres://") || strings.HasPrefix(loc, "postgresql://")
}

// OpenSource opens loc, a SQLite file path or a postgres:// URL, read-only,
// and checks its whatsmeow schema.
func OpenSource(ctx context.Context, loc string) (*Source, error) {
	db, dialect, err := OpenReadOnly(loc)
	if err != nil {
		return nil, err
	}
	s := &Source{db: db, Dialect: dialect}
	if err := s.checkSchema(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	// NewWithDB, not New: New would upgrade the source's schema.
	s.container = sqlstore.NewWithDB(db, dialect, nil)
	return s, nil
}

// OpenReadOnly opens loc, a SQLite file path or a postgres:// URL, so that
// nothing can be written through the handle; dialect is "sqlite" or
// "postgres". A location that cannot be a database is ErrNotSource.
func OpenReadOnly(loc string) (db *sql.DB, dialect string, err error) {
	if IsPostgresURL(loc) {
		cfg, err := pgx.ParseConfig(loc)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %v", ErrNotSource, err)
		}
		// Every transaction, implicit or not, is read-only: a write fails
		// on the server.
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
		return stdlib.OpenDB(*cfg), "postgres", nil
	}
	abs, err := filepath.Abs(loc)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrNotSource, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrNotSource, err)
	}
	if fi.IsDir() {
		return nil, "", fmt.Errorf("%w: %s is a directory (name the database file)", ErrNotSource, loc)
	}
	// mode=ro: SQLite opens the file read-only; query_only refuses any
	// write statement on top.
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)"
	if db, err = sql.Open("sqlite", dsn); err != nil {
		return nil, "", fmt.Errorf("open %s: %w", loc, err)
	}
	return db, "sqlite", nil
}

// checkSchema reads whatsmeow's version table as dbutil keeps it.
func (s *Source) checkSchema(ctx context.Context) error {
	// Wildcat's own database has whatsmeow's tables too, without the
	// private keys (they are in whatsapp_device_keys).
	if wildcat, err := s.HasTable(ctx, "whatsapp_devices"); err != nil || wildcat {
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotSource, err)
		}
		return fmt.Errorf("%w: it is a Wildcat database (use wildcatd store copy to move a Wildcat installation)", ErrNotSource)
	}
	var version int
	var compat sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT version, compat FROM whatsmeow_version LIMIT 1`).Scan(&version, &compat)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: its whatsmeow_version table is empty", ErrNotSource)
		}
		return fmt.Errorf("%w: no whatsmeow_version table (%v)", ErrNotSource, err)
	}
	s.Version = version
	readable := version
	if compat.Valid && compat.Int64 != 0 {
		readable = int(compat.Int64)
	}
	ours := SchemaVersion()
	switch {
	case version < ours:
		return fmt.Errorf("%w: the store has whatsmeow schema v%d, older than v%d which this build reads: update the program that owns it and start it once (it upgrades its own store), then import",
			ErrSourceSchema, version, ours)
	case readable > ours:
		return fmt.Errorf("%w: the store has whatsmeow schema v%d (readable from v%d), newer than v%d which this build reads: update Wildcat",
			ErrSourceSchema, version, readable, ours)
	}
	return nil
}

// Close closes the source.
func (s *Source) Close() error { return s.db.Close() }

// DB is the source's database handle, for reading what else the program
// stores beside whatsmeow's tables (its message history).
func (s *Source) DB() *sql.DB { return s.db }

// Devices lists the source's linked devices, private keys included, read
// through whatsmeow's own sqlstore.
func (s *Source) Devices(ctx context.Context) ([]*store.Device, error) {
	devs, err := s.container.GetAllDevices(ctx)
	if err != nil {
		return nil, fmt.Errorf("read devices: %w", err)
	}
	return devs, nil
}

// Account reads the whole auth state of dev (one of Devices) as accountID's,
// every secret sealed with keys as Wildcat stores it (keys nil: as it is):
// the device's private keys and its pre-keys, Signal sessions, sender keys,
// app-state sync keys, message secrets and buffered events.
func (s *Source) Account(ctx context.Context, dev *store.Device, accountID string, keys *sealing.Keyring) (*Account, error) {
	if dev.ID == nil {
		return nil, ErrDeviceIDMustBeSet
	}
	dk, err := sealDeviceKeys(keys, dev)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", dev.ID, err)
	}
	a := &Account{AccountID: accountID, Device: withoutKeys(dev), DeviceKeys: dk}
	if err := readRows(ctx, s.db, "whatsmeow_pre_keys", dev.ID.String(), a); err != nil {
		return nil, fmt.Errorf("read the auth state of %s: %w", dev.ID, err)
	}
	if err := sealRows(keys, a); err != nil {
		return nil, fmt.Errorf("device %s: %w", dev.ID, err)
	}
	return a, nil
}

// sealRows seals a's values read as plaintext from another program's store
// as SealDevice's stores and the engines seal them. With encryption off,
// Seal still escapes a value that would read as sealed.
func sealRows(keys *sealing.Keyring, a *Account) error {
	c := sealer{keys}
	var err error
	for i := range a.PreKeys {
		p := &a.PreKeys[i]
		if p.Key, err = sealKey(keys, fmt.Sprintf("pre-key %d", p.ID), aadPreKey(p.ID), p.Key); err != nil {
			return err
		}
	}
	for i := range a.Sessions {
		if a.Sessions[i].Record, err = c.seal("session", a.Sessions[i].Record); err != nil {
			return err
		}
	}
	for i := range a.SenderKeys {
		if a.SenderKeys[i].Record, err = c.seal("sender key", a.SenderKeys[i].Record); err != nil {
			return err
		}
	}
	for i := range a.AppStateKeys {
		if a.AppStateKeys[i].Data, err = c.seal("app-state key", a.AppStateKeys[i].Data); err != nil {
			return err
		}
	}
	for i := range a.MsgSecrets {
		if a.MsgSecrets[i].Secret, err = c.seal("message secret", a.MsgSecrets[i].Secret); err != nil {
			return err
		}
	}
	for i := range a.EventBuffer {
		if a.EventBuffer[i].Plaintext, err = c.seal("buffered event", a.EventBuffer[i].Plaintext); err != nil {
			return err
		}
	}
	return nil
}

// LIDMappings reads the source's whole LID map (facts about users, shared
// by its devices).
func (s *Source) LIDMappings(ctx context.Context) ([]*LIDMapping, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT lid, pn FROM whatsmeow_lid_map ORDER BY lid`)
	if err != nil {
		return nil, fmt.Errorf("read LID mappings: %w", err)
	}
	defer rows.Close()
	var out []*LIDMapping
	for rows.Next() {
		var m LIDMapping
		if err := rows.Scan(&m.LID, &m.PN); err != nil {
			return nil, fmt.Errorf("read LID mappings: %w", err)
		}
		out = append(out, &m)
	}
	return out, rows.Err()
}

// HasTable reports whether the source has a table of that name (in the
// schema its connection searches, on PostgreSQL).
func (s *Source) HasTable(ctx context.Context, name string) (bool, error) {
	wrapped, err := dbutil.NewWithDB(s.db, s.Dialect)
	if err != nil {
		return false, err
	}
	return wrapped.TableExists(ctx, name)
}
