package authstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// The device's private keys and its pre-keys on the embedded engine, in
// Wildcat's tables (schema/0002_whatsapp_keys.sql) rather than sqlstore's
// fixed-size columns, so they can be sealed. whatsmeow_device keeps zeros
// in its key columns; whatsmeow_pre_keys stays empty. The keys are stored
// here whether encryption is on or not, so turning it on only rewrites the
// values (storecopy.Reencrypt).

var errNoDeviceKeys = errors.New("the device's private keys are missing (whatsapp_device_keys)")

// zeroKeys is the condition of a whatsmeow_device row that holds no keys.
const zeroKeys = `noise_key = zeroblob(32) AND identity_key = zeroblob(32) AND signed_pre_key = zeroblob(32) AND adv_key = zeroblob(32)`

// moveKeys moves the private keys and pre-keys that a build before this
// one left in sqlstore's tables into Wildcat's, as they are (they are
// sealed by re-encryption), and zeroes sqlstore's copies. It does nothing
// once done; the file keeps the old bytes in free pages until vacuumed
// (re-encryption vacuums).
func (s *SQLite) moveKeys(ctx context.Context) error {
	var pending int
	err := s.db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM whatsmeow_device WHERE NOT (`+zeroKeys+`)) +
		(SELECT count(*) FROM whatsmeow_pre_keys)`).Scan(&pending)
	if err != nil || pending == 0 {
		return err
	}
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, q := range []string{
			// A device whose keys were moved before keeps them.
			`INSERT INTO whatsapp_device_keys (jid, noise_key, identity_key, signed_pre_key, adv_key)
				SELECT jid, noise_key, identity_key, signed_pre_key, adv_key FROM whatsmeow_device
				WHERE NOT (` + zeroKeys + `) AND jid NOT IN (SELECT jid FROM whatsapp_device_keys)`,
			`UPDATE whatsmeow_device SET noise_key = zeroblob(32), identity_key = zeroblob(32),
				signed_pre_key = zeroblob(32), adv_key = zeroblob(32)
				WHERE NOT (` + zeroKeys + `) AND jid IN (SELECT jid FROM whatsapp_device_keys)`,
			`INSERT INTO whatsapp_pre_keys (jid, key_id, key, uploaded)
				SELECT jid, key_id, key, uploaded FROM whatsmeow_pre_keys WHERE true
				ON CONFLICT (jid, key_id) DO NOTHING`,
			`DELETE FROM whatsmeow_pre_keys`,
		} {
			if _, err := s.db.Exec(ctx, q); err != nil {
				return fmt.Errorf("move device keys out of whatsmeow's tables: %w", err)
			}
		}
		return nil
	})
}

// readDevice returns the device record of jid without its private keys
// (withoutKeys) and the keys as stored; nil if there is no record.
func (s *SQLite) readDevice(ctx context.Context, jid types.JID) (*store.Device, DeviceKeys, error) {
	dev, err := s.container.GetDevice(ctx, jid)
	if err != nil || dev == nil {
		return nil, DeviceKeys{}, err
	}
	var k DeviceKeys
	err = s.db.QueryRow(ctx, `SELECT noise_key, identity_key, signed_pre_key, adv_key FROM whatsapp_device_keys WHERE jid = $1`,
		jid.String()).Scan(&k.Noise, &k.Identity, &k.SignedPreKey, &k.AdvSecret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, DeviceKeys{}, fmt.Errorf("device %s: %w", jid, errNoDeviceKeys)
	}
	if err != nil {
		return nil, DeviceKeys{}, fmt.Errorf("device %s: read keys: %w", jid, err)
	}
	return withoutKeys(dev), k, nil
}

// placeholder is dev as sqlstore stores it: zeros for its private keys.
func placeholder(dev *store.Device) *store.Device {
	zero := new([keyLen]byte)
	pair := &keys.KeyPair{Pub: zero, Priv: zero}
	p := *dev
	p.NoiseKey, p.IdentityKey, p.AdvSecretKey = pair, pair, zero[:]
	p.SignedPreKey = &keys.PreKey{KeyPair: *pair, KeyID: dev.SignedPreKey.KeyID, Signature: dev.SignedPreKey.Signature}
	// sqlstore would wire the copy's stores otherwise.
	p.Initialized = true
	return &p
}

// writeKeys stores the device's keys; inside putDevice's transaction.
func (s *SQLite) writeKeys(ctx context.Context, jid string, k DeviceKeys) error {
	_, err := s.db.Exec(ctx, `INSERT INTO whatsapp_device_keys (jid, noise_key, identity_key, signed_pre_key, adv_key)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (jid) DO UPDATE SET noise_key = excluded.noise_key, identity_key = excluded.identity_key,
			signed_pre_key = excluded.signed_pre_key, adv_key = excluded.adv_key`,
		jid, k.Noise, k.Identity, k.SignedPreKey, k.AdvSecret)
	if err != nil {
		return fmt.Errorf("store device keys: %w", err)
	}
	// A record stored by sqlstore before keeps its keys on conflict.
	_, err = s.db.Exec(ctx, `UPDATE whatsmeow_device SET noise_key = zeroblob(32), identity_key = zeroblob(32),
		signed_pre_key = zeroblob(32), adv_key = zeroblob(32) WHERE jid = $1 AND NOT (`+zeroKeys+`)`, jid)
	if err != nil {
		return fmt.Errorf("clear sqlstore's device keys: %w", err)
	}
	return nil
}

// sqlitePreKeys is a device's pre-key store on the embedded engine, with
// sqlstore's semantics: ids count on from the highest stored.
type sqlitePreKeys struct {
	s   *SQLite
	jid string
}

var _ store.PreKeyStore = (*sqlitePreKeys)(nil)

// GetOrGenPreKeys returns count pre-keys not yet uploaded, lowest ids
// first, generating (and storing, as not uploaded) as many as are missing.
func (p *sqlitePreKeys) GetOrGenPreKeys(ctx context.Context, count uint32) ([]*keys.PreKey, error) {
	if count == 0 {
		return nil, nil
	}
	p.s.preKeyMu.Lock()
	defer p.s.preKeyMu.Unlock()
	type row struct {
		id  uint32
		key []byte
	}
	var found []row
	rows, err := p.s.db.Query(ctx, `SELECT key_id, key FROM whatsapp_pre_keys WHERE jid = $1 AND uploaded = 0 ORDER BY key_id LIMIT $2`,
		p.jid, count)
	if err != nil {
		return nil, fmt.Errorf("get pre-keys not uploaded: %w", err)
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.key); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("get pre-keys not uploaded: %w", err)
		}
		found = append(found, r)
	}
	err = rows.Err()
	_ = rows.Close()
	if err != nil {
		return nil, fmt.Errorf("get pre-keys not uploaded: %w", err)
	}
	out := make([]*keys.PreKey, 0, count)
	for _, r := range found {
		k, err := openPreKey(p.s.keys, r.id, r.key)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if missing := count - uint32(len(out)); missing > 0 {
		gen, err := p.gen(ctx, missing, false)
		if err != nil {
			return nil, err
		}
		out = append(out, gen...)
	}
	return out, nil
}

// gen generates and stores n pre-keys, in one transaction. The caller
// holds preKeyMu.
func (p *sqlitePreKeys) gen(ctx context.Context, n uint32, uploaded bool) ([]*keys.PreKey, error) {
	var out []*keys.PreKey
	err := p.s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		out = make([]*keys.PreKey, 0, n)
		var last sql.NullInt64
		if err := p.s.db.QueryRow(ctx, `SELECT MAX(key_id) FROM whatsapp_pre_keys WHERE jid = $1`, p.jid).Scan(&last); err != nil {
			return err
		}
		next := uint32(last.Int64) + 1
		for i := range n {
			k := keys.NewPreKey(next + i)
			b, err := sealPreKey(p.s.keys, k)
			if err != nil {
				return err
			}
			if _, err := p.s.db.Exec(ctx, `INSERT INTO whatsapp_pre_keys (jid, key_id, key, uploaded) VALUES ($1, $2, $3, $4)`,
				p.jid, k.KeyID, b, uploaded); err != nil {
				return err
			}
			out = append(out, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("generate %d pre-keys: %w", n, err)
	}
	return out, nil
}

// GenOnePreKey generates one pre-key that counts as uploaded (whatsmeow
// sends it along in a retry receipt).
func (p *sqlitePreKeys) GenOnePreKey(ctx context.Context) (*keys.PreKey, error) {
	p.s.preKeyMu.Lock()
	defer p.s.preKeyMu.Unlock()
	ks, err := p.gen(ctx, 1, true)
	if err != nil {
		return nil, err
	}
	return ks[0], nil
}

// GetPreKey returns the pre-key with id, or nil if there is none.
func (p *sqlitePreKeys) GetPreKey(ctx context.Context, id uint32) (*keys.PreKey, error) {
	var b []byte
	err := p.s.db.QueryRow(ctx, `SELECT key FROM whatsapp_pre_keys WHERE jid = $1 AND key_id = $2`, p.jid, id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get pre-key %d: %w", id, err)
	}
	return openPreKey(p.s.keys, id, b)
}

// RemovePreKey deletes a pre-key (it was used to build a session).
func (p *sqlitePreKeys) RemovePreKey(ctx context.Context, id uint32) error {
	if _, err := p.s.db.Exec(ctx, `DELETE FROM whatsapp_pre_keys WHERE jid = $1 AND key_id = $2`, p.jid, id); err != nil {
		return fmt.Errorf("remove pre-key %d: %w", id, err)
	}
	return nil
}

// MarkPreKeysAsUploaded marks every pre-key with an id up to upToID as
// uploaded.
func (p *sqlitePreKeys) MarkPreKeysAsUploaded(ctx context.Context, upToID uint32) error {
	if _, err := p.s.db.Exec(ctx, `UPDATE whatsapp_pre_keys SET uploaded = 1 WHERE jid = $1 AND key_id <= $2`, p.jid, upToID); err != nil {
		return fmt.Errorf("mark pre-keys up to %d uploaded: %w", upToID, err)
	}
	return nil
}

// UploadedPreKeyCount counts the stored pre-keys marked as uploaded.
func (p *sqlitePreKeys) UploadedPreKeyCount(ctx context.Context) (int, error) {
	var n int
	if err := p.s.db.QueryRow(ctx, `SELECT count(*) FROM whatsapp_pre_keys WHERE jid = $1 AND uploaded = 1`, p.jid).Scan(&n); err != nil {
		return 0, fmt.Errorf("count uploaded pre-keys: %w", err)
	}
	return n, nil
}
