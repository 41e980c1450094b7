package authstore

// Encryption at rest (package sealing) of the auth state's secrets that
// whatsmeow hands its stores as opaque bytes: Signal session records,
// group sender keys, app-state sync keys, message secrets and the
// decrypted-event buffer. SealDevice wraps a device's stores, on either
// engine, so each value is sealed before the engine stores it and opened
// when it is read; the engine never sees the plaintext, and the
// engine-to-engine copy moves the sealed bytes as they are.
//
// The device's own private keys (noise, identity, signed pre-key, ADV
// secret) and its one-time pre-keys are sealed by the engines themselves
// (devicekeys.go): both are parsed into key pairs, not handed over as
// bytes. On SQLite they live in Wildcat's whatsapp_device_keys and
// whatsapp_pre_keys tables, as whatsmeow's fixed 32-byte columns cannot
// hold a sealed value; on MongoDB in the device and pre-key documents.

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/sealing"
)

// SealDevice makes dev's secret-holding stores seal with keys. With keys
// nil values are stored as they are and sealed ones cannot be read. It is
// idempotent, and a no-op on a device without stores (not paired yet).
func SealDevice(dev *store.Device, keys *sealing.Keyring) {
	if dev == nil || dev.Sessions == nil {
		return
	}
	if s, ok := dev.Sessions.(*sealedSessions); ok {
		dev.Sessions = s.SessionStore
	}
	if s, ok := dev.SenderKeys.(*sealedSenderKeys); ok {
		dev.SenderKeys = s.SenderKeyStore
	}
	if s, ok := dev.AppStateKeys.(*sealedAppStateKeys); ok {
		dev.AppStateKeys = s.AppStateSyncKeyStore
	}
	if s, ok := dev.MsgSecrets.(*sealedMsgSecrets); ok {
		dev.MsgSecrets = s.MsgSecretStore
	}
	if s, ok := dev.EventBuffer.(*sealedEventBuffer); ok {
		dev.EventBuffer = s.EventBuffer
	}
	c := sealer{keys}
	dev.Sessions = &sealedSessions{dev.Sessions, c}
	dev.SenderKeys = &sealedSenderKeys{dev.SenderKeys, c}
	dev.AppStateKeys = &sealedAppStateKeys{dev.AppStateKeys, c}
	dev.MsgSecrets = &sealedMsgSecrets{dev.MsgSecrets, c}
	dev.EventBuffer = &sealedEventBuffer{dev.EventBuffer, c}
}

type sealer struct{ keys *sealing.Keyring }

func (s sealer) seal(what string, b []byte) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	out, err := s.keys.Seal(b, nil)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", what, err)
	}
	return out, nil
}

func (s sealer) open(what string, b []byte) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	out, err := s.keys.Open(b, nil)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	return out, nil
}

type sealedSessions struct {
	store.SessionStore
	c sealer
}

func (s *sealedSessions) GetSession(ctx context.Context, address string) ([]byte, error) {
	b, err := s.SessionStore.GetSession(ctx, address)
	if err != nil {
		return nil, err
	}
	return s.c.open("session "+address, b)
}

func (s *sealedSessions) GetManySessions(ctx context.Context, addresses []string) (map[string][]byte, error) {
	m, err := s.SessionStore.GetManySessions(ctx, addresses)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(m))
	for a, b := range m {
		if out[a], err = s.c.open("session "+a, b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *sealedSessions) PutSession(ctx context.Context, address string, session []byte) error {
	b, err := s.c.seal("session "+address, session)
	if err != nil {
		return err
	}
	return s.SessionStore.PutSession(ctx, address, b)
}

func (s *sealedSessions) PutManySessions(ctx context.Context, sessions map[string][]byte) error {
	out := make(map[string][]byte, len(sessions))
	for a, b := range sessions {
		var err error
		if out[a], err = s.c.seal("session "+a, b); err != nil {
			return err
		}
	}
	return s.SessionStore.PutManySessions(ctx, out)
}

type sealedSenderKeys struct {
	store.SenderKeyStore
	c sealer
}

func (s *sealedSenderKeys) PutSenderKey(ctx context.Context, group, user string, session []byte) error {
	b, err := s.c.seal("sender key", session)
	if err != nil {
		return err
	}
	return s.SenderKeyStore.PutSenderKey(ctx, group, user, b)
}

func (s *sealedSenderKeys) GetSenderKey(ctx context.Context, group, user string) ([]byte, error) {
	b, err := s.SenderKeyStore.GetSenderKey(ctx, group, user)
	if err != nil {
		return nil, err
	}
	return s.c.open("sender key of "+user+" in "+group, b)
}

type sealedAppStateKeys struct {
	store.AppStateSyncKeyStore
	c sealer
}

func (s *sealedAppStateKeys) PutAppStateSyncKey(ctx context.Context, id []byte, key store.AppStateSyncKey) error {
	var err error
	if key.Data, err = s.c.seal("app-state key", key.Data); err != nil {
		return err
	}
	return s.AppStateSyncKeyStore.PutAppStateSyncKey(ctx, id, key)
}

func (s *sealedAppStateKeys) GetAppStateSyncKey(ctx context.Context, id []byte) (*store.AppStateSyncKey, error) {
	k, err := s.AppStateSyncKeyStore.GetAppStateSyncKey(ctx, id)
	if err != nil || k == nil {
		return k, err
	}
	c := *k
	if c.Data, err = s.c.open(fmt.Sprintf("app-state key %x", id), k.Data); err != nil {
		return nil, err
	}
	return &c, nil
}

type sealedMsgSecrets struct {
	store.MsgSecretStore
	c sealer
}

func (s *sealedMsgSecrets) PutMessageSecrets(ctx context.Context, inserts []store.MessageSecretInsert) error {
	out := make([]store.MessageSecretInsert, len(inserts))
	for i, in := range inserts {
		var err error
		if in.Secret, err = s.c.seal("message secret", in.Secret); err != nil {
			return err
		}
		out[i] = in
	}
	return s.MsgSecretStore.PutMessageSecrets(ctx, out)
}

func (s *sealedMsgSecrets) PutMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID, secret []byte) error {
	b, err := s.c.seal("message secret", secret)
	if err != nil {
		return err
	}
	return s.MsgSecretStore.PutMessageSecret(ctx, chat, sender, id, b)
}

func (s *sealedMsgSecrets) GetMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID) ([]byte, types.JID, error) {
	b, who, err := s.MsgSecretStore.GetMessageSecret(ctx, chat, sender, id)
	if err != nil {
		return nil, who, err
	}
	b, err = s.c.open("message secret of "+id, b)
	return b, who, err
}

type sealedEventBuffer struct {
	store.EventBuffer
	c sealer
}

func (s *sealedEventBuffer) GetBufferedEvent(ctx context.Context, hash [32]byte) (*store.BufferedEvent, error) {
	ev, err := s.EventBuffer.GetBufferedEvent(ctx, hash)
	if err != nil || ev == nil {
		return ev, err
	}
	c := *ev
	if c.Plaintext, err = s.c.open("buffered event", ev.Plaintext); err != nil {
		return nil, err
	}
	return &c, nil
}

func (s *sealedEventBuffer) PutBufferedEvent(ctx context.Context, hash [32]byte, plaintext []byte, serverTimestamp time.Time) error {
	b, err := s.c.seal("buffered event", plaintext)
	if err != nil {
		return err
	}
	return s.EventBuffer.PutBufferedEvent(ctx, hash, b, serverTimestamp)
}

// Reseal returns acct with every sealed value of it (the device's private
// keys, pre-keys, sessions, sender keys, app-state keys, message secrets,
// buffered events) sealed under keys' active key, and whether anything
// changed; plaintext written before encryption was on is sealed too.
func Reseal(acct *Account, keys *sealing.Keyring) (*Account, bool, error) {
	out := *acct
	changed := false
	re := func(what string, b []byte) ([]byte, error) {
		if b == nil || !keys.Stale(b) {
			return b, nil
		}
		p, err := keys.Open(b, nil)
		if err != nil {
			return nil, fmt.Errorf("account %s: %s: %w", acct.AccountID, what, err)
		}
		changed = true
		return keys.Seal(p, nil)
	}
	out.PreKeys = append([]PreKey(nil), acct.PreKeys...)
	keysChanged, err := resealKeys(keys, &out.DeviceKeys, out.PreKeys)
	if err != nil {
		return nil, false, fmt.Errorf("account %s: %w", acct.AccountID, err)
	}
	changed = keysChanged
	out.Sessions = append([]Session(nil), acct.Sessions...)
	for i := range out.Sessions {
		if out.Sessions[i].Record, err = re("session", out.Sessions[i].Record); err != nil {
			return nil, false, err
		}
	}
	out.SenderKeys = append([]SenderKey(nil), acct.SenderKeys...)
	for i := range out.SenderKeys {
		if out.SenderKeys[i].Record, err = re("sender key", out.SenderKeys[i].Record); err != nil {
			return nil, false, err
		}
	}
	out.AppStateKeys = append([]AppStateKey(nil), acct.AppStateKeys...)
	for i := range out.AppStateKeys {
		if out.AppStateKeys[i].Data, err = re("app-state key", out.AppStateKeys[i].Data); err != nil {
			return nil, false, err
		}
	}
	out.MsgSecrets = append([]MessageSecret(nil), acct.MsgSecrets...)
	for i := range out.MsgSecrets {
		if out.MsgSecrets[i].Secret, err = re("message secret", out.MsgSecrets[i].Secret); err != nil {
			return nil, false, err
		}
	}
	out.EventBuffer = append([]BufferedEvent(nil), acct.EventBuffer...)
	for i := range out.EventBuffer {
		if out.EventBuffer[i].Plaintext, err = re("buffered event", out.EventBuffer[i].Plaintext); err != nil {
			return nil, false, err
		}
	}
	return &out, changed, nil
}

// AccountEntries is an engine's auth state as the engine-to-engine copy
// sees it (MongoCopy, SQLiteCopy).
type AccountEntries interface {
	Export(ctx context.Context, batch int, fn func([]*Account) error) error
	Import(ctx context.Context, as []*Account) error
}

// ReencryptAccounts re-seals under the active key every sealed value of
// every account's auth state (Reseal) and reports how many accounts it
// rewrote.
func ReencryptAccounts(ctx context.Context, c AccountEntries, keys *sealing.Keyring) (int64, error) {
	var changed []*Account
	err := c.Export(ctx, 1, func(as []*Account) error {
		for _, a := range as {
			r, ok, err := Reseal(a, keys)
			if err != nil {
				return err
			}
			if ok {
				changed = append(changed, r)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reencrypt whatsapp auth state: %w", err)
	}
	// Written once the export is over: the export may hold a cursor.
	if err := c.Import(ctx, changed); err != nil {
		return 0, fmt.Errorf("reencrypt whatsapp auth state: %w", err)
	}
	return int64(len(changed)), nil
}
