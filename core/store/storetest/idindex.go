package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // FerretDB's own SQLite driver, registered as "sqlite"
)

// FerretDB v1.24's SQLite backend creates each collection's unique _id index
// on the expression _ferretdb_sjson->"_id" but looks documents up with
// _ferretdb_sjson->'$._id'. SQLite matches expression indexes by their exact
// form, so every _id lookup, update and delete scans the whole table (about
// 2 µs per document: 10 ms for a point read in 5,000 documents). The engine
// therefore adds the index in the form the queries use, to every
// collection, as collections appear. FerretDB does not list these indexes
// and drops them with their table.

// idIndexSuffix names our index beside FerretDB's "<table>__id_".
const idIndexSuffix = "_wildcat_id"

// indexIDs adds the missing _id index to every collection of every
// database under dir. It is idempotent and cheap when there is nothing to
// do (one read of each database's catalogue).
func indexIDs(ctx context.Context, dir string) (created int, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	if err != nil {
		return 0, err
	}
	for _, f := range files {
		n, err := indexDatabase(ctx, f)
		created += n
		if err != nil {
			return created, fmt.Errorf("index %s: %w", filepath.Base(f), err)
		}
	}
	return created, nil
}

func indexDatabase(ctx context.Context, file string) (int, error) {
	// busy_timeout matches FerretDB's own connections: index creation waits
	// for a writer instead of failing, and FerretDB's writers wait for it.
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	missing, err := tablesWithoutIDIndex(ctx, db)
	if err != nil {
		return 0, err
	}
	created := 0
	for _, table := range missing {
		q := fmt.Sprintf(`CREATE UNIQUE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, table+idIndexSuffix, table)
		if _, err := db.ExecContext(ctx, q); err != nil {
			// The table may have been dropped meanwhile; the next pass
			// sees the catalogue as it is then.
			if strings.Contains(err.Error(), "no such table") {
				continue
			}
			return created, fmt.Errorf("create index on %s: %w", table, err)
		}
		created++
	}
	return created, nil
}

// tablesWithoutIDIndex lists collection tables that lack our index.
func tablesWithoutIDIndex(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT c.table_name FROM _ferretdb_collections c
		WHERE NOT EXISTS (
			SELECT 1 FROM sqlite_master m
			WHERE m.type = 'index' AND m.name = c.table_name || ?)`, idIndexSuffix)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil // a database being created or dropped
		}
		return nil, err
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	return tables, rows.Err()
}

// indexLoop keeps new collections indexed until ctx ends.
func indexLoop(ctx context.Context, dir string, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := indexIDs(ctx, dir); err != nil && ctx.Err() == nil {
			log.Warn("add _id index", slog.Any("error", err))
		} else if n > 0 {
			log.Debug("added _id index", slog.Int("collections", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
