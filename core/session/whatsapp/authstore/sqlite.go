package authstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"sync"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/store/sqlstore/upgrades"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/store/sqlite"
)

// On the embedded engine the auth state is kept by whatsmeow's own
// sqlstore, in its whatsmeow_* tables of the daemon's database file, rather
// than by a second implementation of every whatsmeow store interface. Ours
// are the whatsapp_devices table that says which device is whose, and the
// device's private keys and pre-keys, which must be sealable
// (sqlite_keys.go).

//go:embed schema/*.sql
var schemaFiles embed.FS

// SQLiteSchema is Wildcat's tables of the auth state; whatsmeow's own
// tables are migrated by whatsmeow (OpenSQLite).
var SQLiteSchema = sqlite.SchemaIn("whatsapp_auth", schemaFiles, "schema")

// SQLite keeps the auth state of every account in whatsmeow's sqlstore on
// the embedded engine's database file.
//
// sqlstore runs its own statements and transactions on its own handle of
// the file (sqlite.DB.Conn), not through the group committer: SQLite
// serialises them with the committer's through the file lock and busy
// timeout. The whatsapp_devices rows are written through that same handle
// so that they commit together with the device record they point at.
type SQLite struct {
	db        *dbutil.Database
	container *sqlstore.Container
	log       waLog.Logger
	keys      *sealing.Keyring // see Seal

	// preKeyMu serialises pre-key generation, as sqlstore does per
	// device: concurrent callers must not both fill the same shortfall.
	preKeyMu sync.Mutex
}

// Seal makes the accounts' devices seal their secrets with keys
// (sealed.go) and returns s.
func (s *SQLite) Seal(keys *sealing.Keyring) *SQLite {
	s.keys = keys
	return s
}

// OpenSQLite wraps db, a read-write handle on a database migrated with
// SQLiteSchema (sqlite.DB.Conn gives one; its connections have foreign keys
// on, which sqlstore's deletions rely on), and brings whatsmeow's tables up
// to date, moving private keys an older build left in them to Wildcat's
// tables. log may be nil. Close closes db.
func OpenSQLite(ctx context.Context, db *sql.DB, log waLog.Logger) (*SQLite, error) {
	if log == nil {
		log = waLog.Noop
	}
	// As sqlstore.NewWithDB, keeping the dbutil handle: a transaction it
	// starts (DoTxn) is joined by sqlstore's statements run with its ctx.
	wrapped, err := dbutil.NewWithDB(db, "sqlite")
	if err != nil {
		return nil, fmt.Errorf("wrap whatsmeow database: %w", err)
	}
	wrapped.UpgradeTable = upgrades.Table
	wrapped.VersionTable = "whatsmeow_version"
	s := &SQLite{db: wrapped, container: sqlstore.NewWithWrappedDB(wrapped, log), log: log}
	if err := s.container.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("upgrade whatsmeow tables: %w", err)
	}
	if err := s.moveKeys(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close closes the database handle.
func (s *SQLite) Close() error { return s.db.RawDB.Close() }

// LIDs returns the LID↔phone-number map shared by all accounts.
func (s *SQLite) LIDs() store.LIDStore { return s.container.LIDMap }

// Account returns accountID's auth state. Nothing is read until a method
// is called.
func (s *SQLite) Account(accountID string) *SQLiteAccount {
	return &SQLiteAccount{s: s, accountID: accountID}
}

// SQLiteAccount is one account's auth state on the embedded engine. It is
// the store.DeviceContainer of the account's device, so that whatsmeow's
// Save after pairing records whose device it is, and its Delete on logout
// forgets that too.
type SQLiteAccount struct {
	s         *SQLite
	accountID string
}

var _ store.DeviceContainer = (*SQLiteAccount)(nil)

// GetDevice returns the account's stored device, or a new unpaired one
// with fresh keys. The new one is stored when whatsmeow saves it after
// pairing (Device.Save, i.e. PutDevice); until then it has no stores, as
// with sqlstore's own NewDevice.
func (a *SQLiteAccount) GetDevice(ctx context.Context) (*store.Device, error) {
	jid, found, err := a.jid(ctx)
	if err != nil {
		return nil, err
	}
	if found {
		dev, stored, err := a.s.readDevice(ctx, jid)
		if err == nil && dev != nil {
			err = openDeviceKeys(a.s.keys, stored, dev)
		}
		if err != nil {
			return nil, fmt.Errorf("get device of account %s: %w", a.accountID, err)
		}
		if dev != nil {
			a.initDevice(dev)
			return dev, nil
		}
		// The row points at a device that is gone (deleted by hand):
		// the account is unpaired.
		if err := a.Delete(ctx); err != nil {
			return nil, err
		}
	}
	dev := a.s.container.NewDevice()
	dev.Container = a
	return dev, nil
}

// jid returns the JID of the account's device.
func (a *SQLiteAccount) jid(ctx context.Context) (types.JID, bool, error) {
	var raw string
	err := a.s.db.QueryRow(ctx, `SELECT jid FROM whatsapp_devices WHERE account_id = $1`, a.accountID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return types.EmptyJID, false, nil
	}
	if err != nil {
		return types.EmptyJID, false, fmt.Errorf("get device of account %s: %w", a.accountID, err)
	}
	jid, err := types.ParseJID(raw)
	if err != nil {
		return types.EmptyJID, false, fmt.Errorf("device of account %s: parse jid %q: %w", a.accountID, raw, err)
	}
	return jid, true, nil
}

// PutDevice stores the device record and makes it the account's, in one
// transaction. whatsmeow calls it (through Device.Save) after pairing and
// whenever a device field changes. A device the account had before under
// another JID is deleted with all its state.
func (a *SQLiteAccount) PutDevice(ctx context.Context, dev *store.Device) error {
	if dev.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	stored, err := sealDeviceKeys(a.s.keys, dev)
	if err != nil {
		return fmt.Errorf("put device %s of account %s: %w", dev.ID, a.accountID, err)
	}
	if err := a.putDevice(ctx, dev, stored); err != nil {
		return err
	}
	a.initDevice(dev)
	return nil
}

// putDevice stores the device record without its private keys in
// sqlstore's table (placeholder) and the keys as stored in Wildcat's.
func (a *SQLiteAccount) putDevice(ctx context.Context, dev *store.Device, stored DeviceKeys) error {
	if dev.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	jid := dev.ID.String()
	if dev.Account == nil || dev.SignedPreKey == nil || dev.SignedPreKey.Signature == nil ||
		stored.Noise == nil || stored.Identity == nil || stored.SignedPreKey == nil {
		// sqlstore would dereference them; a paired device has them all.
		return fmt.Errorf("put device %s of account %s: device keys or account identity are missing", jid, a.accountID)
	}
	err := a.s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		old, found, err := a.jid(ctx)
		if err != nil {
			return err
		}
		if found && old.String() != jid {
			if err := a.deleteState(ctx, old.String()); err != nil {
				return err
			}
		}
		if err := a.s.container.PutDevice(ctx, placeholder(dev)); err != nil {
			return err
		}
		if err := a.s.writeKeys(ctx, jid, stored); err != nil {
			return err
		}
		_, err = a.s.db.Exec(ctx, `INSERT INTO whatsapp_devices (account_id, jid) VALUES ($1, $2)
			ON CONFLICT (account_id) DO UPDATE SET jid = excluded.jid`, a.accountID, jid)
		return err
	})
	if err != nil {
		return fmt.Errorf("put device %s of account %s: %w", jid, a.accountID, err)
	}
	return nil
}

// initDevice wires dev's stores to the account: sqlstore's for the
// session state, Wildcat's for the pre-keys, sealing with the account's
// keys; saves and deletions come here. A device already wired keeps its
// stores, as with sqlstore.
func (a *SQLiteAccount) initDevice(dev *store.Device) {
	if !dev.Initialized {
		inner := sqlstore.NewSQLStore(a.s.container, *dev.ID)
		dev.Identities, dev.Sessions, dev.SenderKeys = inner, inner, inner
		dev.AppStateKeys, dev.AppState, dev.Contacts = inner, inner, inner
		dev.ChatSettings, dev.MsgSecrets, dev.PrivacyTokens = inner, inner, inner
		dev.EventBuffer = inner
		dev.LIDs = a.s.container.LIDMap
		if dev.Log == nil {
			dev.Log = a.s.log
		}
		dev.Initialized = true
	}
	if _, ours := dev.PreKeys.(*sqlitePreKeys); !ours {
		dev.PreKeys = &sqlitePreKeys{s: a.s, jid: dev.ID.String()}
	}
	dev.Container = a
	SealDevice(dev, a.s.keys)
}

// DeleteDevice removes all auth state of the account; whatsmeow calls it
// (through Device.Delete) when the device is logged out.
func (a *SQLiteAccount) DeleteDevice(ctx context.Context, dev *store.Device) error {
	var jid string
	if dev != nil && dev.ID != nil {
		jid = dev.ID.String()
	}
	return a.delete(ctx, jid)
}

// Delete removes all auth state of the account, paired or not (for account
// removal). The shared LID map is kept: its mappings are facts about other
// users.
func (a *SQLiteAccount) Delete(ctx context.Context) error { return a.delete(ctx, "") }

// delete removes the account's device and, if given, the device jid too
// unless another account claims it.
func (a *SQLiteAccount) delete(ctx context.Context, jid string) error {
	err := a.s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		old, found, err := a.jid(ctx)
		if err != nil {
			return err
		}
		if found {
			if err := a.deleteState(ctx, old.String()); err != nil {
				return err
			}
		}
		if jid != "" && (!found || jid != old.String()) {
			var other int
			err := a.s.db.QueryRow(ctx, `SELECT count(*) FROM whatsapp_devices WHERE jid = $1 AND account_id <> $2`,
				jid, a.accountID).Scan(&other)
			if err != nil {
				return err
			}
			if other == 0 {
				if err := a.deleteState(ctx, jid); err != nil {
					return err
				}
			}
		}
		_, err = a.s.db.Exec(ctx, `DELETE FROM whatsapp_devices WHERE account_id = $1`, a.accountID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete auth state of account %s: %w", a.accountID, err)
	}
	return nil
}

// deleteState deletes a device and everything stored under it. Deleting
// the device record cascades to every whatsmeow table but the privacy
// tokens, which whatsmeow's schema does not tie to the device, and to the
// keys in Wildcat's tables (deleted here first all the same).
func (a *SQLiteAccount) deleteState(ctx context.Context, jid string) error {
	for _, q := range []string{
		`DELETE FROM whatsmeow_privacy_tokens WHERE our_jid = $1`,
		`DELETE FROM whatsapp_pre_keys WHERE jid = $1`,
		`DELETE FROM whatsapp_device_keys WHERE jid = $1`,
	} {
		if _, err := a.s.db.Exec(ctx, q, jid); err != nil {
			return err
		}
	}
	_, err := a.s.db.Exec(ctx, `DELETE FROM whatsmeow_device WHERE jid = $1`, jid)
	return err
}
