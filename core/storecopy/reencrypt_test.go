package storecopy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waAdv"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/rules"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// The markers of TestReencryptThenCopy: one per kind that is sealed.
var sealMarkers = []string{"SESSMARK-2a6b", "OUTBOXMARK-9e1d", "IDEMMARK-c4d2", "MSGMARK-3b1f", "MEDIAMARK-77aa", "SECRETMARK-e5c2", "PKVMARK-0d9e", "RKVMARK-41f0", "PROXYMARK-5f3a", "TRACEMARK-8c3d"}

// writeSealable stores one item of each sealed kind, with keys (nil: in
// the clear, as before encryption was turned on). tag tells the items of
// one call apart.
func writeSealable(t *testing.T, e *Endpoint, keys *sealing.Keyring, tag string) (mediaID string) {
	t.Helper()
	ctx := context.Background()
	st, err := e.stores()
	must(t, err)
	st.messagesStore.Seal(keys)
	_, err = st.messagesStore.Record(ctx, msgEvent(event.KindMessageReceived, "shop", "M"+tag, "15550001111@s.whatsapp.net", "text MSGMARK-3b1f "+tag, false, t0))
	must(t, err)
	must(t, st.messagesStore.MarkProcessedTraced(ctx, event.MessageEventID("shop", "M"+tag), []byte(traceOf(tag))))
	dev := sealedDevice(t, e, keys, tag)
	must(t, dev.Sessions.PutSession(ctx, "15557770001:0", []byte("SESSMARK-2a6b "+tag)))
	_, err = dev.PreKeys.GetOrGenPreKeys(ctx, 2)
	must(t, err)
	ob := jobsOf(t, e, keys)
	must(t, ob.Enqueue(ctx, msgEvent(event.KindMessageReceived, "shop", "O"+tag, "15550001111@s.whatsapp.net", "OUTBOXMARK-9e1d "+tag, false, t0), "webhook:crm"))
	st.idempotencyStore.Seal(keys)
	_, err = st.idempotencyStore.Claim(ctx, "shop:key"+tag, "h")
	must(t, err)
	must(t, st.idempotencyStore.Complete(ctx, "shop:key"+tag, 202, "application/json", "", []byte(`{"text":"IDEMMARK-c4d2 `+tag+`"}`)))
	m, err := media.Sealed(st.media, keys)
	must(t, err)
	in, err := m.Put(ctx, bytes.NewReader(bytes.Repeat([]byte("MEDIAMARK-77aa "+tag), 5000)), "image/png", "")
	must(t, err)
	must(t, webhooks.Sealed(st.webhooks.(webhooks.EndpointStore), keys).Insert(ctx, &webhooks.Endpoint{
		ID: "crm" + tag, URL: "https://crm.example.com/h", Events: []string{"*"}, Accounts: []string{"*"}, Headers: map[string]string{},
		Enabled: true, Source: webhooks.SourceAPI, Secret: "whsec_SECRETMARK-e5c2" + tag, CreatedAt: t0, UpdatedAt: t0}))
	must(t, pluginhost.SealedKV(st.pluginKV.(pluginhost.KV), keys).Set(ctx, "p", "k"+tag, []byte("PKVMARK-0d9e"+tag), 0))
	must(t, rules.SealedKV(st.ruleKV.(rules.Store), keys).Set(ctx, "r", "k"+tag, json.RawMessage(`"RKVMARK-41f0`+tag+`"`), 0))
	must(t, session.SealedAccounts(st.accounts.(session.AccountStore), keys).Insert(ctx, &session.AccountInfo{ID: "px" + tag, Driver: "whatsapp",
		State: session.StateCreated, Since: t0, CreatedAt: t0, UpdatedAt: t0, Proxy: "socks5://u:PROXYMARK-5f3a" + tag + "@10.0.0.1:1080"}))
	return in.ID
}

// readSealable reads back what writeSealable stored, with keys.
func readSealable(t *testing.T, e *Endpoint, keys *sealing.Keyring, tag, mediaID string) {
	t.Helper()
	ctx := context.Background()
	st, err := e.stores()
	must(t, err)
	st.messagesStore.Seal(keys)
	msg, err := st.messagesStore.Get(ctx, "shop", "M"+tag)
	if err != nil || msg.Text != "text MSGMARK-3b1f "+tag {
		t.Fatalf("message %s: %+v, %v", tag, msg, err)
	}
	trace, _, err := st.messagesStore.Trace(ctx, "shop", "M"+tag)
	if err != nil || string(trace) != traceOf(tag) {
		t.Fatalf("trace %s: %q, %v", tag, trace, err)
	}
	sess, err := sealedDevice(t, e, keys, tag).Sessions.GetSession(ctx, "15557770001:0")
	if err != nil || string(sess) != "SESSMARK-2a6b "+tag {
		t.Fatalf("session %s: %q, %v", tag, sess, err)
	}
	j, err := jobsOf(t, e, keys).Get(ctx, outbox.JobID(event.MessageEventID("shop", "O"+tag), "webhook:crm"))
	if err != nil || j.Event.Message.Text != "OUTBOXMARK-9e1d "+tag {
		t.Fatalf("outbox job %s: %+v, %v", tag, j, err)
	}
	st.idempotencyStore.Seal(keys)
	rec, err := st.idempotencyStore.Claim(ctx, "shop:key"+tag, "h")
	if err != nil || rec == nil || string(rec.Body) != `{"text":"IDEMMARK-c4d2 `+tag+`"}` {
		t.Fatalf("idempotency record %s: %+v, %v", tag, rec, err)
	}
	m, err := media.Sealed(st.media, keys)
	must(t, err)
	b, _, err := m.ReadAll(ctx, mediaID)
	if err != nil || !bytes.Equal(b, bytes.Repeat([]byte("MEDIAMARK-77aa "+tag), 5000)) {
		t.Fatalf("media %s: %d bytes, %v", tag, len(b), err)
	}
	ep, err := webhooks.Sealed(st.webhooks.(webhooks.EndpointStore), keys).Get(ctx, "crm"+tag)
	if err != nil || ep.Secret != "whsec_SECRETMARK-e5c2"+tag {
		t.Fatalf("webhook %s: %+v, %v", tag, ep, err)
	}
	v, _, err := pluginhost.SealedKV(st.pluginKV.(pluginhost.KV), keys).Get(ctx, "p", "k"+tag)
	if err != nil || string(v) != "PKVMARK-0d9e"+tag {
		t.Fatalf("plugin kv %s: %q, %v", tag, v, err)
	}
	r, _, err := rules.SealedKV(st.ruleKV.(rules.Store), keys).Get(ctx, "r", "k"+tag)
	if err != nil || string(r) != `"RKVMARK-41f0`+tag+`"` {
		t.Fatalf("rule kv %s: %s, %v", tag, r, err)
	}
	a, err := session.SealedAccounts(st.accounts.(session.AccountStore), keys).Get(ctx, "px"+tag)
	if err != nil || a.Proxy != "socks5://u:PROXYMARK-5f3a"+tag+"@10.0.0.1:1080" {
		t.Fatalf("account proxy %s: %+v, %v", tag, a, err)
	}
}

// traceOf is the pipeline trace writeSealable stores for message "M"+tag.
func traceOf(tag string) string {
	return `{"stages":[{"actions":[{"type":"reply","text":"TRACEMARK-8c3d ` + tag + `"}]}]}`
}

// sealedDevice is the paired device of account "wa"+tag, its secrets
// sealed with keys.
func sealedDevice(t *testing.T, e *Endpoint, keys *sealing.Keyring, tag string) *wastore.Device {
	t.Helper()
	ctx := context.Background()
	var c interface {
		GetDevice(ctx context.Context) (*wastore.Device, error)
		wastore.DeviceContainer
	}
	if e.mongo != nil {
		c = authstore.New(e.mongo.DB(), "wa"+tag, nil).Seal(keys)
	} else {
		c = e.auth.Seal(keys).Account("wa" + tag)
	}
	dev, err := c.GetDevice(ctx)
	must(t, err)
	if dev.ID == nil {
		jid := types.JID{User: "1555000" + fmt.Sprint(len(tag)), Device: 7, Server: types.DefaultUserServer}
		dev.ID = &jid
		dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte("details"), AccountSignatureKey: bytes.Repeat([]byte{1}, 32),
			AccountSignature: bytes.Repeat([]byte{2}, 64), DeviceSignature: bytes.Repeat([]byte{3}, 64)}
		must(t, c.PutDevice(ctx, dev))
	}
	return dev
}

// deviceKeys are the private keys and the pre-keys of account "wa"+tag's
// device, read with keys, as markers to look for in raw bytes.
func deviceKeys(t *testing.T, e *Endpoint, keys *sealing.Keyring, tag string) []string {
	t.Helper()
	dev := sealedDevice(t, e, keys, tag)
	pks, err := dev.PreKeys.GetOrGenPreKeys(context.Background(), 2)
	must(t, err)
	out := []string{string(dev.NoiseKey.Priv[:]), string(dev.IdentityKey.Priv[:]), string(dev.SignedPreKey.Priv[:]), string(dev.AdvSecretKey)}
	for _, k := range pks {
		out = append(out, string(k.Priv[:]))
	}
	return out
}

// jobsOf is the endpoint's outbox, its payloads sealed with keys.
func jobsOf(t *testing.T, e *Endpoint, keys *sealing.Keyring) *outbox.Outbox {
	t.Helper()
	opts := outbox.Options{Payload: messages.NewEventSealer(keys)}
	var (
		ob  *outbox.Outbox
		err error
	)
	if e.mongo != nil {
		ob, err = outbox.Open(context.Background(), e.mongo.DB(), opts)
	} else {
		ob, err = outbox.OpenSQLite(e.db, opts)
	}
	must(t, err)
	return ob
}

// rawBytes is everything the endpoint's engine holds, as a stolen disk or
// a database dump would have it.
func rawBytes(t *testing.T, e *Endpoint) []byte {
	t.Helper()
	if e.mongo != nil {
		return sealtest.MongoBytes(t, e.mongo.DB())
	}
	return append(sealtest.SQLiteBytes(t, e.db.Path()), sealtest.DirBytes(t, filepath.Join(e.dataDir, daemon.MediaDir))...)
}

// TestReencryptThenCopy: an installation with data from before encryption
// and data under an old key is re-encrypted under the new key (nothing of
// it is left in the clear, the old key can go), then copied to the other
// engine, where it arrives sealed and reads with the new key.
func TestReencryptThenCopy(t *testing.T) {
	for _, dir := range []struct{ name, from, to storetest.Engine }{
		{"sqlite_to_mongodb", storetest.SQLite, storetest.MongoDB},
		{"mongodb_to_sqlite", storetest.MongoDB, storetest.SQLite},
	} {
		t.Run(string(dir.name), func(t *testing.T) {
			ctx := context.Background()
			from, fromDB := location(t, dir.from)
			to, toDB := location(t, dir.to)
			database := fromDB
			if dir.to == storetest.MongoDB {
				database = toDB
			}
			k1, k2 := sealtest.Key(t, "k1"), sealtest.Key(t, "k2")
			src, err := Open(ctx, from, OpenOptions{Database: database, Target: true})
			must(t, err)
			plainMedia := writeSealable(t, src, nil, "plain")
			k1Media := writeSealable(t, src, sealtest.Ring(t, "", k1), "k1")
			plainKeys, k1Keys := deviceKeys(t, src, nil, "plain"), deviceKeys(t, src, sealtest.Ring(t, "", k1), "k1")
			allKeys := append(slices.Clone(plainKeys), k1Keys...)
			sameKeys := func(where string, e *Endpoint, keys *sealing.Keyring) {
				t.Helper()
				if !reflect.DeepEqual(deviceKeys(t, e, keys, "plain"), plainKeys) || !reflect.DeepEqual(deviceKeys(t, e, keys, "k1"), k1Keys) {
					t.Fatalf("%s: the devices' keys read back differently", where)
				}
			}
			sealtest.NoPlaintext(t, "device keys written with k1", rawBytes(t, src), k1Keys...)
			sealtest.HasPlaintext(t, "device keys before reencrypt", rawBytes(t, src), plainKeys...)
			// What was written with the key is sealed from the start.
			sealtest.NoPlaintext(t, "written with k1", rawBytes(t, src), "MSGMARK-3b1f k1", "MEDIAMARK-77aa k1", "SECRETMARK-e5c2k1",
				"PKVMARK-0d9ek1", "RKVMARK-41f0k1", "PROXYMARK-5f3ak1", "SESSMARK-2a6b k1", "OUTBOXMARK-9e1d k1", "IDEMMARK-c4d2 k1", "TRACEMARK-8c3d k1")
			sealtest.HasPlaintext(t, "before reencrypt", rawBytes(t, src), sealMarkers...)

			// Without k1 the trace sealed under it does not open yet.
			before := msgStore(src)
			before.Seal(sealtest.Ring(t, "", k2))
			if _, _, err := before.Trace(ctx, "shop", "Mk1"); !errors.Is(err, sealing.ErrUnknownKey) {
				t.Fatalf("trace under k1 read with k2 only before reencrypt: %v", err)
			}

			rotated := sealtest.Ring(t, "k2", k1, k2)
			res, err := Reencrypt(ctx, src, rotated)
			must(t, err)
			for _, k := range res.Kinds {
				// Each kind had one plaintext and one k1 item (messages:
				// two messages and their chat).
				want := int64(2)
				if k.Name == KindMessages+" and chats" {
					want = 3
				}
				if k.Copied != want {
					t.Errorf("%s: %d re-encrypted, want %d", k.Name, k.Copied, want)
				}
			}
			res, err = Reencrypt(ctx, src, rotated)
			must(t, err)
			for _, k := range res.Kinds {
				if k.Copied != 0 {
					t.Errorf("second run: %s: %d re-encrypted, want 0", k.Name, k.Copied)
				}
			}
			sealtest.NoPlaintext(t, "after reencrypt", rawBytes(t, src), sealMarkers...)
			sealtest.NoPlaintext(t, "device keys after reencrypt", rawBytes(t, src), allKeys...)
			only2 := sealtest.Ring(t, "", k2)
			sameKeys("after reencrypt", src, only2)
			readSealable(t, src, only2, "plain", plainMedia)
			readSealable(t, src, only2, "k1", k1Media)
			must(t, src.Close())

			var out bytes.Buffer
			_, err = Copy(ctx, from, to, OpenOptions{Database: database}, false, NewLines(&out, time.Hour))
			must(t, err)
			dst, err := Open(ctx, to, OpenOptions{Database: database})
			must(t, err)
			defer dst.Close()
			sealtest.NoPlaintext(t, "the copy", rawBytes(t, dst), sealMarkers...)
			sealtest.NoPlaintext(t, "device keys in the copy", rawBytes(t, dst), allKeys...)
			sameKeys("the copy", dst, only2)
			readSealable(t, dst, only2, "plain", plainMedia)
			readSealable(t, dst, only2, "k1", k1Media)
		})
	}
}
