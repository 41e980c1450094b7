package storecopy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mau.fi/whatsmeow/proto/waAdv"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/apikeys"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/rules"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/core/throttle"
	"github.com/wildcathub/wildcat/core/webhooks"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// location is a fresh, empty place on engine e and the database name its
// copy needs.
func location(t *testing.T, e storetest.Engine) (loc, database string) {
	if e == storetest.SQLite {
		return t.TempDir(), "wildcat"
	}
	return storetest.URI(t), storetest.DatabaseName(t)
}

func msgStore(e *Endpoint) *messages.Store {
	if e.mongo != nil {
		return messages.New(e.mongo.DB(), nil)
	}
	return messages.NewSQLite(e.db, nil)
}

func msgEvent(kind event.Kind, account, id, chat, text string, fromMe bool, at time.Time) *event.Event {
	return &event.Event{
		ID: event.MessageEventID(account, id), Kind: kind, AccountID: account, Timestamp: at,
		ChatID: chat, Source: event.SourcePhone,
		Message: &event.Message{
			AccountID: account, MessageID: id, ChatID: chat, From: chat, FromMe: fromMe, Timestamp: at.Unix(),
			Type: event.TypeText, Text: text, PushName: "Alice", Raw: []byte{0x0a, 0x02, 'h', 'i'},
		},
	}
}

// devicesOf returns the whatsmeow device container of an account on e.
func deviceOf(t *testing.T, e *Endpoint, accountID string) (wastore.DeviceContainer, func() (*wastore.Device, error)) {
	if e.mongo != nil {
		c := authstore.New(e.mongo.DB(), accountID, nil)
		return c, func() (*wastore.Device, error) { return c.GetDevice(context.Background()) }
	}
	a := e.auth.Account(accountID)
	return a, func() (*wastore.Device, error) { return a.GetDevice(context.Background()) }
}

// seed fills a store through the real stores of its engine with some of
// every kind.
func seed(t *testing.T, e *Endpoint) {
	ctx := context.Background()
	s, err := e.stores()
	must(t, err)
	accounts := s.accounts.(session.AccountStore)
	for i, a := range []*session.AccountInfo{
		{ID: "shop", Driver: "whatsapp", Name: "Shop", State: session.StateCreated, Proxy: "socks5://u:p@10.0.0.1:1080"},
		{ID: "bot", Driver: "sim", Name: "Bot", State: session.StateCreated},
		{ID: "old", Driver: "whatsapp", Name: "Old", State: session.StateCreated},
	} {
		a.Since, a.CreatedAt, a.UpdatedAt = t0.Add(time.Duration(i)*time.Minute), t0, t0
		must(t, accounts.Insert(ctx, a))
	}
	must(t, accounts.Apply(ctx, "shop", session.AccountChange{State: session.StateConnected, Reason: "paired", At: t0.Add(time.Hour),
		JID: "15550001111@s.whatsapp.net", PushName: "Shop"}))
	must(t, accounts.Apply(ctx, "old", session.AccountChange{State: session.StateLoggedOut, Reason: "logged out", At: t0.Add(2 * time.Hour),
		LastError: "401", QR: &session.QR{Code: "2@abc", ExpiresAt: t0.Add(3 * time.Hour)}, PairingCode: "ABCD-EFGH"}))
	must(t, s.simAuth.(sim.AuthStore).Save(ctx, "bot", sim.Auth{JID: "15559990000@s.whatsapp.net", LID: "123@lid", PairedAt: t0}))
	must(t, s.simGroups.(sim.GroupStore).SaveGroup(ctx, &sim.Group{JID: "120363000000000042@g.us", Name: "Team", Owner: "15559990000@s.whatsapp.net",
		CreatedAt: t0, UpdatedAt: t0, Seq: 2, Locked: true, InviteCode: "AbCdEfGhIjKlMnOpQrStUv",
		Members:  []sim.Member{{JID: "15559990000@s.whatsapp.net", Role: "superadmin"}, {JID: "15557770001@s.whatsapp.net", Role: "member"}},
		Requests: []sim.JoinRequest{{JID: "15557770002@s.whatsapp.net", At: t0}}}))

	// A paired whatsmeow device with something in every store.
	c, get := deviceOf(t, e, "shop")
	dev, err := get()
	must(t, err)
	jid := types.JID{User: "15550001111", Device: 7, Server: types.DefaultUserServer}
	dev.ID = &jid
	dev.LID = types.JID{User: "99887766", Device: 7, Server: types.HiddenUserServer}
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte("details"), AccountSignatureKey: bytes.Repeat([]byte{1}, 32),
		AccountSignature: bytes.Repeat([]byte{2}, 64), DeviceSignature: bytes.Repeat([]byte{3}, 64)}
	dev.Platform, dev.BusinessName, dev.PushName, dev.LIDMigrationTimestamp = "android", "Acme", "Shop", 1700000000
	dev.FacebookUUID = uuid.MustParse("7c9e6679-7425-40de-944b-e07fc1f90ae7")
	must(t, c.PutDevice(ctx, dev))
	alice := types.JID{User: "15557770001", Server: types.DefaultUserServer}
	group := types.JID{User: "1203630001", Server: types.GroupServer}
	must(t, dev.Identities.PutIdentity(ctx, "15557770001:0", [32]byte{9}))
	must(t, dev.Sessions.PutSession(ctx, "15557770001:0", []byte("session record")))
	_, err = dev.PreKeys.GetOrGenPreKeys(ctx, 3)
	must(t, err)
	must(t, dev.PreKeys.MarkPreKeysAsUploaded(ctx, 2))
	must(t, dev.SenderKeys.PutSenderKey(ctx, group.String(), "15557770001:0", []byte("sender key")))
	must(t, dev.AppStateKeys.PutAppStateSyncKey(ctx, []byte{1, 2, 3}, wastore.AppStateSyncKey{Data: []byte("key"), Fingerprint: []byte("fp"), Timestamp: 1700000001}))
	must(t, dev.AppState.PutAppStateVersion(ctx, "regular", 7, [128]byte{5}))
	must(t, dev.AppState.PutAppStateMutationMACs(ctx, "regular", 7, []wastore.AppStateMutationMAC{{IndexMAC: bytes.Repeat([]byte{6}, 32), ValueMAC: bytes.Repeat([]byte{7}, 32)}}))
	must(t, dev.Contacts.PutContactName(ctx, alice, "Alice", "Alice Smith"))
	_, _, err = dev.Contacts.PutPushName(ctx, alice, "Ali")
	must(t, err)
	must(t, dev.ChatSettings.PutMutedUntil(ctx, alice, t0.Add(24*time.Hour)))
	must(t, dev.ChatSettings.PutPinned(ctx, group, true))
	must(t, dev.MsgSecrets.PutMessageSecret(ctx, alice, alice, "MSG1", []byte("secret")))
	must(t, dev.PrivacyTokens.PutPrivacyTokens(ctx, wastore.PrivacyToken{User: alice, Token: []byte("token"), Timestamp: t0}))
	must(t, dev.EventBuffer.PutBufferedEvent(ctx, [32]byte{4}, []byte("plaintext"), t0))
	must(t, dev.LIDs.PutLIDMapping(ctx, types.JID{User: "99887766", Server: types.HiddenUserServer}, types.JID{User: "15550001111", Server: types.DefaultUserServer}))
	must(t, dev.LIDs.PutLIDMapping(ctx, types.JID{User: "55443322", Server: types.HiddenUserServer}, alice))

	must(t, s.mediaRetries.(whatsapp.MediaRetryStore).Put(ctx, "shop", "MSG1", whatsapp.MediaRetry{Ciphertext: []byte("c"), IV: []byte("iv"), At: t0}))
	must(t, s.mediaRetries.(whatsapp.MediaRetryStore).Put(ctx, "shop", "MSG2", whatsapp.MediaRetry{ErrorCode: 2, At: t0}))

	// Messages: received and sent, with receipts, an edit, tags and
	// annotations, pipeline marks; in two chats.
	ms := msgStore(e)
	chatA, chatB := "15557770001@s.whatsapp.net", "15557770002@s.whatsapp.net"
	for i := range 30 {
		chat := chatA
		if i%3 == 0 {
			chat = chatB
		}
		ev := msgEvent(event.KindMessageReceived, "shop", "IN"+string(rune('A'+i)), chat, "hello "+string(rune('a'+i)), false, t0.Add(time.Duration(i)*time.Second))
		_, err := ms.Record(ctx, ev)
		must(t, err)
		switch {
		case i%4 == 0:
			must(t, ms.MarkProcessedTraced(ctx, ev.ID, []byte(`{"eventId":"`+ev.ID+`","stages":[{"name":"rules"}]}`)))
		case i%2 == 0:
			must(t, ms.MarkProcessed(ctx, ev.ID))
		}
	}
	sent := msgEvent(event.KindMessageSent, "shop", "OUT1", chatA, "on my way", true, t0.Add(time.Minute))
	_, err = ms.Record(ctx, sent)
	must(t, err)
	_, err = ms.ApplyStatus(ctx, &event.Event{ID: event.StatusEventID("shop", "OUT1", event.StatusDelivered, ""), Kind: event.KindMessageStatus,
		AccountID: "shop", Timestamp: t0.Add(2 * time.Minute), Source: event.SourcePhone,
		Status: &event.Status{MessageID: "OUT1", Status: event.StatusDelivered, ChatID: chatA}})
	must(t, err)
	edit := msgEvent(event.KindMessageEdited, "shop", "ED1", chatA, "on my way!", true, t0.Add(3*time.Minute))
	edit.Edit = &event.Edit{TargetID: "OUT1", Text: "on my way!"}
	_, err = ms.Record(ctx, edit)
	must(t, err)
	_, err = ms.ApplyEdit(ctx, edit)
	must(t, err)
	must(t, ms.Annotate(ctx, sent, []string{"vip", "late"}, map[string]string{"lang": "en"}))
	must(t, ms.MarkProcessed(ctx, sent.ID))

	var ik *messages.Idempotency
	if e.mongo != nil {
		ik = messages.NewIdempotency(e.mongo.DB(), time.Hour)
	} else {
		ik = messages.NewIdempotencySQLite(e.db, time.Hour)
	}
	_, err = ik.Claim(ctx, "shop:key1", "hash1")
	must(t, err)
	must(t, ik.Complete(ctx, "shop:key1", 201, "application/json", "/v1/x", []byte(`{"ok":true}`)))
	_, err = ik.Claim(ctx, "shop:key2", "hash2")
	must(t, err)

	for i, b := range [][]byte{bytes.Repeat([]byte("jpeg "), 90000), []byte("a small note")} {
		in, err := s.media.Put(ctx, bytes.NewReader(b), "image/jpeg", "f"+string(rune('0'+i))+".jpg")
		must(t, err)
		_ = in
	}

	until := t0.Add(48 * time.Hour)
	eps := s.webhooks.(webhooks.EndpointStore)
	must(t, eps.Insert(ctx, &webhooks.Endpoint{ID: "wh_1", URL: "https://example.com/hook", Events: []string{"message.received"},
		Accounts: []string{"shop"}, Description: "crm", Headers: map[string]string{"X-Team": "ops"}, Enabled: true, RateLimit: 2.5,
		Source: "api", Secret: "whsec_new", PreviousSecret: "whsec_old", PreviousSecretUntil: &until, CreatedAt: t0, UpdatedAt: t0}))
	must(t, eps.Insert(ctx, &webhooks.Endpoint{ID: "wh_2", URL: "https://example.com/other", Events: []string{"*"}, Accounts: []string{},
		Headers: map[string]string{}, Enabled: true, Source: "config", Secret: "whsec_2", CreatedAt: t0, UpdatedAt: t0}))
	keys := s.apiKeys.(apikeys.Store)
	must(t, keys.Insert(ctx, &apikeys.Key{ID: "crm", Name: "CRM", Scopes: []string{"messages:read"}, Accounts: []string{"shop"},
		Hash: []byte{1, 2, 3}, ExpiresAt: &until, CreatedAt: t0}))
	must(t, keys.Insert(ctx, &apikeys.Key{ID: "admin", Name: "admin", Scopes: []string{"admin"}, Hash: []byte{4}, CreatedAt: t0}))
	counts := s.sendCounts.(throttle.Counts)
	for _, c := range []struct {
		account, day string
		n            int
	}{{"shop", "2026-03-01", 40}, {"shop", "2026-03-02", 7}, {"shop-2", "2026-03-02", 1}} {
		must(t, counts.Add(ctx, c.account, c.day, c.n))
	}
	must(t, eps.SetFailingSince(ctx, "wh_2", &t0))
	_, err = eps.Disable(ctx, "wh_2", "failing for 3 days", t0.Add(time.Hour))
	must(t, err)

	must(t, s.pluginKV.(interface {
		Set(context.Context, string, string, []byte, time.Duration) error
	}).Set(ctx, "crm", "token", []byte("abc"), 0))
	must(t, s.pluginKV.(interface {
		Set(context.Context, string, string, []byte, time.Duration) error
	}).Set(ctx, "crm", "cache", []byte{0, 1, 2}, time.Hour))
	rk := s.ruleKV.(interface {
		Set(context.Context, string, string, json.RawMessage, time.Duration) error
		Incr(context.Context, string, string, float64, time.Duration) (float64, error)
	})
	must(t, rk.Set(ctx, "greet.js", "seen", json.RawMessage(`{"who":["a","b"],"n":1.5}`), 0))
	_, err = rk.Incr(ctx, "greet.js", "count", 3, time.Hour)
	must(t, err)

	// Outbox jobs in every state: pending, processing (a lease held),
	// done, retrying with an attempt in the log, dead-lettered.
	var ob *outbox.Outbox
	if e.mongo != nil {
		ob, err = outbox.Open(ctx, e.mongo.DB(), outbox.Options{})
	} else {
		ob, err = outbox.OpenSQLite(e.db, outbox.Options{})
	}
	must(t, err)
	for i, target := range []string{"webhook:wh_1", "webhook:wh_2", "sink:a", "sink:b", "sink:c", "sink:d"} {
		must(t, ob.Enqueue(ctx, msgEvent(event.KindMessageReceived, "shop", "IN"+string(rune('A'+i)), "15557770001@s.whatsapp.net",
			"hello", false, t0), target))
	}
	claim := func(target string) *outbox.Job {
		j, err := ob.Claim(ctx, target, "daemon-1")
		must(t, err)
		return j
	}
	claim("sink:a") // stays processing
	must(t, ob.Complete(ctx, claim("sink:b"), outbox.Result{Outcome: outbox.OutcomeOK, Status: 200, Response: "ok"}, 12*time.Millisecond))
	must(t, ob.Complete(ctx, claim("sink:c"), outbox.Retry(errors.New("503 from sink")), 30*time.Millisecond))
	must(t, ob.Complete(ctx, claim("sink:d"), outbox.Fail(errors.New("410 gone")), 5*time.Millisecond))
}

// exportAll reads every item of a kind.
func exportAll[T any](t *testing.T, x Exporter[T]) []T {
	t.Helper()
	var out []T
	must(t, x.Export(context.Background(), 7, func(items []T) error {
		out = append(out, items...)
		return nil
	}))
	return out
}

func sameItems[T any](t *testing.T, kind string, src, dst Exporter[T]) {
	t.Helper()
	a, b := exportAll(t, src), exportAll(t, dst)
	if len(a) == 0 {
		t.Fatalf("%s: the source has none", kind)
	}
	if len(a) == len(b) {
		for i := range a {
			va, vb := reflect.Indirect(reflect.ValueOf(a[i])), reflect.Indirect(reflect.ValueOf(b[i]))
			if va.Kind() != reflect.Struct {
				continue
			}
			for f := 0; f < va.NumField(); f++ {
				if !reflect.DeepEqual(va.Field(f).Interface(), vb.Field(f).Interface()) {
					t.Errorf("%s #%d: field %s: source %#v, target %#v", kind, i, va.Type().Field(f).Name, va.Field(f).Interface(), vb.Field(f).Interface())
				}
			}
		}
	}
	if !reflect.DeepEqual(a, b) {
		ja, _ := json.MarshalIndent(a, "", " ")
		jb, _ := json.MarshalIndent(b, "", " ")
		t.Fatalf("%s differ:\nsource %s\ntarget %s", kind, ja, jb)
	}
}

// compare checks that the target holds what the source holds, kind by
// kind and field by field.
func compare(t *testing.T, src, dst *Endpoint) {
	ctx := context.Background()
	s, err := src.stores()
	must(t, err)
	d, err := dst.stores()
	must(t, err)
	sameItems(t, KindAccounts, s.accounts, d.accounts)
	sameItems(t, KindSimAuth, s.simAuth, d.simAuth)
	sameItems(t, KindSimGroups, s.simGroups, d.simGroups)
	sameItems(t, KindLIDMap, s.lids, d.lids)
	sameItems(t, KindMediaRetries, s.mediaRetries, d.mediaRetries)
	// By id: MongoDB's stored order breaks a tie of storedAt (the same
	// millisecond) by _id, SQLite's by insertion.
	byID := func(x Exporter[*messages.Message]) Exporter[*messages.Message] { return sortedMessages{x} }
	sameItems(t, KindMessages, byID(s.messages), byID(d.messages))
	sameItems(t, KindTraces, s.traces, d.traces)
	sameItems(t, KindChats, s.chats, d.chats)
	sameItems(t, KindIdempotency, s.idempotency, d.idempotency)
	sameItems(t, KindWebhooks, s.webhooks, d.webhooks)
	sameItems(t, KindOutbox, s.outbox, d.outbox)
	sameItems(t, KindAPIKeys, s.apiKeys, d.apiKeys)
	sameItems(t, KindSendCounts, s.sendCounts, d.sendCounts)
	if n, _ := d.sendCounts.(throttle.Counts).Get(ctx, "shop", "2026-03-01"); n != 40 {
		t.Fatalf("send count copied: %d, want 40", n)
	}
	if n, _ := d.apiKeys.(apikeys.Store).Count(ctx); n != 2 {
		t.Fatalf("api keys copied: %d, want 2", n)
	}
	states := map[outbox.State]int{}
	for _, j := range exportAll(t, d.outbox) {
		states[j.State]++
		if j.State == outbox.StateDeadLetter && (len(j.Log) != 1 || j.Log[0].Error == "") {
			t.Fatalf("dead-lettered job copied with log %+v", j.Log)
		}
	}
	if len(states) != 4 {
		t.Fatalf("outbox jobs by state in the target: %v", states)
	}
	sameItems(t, KindPluginKV, s.pluginKV, d.pluginKV)
	// The rules' MongoDB store renders an object's keys sorted: the same
	// JSON value.
	ruleValues := func(x Exporter[*rules.KVEntry]) []*rules.KVEntry {
		es := exportAll(t, x)
		for _, e := range es {
			var v any
			must(t, json.Unmarshal(e.Value, &v))
			e.Value, _ = json.Marshal(v)
		}
		return es
	}
	if a, b := ruleValues(s.ruleKV), ruleValues(d.ruleKV); len(a) != 2 || !reflect.DeepEqual(a, b) {
		t.Fatalf("rule kv: source %+v, target %+v", a, b)
	}

	// The auth state: the device field by field, every store's rows.
	as, ad := exportAll(t, s.waAuth), exportAll(t, d.waAuth)
	if len(as) != 1 || len(ad) != 1 {
		t.Fatalf("whatsapp auth: %d accounts in the source, %d in the target", len(as), len(ad))
	}
	// The private keys travel as stored, in DeviceKeys (compared below
	// with the rest of the state).
	ds, dd := as[0].Device, ad[0].Device
	if ds.NoiseKey != nil || ds.IdentityKey != nil || ds.SignedPreKey.Priv != nil || ds.AdvSecretKey != nil {
		t.Fatal("the exported device record carries private keys beside DeviceKeys")
	}
	if *ds.ID != *dd.ID || ds.LID != dd.LID || ds.RegistrationID != dd.RegistrationID ||
		ds.SignedPreKey.KeyID != dd.SignedPreKey.KeyID || *ds.SignedPreKey.Signature != *dd.SignedPreKey.Signature ||
		!proto.Equal(ds.Account, dd.Account) || ds.Platform != dd.Platform ||
		ds.BusinessName != dd.BusinessName || ds.PushName != dd.PushName || ds.FacebookUUID != dd.FacebookUUID ||
		ds.LIDMigrationTimestamp != dd.LIDMigrationTimestamp {
		t.Fatalf("device differs:\nsource %+v\ntarget %+v", ds, dd)
	}
	as[0].Device, ad[0].Device = nil, nil
	if len(as[0].DeviceKeys.Noise) == 0 || len(as[0].EventBuffer) == 0 || len(as[0].PreKeys) != 3 || !reflect.DeepEqual(as[0], ad[0]) {
		ja, _ := json.MarshalIndent(as[0], "", " ")
		jb, _ := json.MarshalIndent(ad[0], "", " ")
		t.Fatalf("auth state differs:\nsource %s\ntarget %s", ja, jb)
	}

	// Media: bytes and metadata.
	infos, err := s.media.List(ctx, "", 10)
	must(t, err)
	if len(infos) != 2 {
		t.Fatalf("%d media files in the source", len(infos))
	}
	for _, in := range infos {
		b1, i1, err := s.media.ReadAll(ctx, in.ID)
		must(t, err)
		b2, i2, err := d.media.ReadAll(ctx, in.ID)
		must(t, err)
		if !bytes.Equal(b1, b2) || !reflect.DeepEqual(i1, i2) {
			t.Fatalf("media %s: %+v (%d bytes) copied as %+v (%d bytes)", in.ID, i1, len(b1), i2, len(b2))
		}
	}

	// A sample read back through the target's own stores.
	sm, dm := msgStore(src), msgStore(dst)
	m1, err := sm.Get(ctx, "shop", "OUT1")
	must(t, err)
	m2, err := dm.Get(ctx, "shop", "OUT1")
	must(t, err)
	if !reflect.DeepEqual(m1, m2) || !m2.Edited || len(m2.Tags) != 2 || m2.Status != messages.StatusDelivered {
		t.Fatalf("OUT1 read back as %+v, stored as %+v", m2, m1)
	}
	for i := 0; i < 30; i += 4 {
		id := "IN" + string(rune('A'+i))
		t1, at1, err := sm.Trace(ctx, "shop", id)
		must(t, err)
		t2, at2, err := dm.Trace(ctx, "shop", id)
		if err != nil || !bytes.Equal(t1, t2) || !at1.Equal(at2) {
			t.Fatalf("trace of %s: source %q at %v, target %q at %v (%v)", id, t1, at1, t2, at2, err)
		}
	}
	p1, err := sm.History(ctx, messages.Query{AccountID: "shop", ChatID: "15557770001@s.whatsapp.net", Limit: 5})
	must(t, err)
	p2, err := dm.History(ctx, messages.Query{AccountID: "shop", ChatID: "15557770001@s.whatsapp.net", Limit: 5})
	must(t, err)
	if !reflect.DeepEqual(p1, p2) || len(p2.Messages) != 5 {
		t.Fatalf("history page: source %+v, target %+v", p1, p2)
	}
	r1, _, err := sm.Unprocessed(ctx, "shop", "", 100)
	must(t, err)
	r2, _, err := dm.Unprocessed(ctx, "shop", "", 100)
	must(t, err)
	// Events stored in the same millisecond come in id order on MongoDB and
	// in storing order on SQLite: compare them by id.
	eventsByID := func(evs []*event.Event) { sort.Slice(evs, func(i, k int) bool { return evs[i].ID < evs[k].ID }) }
	eventsByID(r1)
	eventsByID(r2)
	if len(r1) == 0 || !reflect.DeepEqual(r1, r2) {
		t.Fatalf("unfinished events: source %d, target %d", len(r1), len(r2))
	}
	ep, err := d.webhooks.(webhooks.EndpointStore).Get(ctx, "wh_1")
	must(t, err)
	if ep.Secret != "whsec_new" || ep.PreviousSecret != "whsec_old" {
		t.Fatalf("endpoint secrets copied as %q, %q", ep.Secret, ep.PreviousSecret)
	}
	_, getDev := deviceOf(t, dst, "shop")
	dev, err := getDev()
	must(t, err)
	if dev.ID == nil || *dev.ID != *ds.ID {
		t.Fatalf("the target's device of shop is %v", dev.ID)
	}
	// The device loads in the target with the source's keys and pre-keys.
	_, getSrcDev := deviceOf(t, src, "shop")
	sdev, err := getSrcDev()
	must(t, err)
	if *dev.NoiseKey.Priv != *sdev.NoiseKey.Priv || *dev.IdentityKey.Priv != *sdev.IdentityKey.Priv ||
		*dev.SignedPreKey.Priv != *sdev.SignedPreKey.Priv || !bytes.Equal(dev.AdvSecretKey, sdev.AdvSecretKey) {
		t.Fatal("the target's device of shop has other private keys than the source's")
	}
	for id := uint32(1); id <= 3; id++ {
		k1, err := sdev.PreKeys.GetPreKey(ctx, id)
		must(t, err)
		k2, err := dev.PreKeys.GetPreKey(ctx, id)
		must(t, err)
		if k1 == nil || k2 == nil || *k1.Priv != *k2.Priv {
			t.Fatalf("pre-key %d: source %v, target %v", id, k1, k2)
		}
	}
	if n, err := dev.PreKeys.UploadedPreKeyCount(ctx); err != nil || n != 2 {
		t.Fatalf("target's uploaded pre-keys: %d, %v; want 2", n, err)
	}
	if trusted, err := dev.Identities.IsTrustedIdentity(ctx, "15557770001:0", [32]byte{9}); err != nil || !trusted {
		t.Fatalf("copied identity not trusted: %v %v", trusted, err)
	}
}

func TestCopyBothWays(t *testing.T) {
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
			src, err := Open(ctx, from, OpenOptions{Database: database, Target: true})
			must(t, err)
			seed(t, src)
			must(t, src.Close())

			var out bytes.Buffer
			res, err := Copy(ctx, from, to, OpenOptions{Database: database}, false, NewLines(&out, time.Hour))
			must(t, err)
			for _, k := range res.Kinds {
				if k.Source != k.Copied {
					t.Fatalf("%s: %d in the source, %d copied", k.Name, k.Source, k.Copied)
				}
			}

			// A second copy into the now full target is refused; forced, it
			// replaces what it copied before and adds nothing.
			_, err = Copy(ctx, from, to, OpenOptions{Database: database}, false, NewLines(&out, time.Hour))
			if !errors.Is(err, ErrTargetNotEmpty) {
				t.Fatalf("copy into a full target: %v", err)
			}
			_, err = Copy(ctx, from, to, OpenOptions{Database: database}, true, NewLines(&out, time.Hour))
			must(t, err)

			src, err = Open(ctx, from, OpenOptions{Database: database})
			must(t, err)
			defer src.Close()
			dst, err := Open(ctx, to, OpenOptions{Database: database})
			must(t, err)
			defer dst.Close()
			kinds, err := Kinds(src, dst)
			must(t, err)
			for _, k := range kinds {
				n1, err := k.Count(ctx)
				must(t, err)
				n2, err := k.TargetCount(ctx)
				must(t, err)
				if n1 != n2 || n1 == 0 {
					t.Fatalf("%s: %d in the source, %d in the target", k.Name, n1, n2)
				}
			}
			compare(t, src, dst)
		})
	}
}

// sortedMessages exports every message at once, by id.
type sortedMessages struct{ Exporter[*messages.Message] }

func (s sortedMessages) Export(ctx context.Context, batch int, fn func([]*messages.Message) error) error {
	var all []*messages.Message
	if err := s.Exporter.Export(ctx, batch, func(ms []*messages.Message) error {
		all = append(all, ms...)
		return nil
	}); err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return fn(all)
}
