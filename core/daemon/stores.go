package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/wildcathub/wildcat/core/apikeys"
	"github.com/wildcathub/wildcat/core/logging"
	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/rules"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/throttle"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// DatabaseFile is the embedded engine's database under data_dir.
const DatabaseFile = "wildcat.db"

// sqliteSchemas are the tables of every package that keeps state on the
// embedded engine; each package owns its migrations.
func sqliteSchemas() []sqlite.Schema {
	return []sqlite.Schema{
		messages.SQLiteSchema,
		media.SQLiteSchema,
		authstore.SQLiteSchema,
		session.SQLiteSchema,
		sim.SQLiteSchema,
		whatsapp.SQLiteSchema,
		rules.SQLiteSchema,
		pluginhost.SQLiteSchema,
		webhooks.SQLiteSchema,
		outbox.SQLiteSchema,
		apikeys.SQLiteSchema,
		throttle.SQLiteSchema,
	}
}

// openSQLite opens the embedded engine's database when no MongoDB URI is
// configured; d.sql stays nil on the MongoDB engine.
func (d *Daemon) openSQLite(ctx context.Context) error {
	if d.cfg.MongoDB.URI != "" {
		return nil
	}
	if err := refuseOldStore(d.cfg.DataDir); err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, sqlite.Options{
		Path:    filepath.Join(d.cfg.DataDir, DatabaseFile),
		Sync:    sqlite.Sync(d.cfg.MongoDB.EmbeddedSync),
		Schemas: sqliteSchemas(),
		Logger:  logging.Component(d.opts.Logger, "sqlite"),
	})
	if err != nil {
		return fmt.Errorf("open embedded database: %w", err)
	}
	d.sql = db
	return nil
}

// SQLiteSchemas are the embedded engine's tables, every package's, in the
// order the daemon migrates them (for wildcatd store copy, which opens a
// database file as the daemon does).
func SQLiteSchemas() []sqlite.Schema { return sqliteSchemas() }

// ErrOldStore means data_dir still holds the FerretDB files earlier Wildcat
// versions kept in data_dir/store. Starting beside them would look like
// data loss, so the daemon stops and says how to bring them over.
var ErrOldStore = errors.New("data_dir holds the embedded store of an earlier Wildcat")

// refuseOldStore stops the start when data_dir/store holds FerretDB's SQLite
// files (*.sqlite).
func refuseOldStore(dataDir string) error {
	old := filepath.Join(dataDir, "store")
	files, _ := filepath.Glob(filepath.Join(old, "*.sqlite"))
	if len(files) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; this version keeps everything in %s. To bring it over: run the earlier wildcatd's `wildcatd store serve --data-dir %s --listen 127.0.0.1:27017`, then `wildcatd store copy --from mongodb://127.0.0.1:27017 --to %s`, then move %s away",
		ErrOldStore, old, filepath.Join(dataDir, DatabaseFile), dataDir, dataDir, old)
}
