package storecopy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/rules"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// Reencrypt rewrites, in place, everything of the endpoint that encryption
// at rest seals and that is not sealed under the keyring's active key:
// plaintext written before encryption was turned on and values sealed
// under older keys. Afterwards keys other than the active one can be
// removed from the configuration. Every kind keeps its ids. On SQLite the
// database is vacuumed at the end, so the overwritten plaintext leaves the
// file too.
//
// Like a copy it wants no daemon writing meanwhile: on SQLite the database
// lock keeps one out; on MongoDB stop the daemons first (a value a daemon
// writes during the run under an older key is left for the next run).
// Running it again rewrites only what is still stale.
func Reencrypt(ctx context.Context, e *Endpoint, keys *sealing.Keyring) (*Result, error) {
	if !keys.Enabled() {
		return nil, errors.New("encryption is off: configure a key (encryption.key_file or encryption.keys) first")
	}
	st, err := e.stores()
	if err != nil {
		return nil, err
	}
	msgs := st.messagesStore
	msgs.Seal(keys)
	idem := st.idempotencyStore
	idem.Seal(keys)
	sealedMedia, err := media.Sealed(st.media, keys)
	if err != nil {
		return nil, err
	}
	steps := []struct {
		name string
		run  func(ctx context.Context) (int64, error)
	}{
		{KindMessages + " and chats", func(ctx context.Context) (int64, error) {
			m, c, err := msgs.Reencrypt(ctx, BatchSize)
			return m + c, err
		}},
		{KindTraces, func(ctx context.Context) (int64, error) { return msgs.ReencryptTraces(ctx, BatchSize) }},
		{KindIdempotency, func(ctx context.Context) (int64, error) { return idem.Reencrypt(ctx, BatchSize) }},
		{KindMedia, func(ctx context.Context) (int64, error) {
			n, err := sealedMedia.(*media.SealedStore).Reencrypt(ctx)
			return int64(n), err
		}},
		{KindWebhooks, func(ctx context.Context) (int64, error) {
			n, err := webhooks.Reencrypt(ctx, st.webhooks.(webhooks.EndpointStore), keys)
			return int64(n), err
		}},
		{KindPluginKV, func(ctx context.Context) (int64, error) {
			return pluginhost.ReencryptKV(ctx, st.pluginKV.(pluginhost.KVEntries), keys)
		}},
		{KindRuleKV, func(ctx context.Context) (int64, error) {
			return rules.ReencryptKV(ctx, st.ruleKV.(rules.KVEntries), keys)
		}},
		{KindAccounts, func(ctx context.Context) (int64, error) {
			return session.ReencryptAccounts(ctx, st.accounts.(session.AccountStore), keys)
		}},
		{KindWhatsAppAuth, func(ctx context.Context) (int64, error) {
			return authstore.ReencryptAccounts(ctx, st.waAuth.(authstore.AccountEntries), keys)
		}},
		{KindOutbox, func(ctx context.Context) (int64, error) {
			return outbox.ReencryptJobs(ctx, st.outbox.(outbox.JobEntries), messages.NewEventSealer(keys).Reseal)
		}},
	}
	res := &Result{}
	for _, s := range steps {
		start := time.Now()
		n, err := s.run(ctx)
		res.Kinds = append(res.Kinds, KindResult{Name: s.name, Copied: n, Took: time.Since(start)})
		if err != nil {
			return res, fmt.Errorf("reencrypt %s: %w", s.name, err)
		}
	}
	if e.db != nil {
		if err := e.db.Vacuum(ctx); err != nil {
			return res, err
		}
	}
	return res, nil
}
