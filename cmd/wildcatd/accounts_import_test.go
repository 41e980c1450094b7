package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	_ "modernc.org/sqlite"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// importWait bounds every wait on the protocol double.
const importWait = 30 * time.Second

// linkedSource is another program's whatsmeow store: a bare whatsmeow
// client on whatsmeow's own SQLite sqlstore, paired with the double's
// phone, that has received a message from contact (so the store holds
// the Signal session with it), then stopped.
type linkedSource struct {
	path    string
	phone   *watest.Account
	contact *watest.Contact
	device  types.JID
	// secrets are the device's private keys as the other program stored
	// them.
	secrets []string
}

func pairSource(t *testing.T, srv *watest.Server) *linkedSource {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), importWait)
	defer cancel()
	path := filepath.Join(t.TempDir(), "whatsmeow.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	container := sqlstore.NewWithDB(db, "sqlite", nil)
	if err := container.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cli := whatsmeow.NewClient(dev, watest.Logger(t, "WARN"))
	srv.Configure(cli)
	evs := make(chan any, 64)
	cli.AddEventHandler(func(e any) {
		select {
		case evs <- e:
		default:
		}
	})
	next := func(match func(any) bool) any {
		for {
			select {
			case e := <-evs:
				if match(e) {
					return e
				}
			case <-ctx.Done():
				t.Fatal("the source client: timed out")
			}
		}
	}
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	qr := next(func(e any) bool { _, ok := e.(*events.QR); return ok }).(*events.QR)
	phone, err := srv.ScanQR(ctx, qr.Codes[0])
	if err != nil {
		t.Fatal(err)
	}
	next(func(e any) bool { _, ok := e.(*events.Connected); return ok })
	if err := phone.WaitLogins(ctx, 1); err != nil {
		t.Fatal(err)
	}
	contact := srv.Contact("15557770001")
	id, err := contact.SendText(ctx, phone.JID().ToNonAD(), "before the switch")
	if err != nil {
		t.Fatal(err)
	}
	next(func(e any) bool { m, ok := e.(*events.Message); return ok && m.Info.ID == id })
	// Acknowledged: the double does not deliver it again to the next
	// program on the device.
	if _, err := srv.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	cli.Disconnect()
	src := &linkedSource{path: path, phone: phone, contact: contact, device: *cli.Store.ID,
		secrets: []string{string(dev.NoiseKey.Priv[:]), string(dev.IdentityKey.Priv[:]), string(dev.SignedPreKey.Priv[:]), string(dev.AdvSecretKey)}}
	// Stopped as a program stops: whatsmeow's last writes done, then the
	// file closed (its WAL checkpointed into it).
	poll.Until(t, importWait, func() error {
		if n := db.Stats().InUse; n > 0 {
			return fmt.Errorf("%d connections in use", n)
		}
		return nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatal("the source store still has a WAL after it was closed")
	}
	return src
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// importEnv is the environment of `wildcatd accounts import` for a
// Wildcat installation on engine e, with encryption at rest on.
type importEnv struct {
	env []string
	cfg config.Config
}

func newImportEnv(t *testing.T, e storetest.Engine) *importEnv {
	cfg := config.Defaults()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.HTTP.AdminKey = apikeystest.AdminToken
	cfg.HTTP.AuthSecret = apikeystest.ServerSecret
	cfg.Encryption.Keys = "k1:" + testKey
	env := []string{"WILDCAT_DATA_DIR=" + cfg.DataDir, "WILDCAT_ENCRYPTION_KEYS=" + cfg.Encryption.Keys}
	if e == storetest.MongoDB {
		cfg.MongoDB.URI, cfg.MongoDB.Database = storetest.URI(t), storetest.DatabaseName(t)
		env = append(env, "WILDCAT_MONGODB_URI="+cfg.MongoDB.URI, "WILDCAT_MONGODB_DATABASE="+cfg.MongoDB.Database)
	}
	return &importEnv{env: env, cfg: cfg}
}

func (ie *importEnv) run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"accounts", "import"}, args...), ie.env, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// events records what a daemon emits.
type eventLog struct {
	mu  sync.Mutex
	evs []*event.Event
}

func (l *eventLog) OnEvent(_ context.Context, ev *event.Event) error {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
	return nil
}

func (l *eventLog) any(f func(*event.Event) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.evs {
		if f(ev) {
			return true
		}
	}
	return false
}

// TestAccountsImportConnectsWithoutPairing is the switch from another
// whatsmeow program: its store is imported into Wildcat, on each engine,
// and the account connects to the double, receives (over the Signal
// session the other program had) and sends, without pairing again. The
// source file is never written; the device's private keys are sealed.
func TestAccountsImportConnectsWithoutPairing(t *testing.T) {
	storetest.Each(t, testAccountsImportConnects)
}

func testAccountsImportConnects(t *testing.T, e storetest.Engine) {
	srv := watest.New(t)
	src := pairSource(t, srv)
	before := fileHash(t, src.path)
	ie := newImportEnv(t, e)
	phoneNumber := src.device.User

	// Listing: the device, not present, nothing imported.
	r := ie.run(t, "--from", src.path)
	if r.code != exitOK || !strings.Contains(r.stdout, src.device.String()) || !strings.Contains(r.stdout, "nothing imported") {
		t.Fatalf("listing: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if line := lineWith(r.stdout, src.device.String()); !strings.HasSuffix(strings.TrimSpace(line), "no") {
		t.Fatalf("listing shows the device as present: %q", line)
	}

	r = ie.run(t, "--from", src.path, "--all")
	if r.code != exitOK || !strings.Contains(r.stdout, "imported "+src.device.String()+" as account "+phoneNumber) {
		t.Fatalf("import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "must not run the imported devices any more") {
		t.Fatalf("no warning about the other program: %q", r.stderr)
	}
	if fileHash(t, src.path) != before {
		t.Fatal("the import wrote to the source store")
	}
	switch e {
	case storetest.SQLite:
		sealtest.NoPlaintext(t, "the data directory", sealtest.SQLiteBytes(t, filepath.Join(ie.cfg.DataDir, daemon.DatabaseFile)), src.secrets...)
	case storetest.MongoDB:
		mc, err := mongo.Connect(options.Client().ApplyURI(ie.cfg.MongoDB.URI))
		if err != nil {
			t.Fatal(err)
		}
		sealtest.NoPlaintext(t, "the database", sealtest.MongoBytes(t, mc.Database(ie.cfg.MongoDB.Database)), src.secrets...)
		_ = mc.Disconnect(context.Background())
	}

	// The daemon starts the account from the imported state alone.
	logins := src.phone.Logins()
	rec := &eventLog{}
	hc := srv.HTTPClient()
	d, err := daemon.New(ie.cfg, daemon.Options{NoSignals: true, OnEvent: rec.OnEvent, Logger: slog.New(slog.DiscardHandler),
		WhatsApp:        whatsapp.Driver{HTTP: whatsapp.HTTPClients{PreLogin: hc, Websocket: hc, Media: hc}, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond},
		ConnectRetryMin: 10 * time.Millisecond, ConnectRetryMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*importWait)
	defer cancel()
	if err := src.phone.WaitLogins(ctx, logins+1); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, importWait, func() error {
		a, err := d.Sessions().GetAccount(ctx, phoneNumber)
		if err != nil {
			return err
		}
		if a.State != session.StateConnected {
			return fmt.Errorf("account is %s", a.State)
		}
		return nil
	})
	if rec.any(func(ev *event.Event) bool { return ev.Kind == event.KindAccountQR }) {
		t.Fatal("the imported account paired again")
	}

	// Receives over the session the other program had (a msg, not a
	// pkmsg: only the imported session opens it)…
	id, err := src.contact.SendText(ctx, src.phone.JID().ToNonAD(), "after the switch")
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, importWait, func() error {
		m, err := d.Messages().Get(ctx, phoneNumber, id)
		if err != nil {
			return err
		}
		if m.Text != "after the switch" {
			return fmt.Errorf("stored %q", m.Text)
		}
		return nil
	})
	// …and sends.
	res, err := d.Sessions().Send(ctx, phoneNumber, &session.SendRequest{To: src.contact.JID().String(), Text: "from Wildcat", Source: event.SourceAPI})
	if err != nil {
		t.Fatal(err)
	}
	in, err := src.contact.NextMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != res.MessageID || in.Message.GetConversation()+in.Message.GetExtendedTextMessage().GetText() != "from Wildcat" {
		t.Fatalf("the contact received %v", in.Message)
	}
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Again: the device is present, so it is refused unless --replace.
	r = ie.run(t, "--from", src.path)
	if line := lineWith(r.stdout, src.device.String()); !strings.Contains(line, "yes, account "+phoneNumber) {
		t.Fatalf("listing after the import: %q", r.stdout)
	}
	r = ie.run(t, "--from", src.path, "--jid", src.device.String())
	if r.code != exitConflict || !strings.Contains(r.stderr, "--replace") || !strings.Contains(r.stderr, phoneNumber) {
		t.Fatalf("a duplicate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = ie.run(t, "--from", src.path, "--jid", phoneNumber, "--replace")
	if r.code != exitOK || !strings.Contains(r.stdout, "replaced "+src.device.String()+" as account "+phoneNumber) {
		t.Fatalf("--replace: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if fileHash(t, src.path) != before {
		t.Fatal("the import wrote to the source store")
	}
}

func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// messagesOf is the message store of ie's installation, reading sealed
// text with its key.
func messagesOf(t *testing.T, ie *importEnv) *messages.Store {
	t.Helper()
	keys, err := sealing.Load("", ie.cfg.Encryption.Keys, "")
	if err != nil {
		t.Fatal(err)
	}
	var s *messages.Store
	if ie.cfg.MongoDB.URI != "" {
		mc, err := mongo.Connect(options.Client().ApplyURI(ie.cfg.MongoDB.URI))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
		s = messages.New(mc.Database(ie.cfg.MongoDB.Database), nil)
	} else {
		db := openDataDir(t, ie.cfg.DataDir)
		t.Cleanup(func() { _ = db.Close() })
		s = messages.NewSQLite(db, nil)
	}
	s.Seal(keys)
	return s
}
