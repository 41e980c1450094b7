package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Schema is one domain's tables: the numbered migrations of a package that
// keeps state on this engine. FS holds files named NNNN_what.sql at its root
// (e.g. 0001_messages.sql), applied once each, in order, each in its own
// transaction. A released migration is never edited: a change is a new file.
type Schema struct {
	// Domain names the package ("messages", "outbox"…); versions are
	// counted per domain, so packages add migrations independently.
	Domain string
	FS     fs.FS
}

type migration struct {
	version int
	name    string
	sql     string
}

func (s Schema) migrations() ([]migration, error) {
	entries, err := fs.ReadDir(s.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", s.Domain, err)
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("schema %s: migration %q is not named NNNN_what.sql", s.Domain, e.Name())
		}
		b, err := fs.ReadFile(s.FS, e.Name())
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", s.Domain, err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, k int) bool { return ms[i].version < ms[k].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("schema %s: migrations must be numbered 1, 2, 3…; %s is number %d", s.Domain, m.name, i+1)
		}
	}
	return ms, nil
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	domain     TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	applied_at TEXT    NOT NULL,
	PRIMARY KEY (domain, version)
) STRICT`

// migrate brings every schema up to date. It checks all of them before
// changing anything, so a database from a newer build is left as it was.
func migrate(ctx context.Context, db *sql.DB, schemas []Schema, log *slog.Logger) error {
	if _, err := db.ExecContext(ctx, migrationsTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	type plan struct {
		schema  Schema
		current int
		ms      []migration
	}
	var plans []plan
	for _, s := range schemas {
		ms, err := s.migrations()
		if err != nil {
			return err
		}
		var current int
		if err := db.QueryRowContext(ctx,
			`SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE domain = ?`, s.Domain).Scan(&current); err != nil {
			return fmt.Errorf("read schema version of %s: %w", s.Domain, err)
		}
		if current > len(ms) {
			return fmt.Errorf("%w: %s schema is at version %d, this build knows up to %d; run the newer wildcatd",
				ErrNewerSchema, s.Domain, current, len(ms))
		}
		plans = append(plans, plan{s, current, ms})
	}
	for _, p := range plans {
		for _, m := range p.ms[p.current:] {
			if err := apply(ctx, db, p.schema.Domain, m); err != nil {
				return err
			}
			log.Info("schema migrated", slog.String("domain", p.schema.Domain), slog.Int("version", m.version), slog.String("migration", m.name))
		}
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, domain string, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s %s: %w", domain, m.name, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migrate %s %s: %w", domain, m.name, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (domain, version, name, applied_at) VALUES (?, ?, ?, ?)`,
		domain, m.version, m.name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("migrate %s %s: record: %w", domain, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s %s: commit: %w", domain, m.name, err)
	}
	return nil
}

// SchemaIn is the Schema of domain whose migrations are in dir of fsys (an
// embed.FS holding dir/*.sql). It panics when dir is missing: a build
// without its migrations is a programming error, found by any test.
func SchemaIn(domain string, fsys fs.FS, dir string) Schema {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("schema %s: %v", domain, err))
	}
	return Schema{Domain: domain, FS: sub}
}
