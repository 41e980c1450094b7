package authstore

import (
	"context"
	"database/sql"
	"fmt"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// The SQLite side of the copy (copy.go): whatsmeow's own tables, read and
// written with SQL on their columns (upgrades/00-latest-schema.sql of
// whatsmeow's sqlstore), the device record through sqlstore itself.

// SQLiteCopy exports and imports every account's auth state.
type SQLiteCopy struct{ s *SQLite }

// Copy returns the accounts' auth state for a copy.
func (s *SQLite) Copy() *SQLiteCopy { return &SQLiteCopy{s: s} }

// Count counts the paired accounts.
func (c *SQLiteCopy) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := c.s.db.RawDB.QueryRowContext(ctx, `SELECT count(*) FROM whatsapp_devices`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count whatsapp devices: %w", err)
	}
	return n, nil
}

// Export hands each paired account's auth state to fn, one account per
// call (an account's state can be large).
func (c *SQLiteCopy) Export(ctx context.Context, _ int, fn func([]*Account) error) error {
	type owner struct{ account, jid string }
	var owners []owner
	rows, err := c.s.db.RawDB.QueryContext(ctx, `SELECT account_id, jid FROM whatsapp_devices ORDER BY account_id`)
	if err != nil {
		return fmt.Errorf("export whatsapp auth state: %w", err)
	}
	for rows.Next() {
		var o owner
		if err := rows.Scan(&o.account, &o.jid); err != nil {
			rows.Close()
			return fmt.Errorf("export whatsapp auth state: %w", err)
		}
		owners = append(owners, o)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("export whatsapp auth state: %w", err)
	}
	for _, o := range owners {
		a, err := c.read(ctx, o.account, o.jid)
		if err != nil {
			return fmt.Errorf("export whatsapp auth state of %s: %w", o.account, err)
		}
		if a == nil {
			continue // its device is gone
		}
		if err := fn([]*Account{a}); err != nil {
			return err
		}
	}
	return nil
}

// scanAll runs q with jid on db and calls scan on each row.
func scanAll(ctx context.Context, db *sql.DB, q, jid string, scan func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, q, jid)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (c *SQLiteCopy) read(ctx context.Context, accountID, jidStr string) (*Account, error) {
	jid, err := types.ParseJID(jidStr)
	if err != nil {
		return nil, fmt.Errorf("parse jid %q: %w", jidStr, err)
	}
	dev, stored, err := c.s.readDevice(ctx, jid)
	if err != nil || dev == nil {
		return nil, err
	}
	a := &Account{AccountID: accountID, Device: dev, DeviceKeys: stored}
	if err := readRows(ctx, c.s.db.RawDB, "whatsapp_pre_keys", jidStr, a); err != nil {
		return nil, err
	}
	return a, nil
}

// readRows adds to a every row of device jid in whatsmeow's sqlstore tables
// on db (SQLite or PostgreSQL: the statements are valid on both), the
// one-time pre-keys from preKeys (Wildcat's whatsapp_pre_keys, or
// whatsmeow_pre_keys in another program's store), as they are stored.
func readRows(ctx context.Context, db *sql.DB, preKeys, jid string, a *Account) error {
	steps := []struct {
		q    string
		scan func(*sql.Rows) error
	}{
		{`SELECT their_id, identity FROM whatsmeow_identity_keys WHERE our_jid = $1 ORDER BY their_id`, func(r *sql.Rows) error {
			var x Identity
			err := r.Scan(&x.Address, &x.Key)
			a.Identities = append(a.Identities, x)
			return err
		}},
		{`SELECT their_id, session FROM whatsmeow_sessions WHERE our_jid = $1 ORDER BY their_id`, func(r *sql.Rows) error {
			var x Session
			err := r.Scan(&x.Address, &x.Record)
			a.Sessions = append(a.Sessions, x)
			return err
		}},
		{`SELECT key_id, key, uploaded FROM ` + preKeys + ` WHERE jid = $1 ORDER BY key_id`, func(r *sql.Rows) error {
			var x PreKey
			err := r.Scan(&x.ID, &x.Key, &x.Uploaded)
			a.PreKeys = append(a.PreKeys, x)
			return err
		}},
		{`SELECT chat_id, sender_id, sender_key FROM whatsmeow_sender_keys WHERE our_jid = $1 ORDER BY chat_id, sender_id`, func(r *sql.Rows) error {
			var x SenderKey
			err := r.Scan(&x.Group, &x.Sender, &x.Record)
			a.SenderKeys = append(a.SenderKeys, x)
			return err
		}},
		{`SELECT key_id, key_data, timestamp, fingerprint FROM whatsmeow_app_state_sync_keys WHERE jid = $1 ORDER BY key_id`, func(r *sql.Rows) error {
			var x AppStateKey
			err := r.Scan(&x.ID, &x.Data, &x.Timestamp, &x.Fingerprint)
			a.AppStateKeys = append(a.AppStateKeys, x)
			return err
		}},
		{`SELECT name, version, hash FROM whatsmeow_app_state_version WHERE jid = $1 ORDER BY name`, func(r *sql.Rows) error {
			var x AppStateVersion
			err := r.Scan(&x.Name, &x.Version, &x.Hash)
			a.AppStates = append(a.AppStates, x)
			return err
		}},
		{`SELECT name, version, index_mac, value_mac FROM whatsmeow_app_state_mutation_macs WHERE jid = $1 ORDER BY name, index_mac, version`, func(r *sql.Rows) error {
			var x AppStateMAC
			err := r.Scan(&x.Name, &x.Version, &x.IndexMAC, &x.ValueMAC)
			a.AppStateMACs = append(a.AppStateMACs, x)
			return err
		}},
		{`SELECT their_jid, first_name, full_name, push_name, business_name, redacted_phone FROM whatsmeow_contacts WHERE our_jid = $1 ORDER BY their_jid`, func(r *sql.Rows) error {
			var x Contact
			var first, full, push, business, redacted sql.NullString
			err := r.Scan(&x.JID, &first, &full, &push, &business, &redacted)
			x.FirstName, x.FullName, x.PushName, x.BusinessName, x.RedactedPhone = first.String, full.String, push.String, business.String, redacted.String
			a.Contacts = append(a.Contacts, x)
			return err
		}},
		{`SELECT chat_jid, muted_until, pinned, archived FROM whatsmeow_chat_settings WHERE our_jid = $1 ORDER BY chat_jid`, func(r *sql.Rows) error {
			var x ChatSetting
			err := r.Scan(&x.JID, &x.MutedUntil, &x.Pinned, &x.Archived)
			a.ChatSettings = append(a.ChatSettings, x)
			return err
		}},
		{`SELECT chat_jid, sender_jid, message_id, key FROM whatsmeow_message_secrets WHERE our_jid = $1 ORDER BY chat_jid, sender_jid, message_id`, func(r *sql.Rows) error {
			var x MessageSecret
			err := r.Scan(&x.Chat, &x.Sender, &x.ID, &x.Secret)
			a.MsgSecrets = append(a.MsgSecrets, x)
			return err
		}},
		{`SELECT their_jid, token, timestamp FROM whatsmeow_privacy_tokens WHERE our_jid = $1 ORDER BY their_jid`, func(r *sql.Rows) error {
			var x PrivacyToken
			err := r.Scan(&x.JID, &x.Token, &x.Timestamp)
			a.PrivacyTokens = append(a.PrivacyTokens, x)
			return err
		}},
		{`SELECT ciphertext_hash, plaintext, server_timestamp, insert_timestamp FROM whatsmeow_event_buffer WHERE our_jid = $1 ORDER BY ciphertext_hash`, func(r *sql.Rows) error {
			var x BufferedEvent
			err := r.Scan(&x.Hash, &x.Plaintext, &x.ServerTime, &x.InsertTime)
			a.EventBuffer = append(a.EventBuffer, x)
			return err
		}},
	}
	for _, st := range steps {
		if err := scanAll(ctx, db, st.q, jid, st.scan); err != nil {
			return err
		}
	}
	return nil
}

// Import stores each account's auth state, in one transaction per
// account: the device record (replacing another device the account had,
// with all its state) and every row, replacing rows with the same key.
func (c *SQLiteCopy) Import(ctx context.Context, as []*Account) error {
	for _, a := range as {
		if err := c.write(ctx, a); err != nil {
			return fmt.Errorf("import whatsapp auth state of %s: %w", a.AccountID, err)
		}
	}
	return nil
}

func (c *SQLiteCopy) write(ctx context.Context, a *Account) error {
	if a.Device == nil || a.Device.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	dev := *a.Device // putDevice points it at its container
	jid := dev.ID.String()
	db := c.s.db
	return db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := c.s.Account(a.AccountID).putDevice(ctx, &dev, a.DeviceKeys); err != nil {
			return err
		}
		exec := func(q string, args ...any) error {
			_, err := db.Exec(ctx, q, args...)
			return err
		}
		for _, x := range a.Identities {
			if err := exec(`INSERT INTO whatsmeow_identity_keys (our_jid, their_id, identity) VALUES ($1, $2, $3)
				ON CONFLICT (our_jid, their_id) DO UPDATE SET identity = excluded.identity`, jid, x.Address, x.Key); err != nil {
				return fmt.Errorf("identity %s: %w", x.Address, err)
			}
		}
		for _, x := range a.Sessions {
			if err := exec(`INSERT INTO whatsmeow_sessions (our_jid, their_id, session) VALUES ($1, $2, $3)
				ON CONFLICT (our_jid, their_id) DO UPDATE SET session = excluded.session`, jid, x.Address, x.Record); err != nil {
				return fmt.Errorf("session %s: %w", x.Address, err)
			}
		}
		for _, x := range a.PreKeys {
			if err := exec(`INSERT INTO whatsapp_pre_keys (jid, key_id, key, uploaded) VALUES ($1, $2, $3, $4)
				ON CONFLICT (jid, key_id) DO UPDATE SET key = excluded.key, uploaded = excluded.uploaded`, jid, x.ID, x.Key, x.Uploaded); err != nil {
				return fmt.Errorf("pre-key %d: %w", x.ID, err)
			}
		}
		for _, x := range a.SenderKeys {
			if err := exec(`INSERT INTO whatsmeow_sender_keys (our_jid, chat_id, sender_id, sender_key) VALUES ($1, $2, $3, $4)
				ON CONFLICT (our_jid, chat_id, sender_id) DO UPDATE SET sender_key = excluded.sender_key`, jid, x.Group, x.Sender, x.Record); err != nil {
				return fmt.Errorf("sender key %s in %s: %w", x.Sender, x.Group, err)
			}
		}
		for _, x := range a.AppStateKeys {
			if err := exec(`INSERT INTO whatsmeow_app_state_sync_keys (jid, key_id, key_data, timestamp, fingerprint) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (jid, key_id) DO UPDATE SET key_data = excluded.key_data, timestamp = excluded.timestamp, fingerprint = excluded.fingerprint`,
				jid, x.ID, x.Data, x.Timestamp, x.Fingerprint); err != nil {
				return fmt.Errorf("app-state sync key %x: %w", x.ID, err)
			}
		}
		// Versions before their MACs (a foreign key ties them).
		for _, x := range a.AppStates {
			if err := exec(`INSERT INTO whatsmeow_app_state_version (jid, name, version, hash) VALUES ($1, $2, $3, $4)
				ON CONFLICT (jid, name) DO UPDATE SET version = excluded.version, hash = excluded.hash`, jid, x.Name, x.Version, x.Hash); err != nil {
				return fmt.Errorf("app-state version %s: %w", x.Name, err)
			}
		}
		for _, x := range a.AppStateMACs {
			if err := exec(`INSERT INTO whatsmeow_app_state_mutation_macs (jid, name, version, index_mac, value_mac) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (jid, name, version, index_mac) DO UPDATE SET value_mac = excluded.value_mac`,
				jid, x.Name, x.Version, x.IndexMAC, x.ValueMAC); err != nil {
				return fmt.Errorf("app-state mutation MAC of %s: %w", x.Name, err)
			}
		}
		for _, x := range a.Contacts {
			if err := exec(`INSERT INTO whatsmeow_contacts (our_jid, their_jid, first_name, full_name, push_name, business_name, redacted_phone)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (our_jid, their_jid) DO UPDATE SET first_name = excluded.first_name, full_name = excluded.full_name,
				push_name = excluded.push_name, business_name = excluded.business_name, redacted_phone = excluded.redacted_phone`,
				jid, x.JID, x.FirstName, x.FullName, x.PushName, x.BusinessName, x.RedactedPhone); err != nil {
				return fmt.Errorf("contact %s: %w", x.JID, err)
			}
		}
		for _, x := range a.ChatSettings {
			if err := exec(`INSERT INTO whatsmeow_chat_settings (our_jid, chat_jid, muted_until, pinned, archived) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (our_jid, chat_jid) DO UPDATE SET muted_until = excluded.muted_until, pinned = excluded.pinned, archived = excluded.archived`,
				jid, x.JID, x.MutedUntil, x.Pinned, x.Archived); err != nil {
				return fmt.Errorf("chat settings of %s: %w", x.JID, err)
			}
		}
		for _, x := range a.MsgSecrets {
			if err := exec(`INSERT INTO whatsmeow_message_secrets (our_jid, chat_jid, sender_jid, message_id, key) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (our_jid, chat_jid, sender_jid, message_id) DO UPDATE SET key = excluded.key`,
				jid, x.Chat, x.Sender, x.ID, x.Secret); err != nil {
				return fmt.Errorf("message secret %s: %w", x.ID, err)
			}
		}
		for _, x := range a.PrivacyTokens {
			if err := exec(`INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp) VALUES ($1, $2, $3, $4)
				ON CONFLICT (our_jid, their_jid) DO UPDATE SET token = excluded.token, timestamp = excluded.timestamp`,
				jid, x.JID, x.Token, x.Timestamp); err != nil {
				return fmt.Errorf("privacy token of %s: %w", x.JID, err)
			}
		}
		for _, x := range a.EventBuffer {
			if err := exec(`INSERT INTO whatsmeow_event_buffer (our_jid, ciphertext_hash, plaintext, server_timestamp, insert_timestamp)
				VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (our_jid, ciphertext_hash) DO UPDATE SET plaintext = excluded.plaintext,
				server_timestamp = excluded.server_timestamp, insert_timestamp = excluded.insert_timestamp`,
				jid, x.Hash, x.Plaintext, x.ServerTime, x.InsertTime); err != nil {
				return fmt.Errorf("buffered event %x: %w", x.Hash, err)
			}
		}
		return nil
	})
}

// SQLiteLIDCopy exports and imports the LID map.
type SQLiteLIDCopy struct{ s *SQLite }

// LIDCopy returns the LID map for a copy.
func (s *SQLite) LIDCopy() *SQLiteLIDCopy { return &SQLiteLIDCopy{s: s} }

// Count counts the mappings.
func (c *SQLiteLIDCopy) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := c.s.db.RawDB.QueryRowContext(ctx, `SELECT count(*) FROM whatsmeow_lid_map`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count LID mappings: %w", err)
	}
	return n, nil
}

// Export hands every mapping to fn in batches, by LID.
func (c *SQLiteLIDCopy) Export(ctx context.Context, batch int, fn func([]*LIDMapping) error) error {
	after := ""
	for {
		rows, err := c.s.db.RawDB.QueryContext(ctx, `SELECT lid, pn FROM whatsmeow_lid_map WHERE lid > ? ORDER BY lid LIMIT ?`, after, batch)
		if err != nil {
			return fmt.Errorf("export LID mappings: %w", err)
		}
		var out []*LIDMapping
		for rows.Next() {
			var m LIDMapping
			if err := rows.Scan(&m.LID, &m.PN); err != nil {
				rows.Close()
				return fmt.Errorf("export LID mappings: %w", err)
			}
			out = append(out, &m)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("export LID mappings: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		if err := fn(out); err != nil {
			return err
		}
		after = out[len(out)-1].LID
	}
}

// Import stores the mappings through sqlstore (a phone number mapped to
// another LID before is re-mapped).
func (c *SQLiteLIDCopy) Import(ctx context.Context, ms []*LIDMapping) error {
	if err := c.s.container.LIDMap.PutManyLIDMappings(ctx, storeMappings(ms)); err != nil {
		return fmt.Errorf("import LID mappings: %w", err)
	}
	return nil
}

func storeMappings(ms []*LIDMapping) []store.LIDMapping {
	out := make([]store.LIDMapping, len(ms))
	for i, m := range ms {
		out[i] = store.LIDMapping{LID: types.NewJID(m.LID, types.HiddenUserServer), PN: types.NewJID(m.PN, types.DefaultUserServer)}
	}
	return out
}

// Devices maps each stored device's JID to the account it is linked as
// (wildcatd accounts import: is a device already here?).
func (c *SQLiteCopy) Devices(ctx context.Context) (map[string]string, error) {
	rows, err := c.s.db.RawDB.QueryContext(ctx, `SELECT account_id, jid FROM whatsapp_devices`)
	if err != nil {
		return nil, fmt.Errorf("list whatsapp devices: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var account, jid string
		if err := rows.Scan(&account, &jid); err != nil {
			return nil, fmt.Errorf("list whatsapp devices: %w", err)
		}
		out[jid] = account
	}
	return out, rows.Err()
}
