package storecopy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/rules"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/throttle"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// ErrBadLocation means a --from or --to names nothing this command can
// open (a source that does not exist, a file that is not a database).
var ErrBadLocation = errors.New("bad store location")

// ErrInUse means a running wildcatd holds the SQLite database: stop it
// first.
var ErrInUse = errors.New("the database is in use by a running wildcatd: stop it before copying")

// Endpoint is one side of a copy: the SQLite database of a data directory
// (with its media files) or a MongoDB database.
type Endpoint struct {
	// Location is what was asked for, for messages.
	Location string

	db      *sqlite.DB
	dataDir string
	auth    *authstore.SQLite

	mongo *store.Store
}

// OpenOptions says how to open an Endpoint.
type OpenOptions struct {
	// Database is the MongoDB database (default "wildcat").
	Database string
	// Target: the location may not exist yet (it is created).
	Target bool
	Logger *slog.Logger
}

// IsMongoURI reports whether loc names a MongoDB server.
func IsMongoURI(loc string) bool {
	return strings.HasPrefix(loc, "mongodb://") || strings.HasPrefix(loc, "mongodb+srv://")
}

// Open opens loc: a mongodb:// (or mongodb+srv://) URI, a data directory
// (its wildcat.db and media/), or the path of a SQLite database file (its
// media files beside it, in media/).
func Open(ctx context.Context, loc string, opts OpenOptions) (*Endpoint, error) {
	if opts.Database == "" {
		opts.Database = "wildcat"
	}
	if IsMongoURI(loc) {
		return openMongo(ctx, loc, opts)
	}
	return openSQLite(ctx, loc, opts)
}

func openMongo(ctx context.Context, uri string, opts OpenOptions) (*Endpoint, error) {
	st, err := store.Open(store.Options{URI: uri, Database: opts.Database, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := st.Ping(pctx); err != nil {
		_ = st.Close(context.Background())
		return nil, fmt.Errorf("reach MongoDB: %w", err)
	}
	if opts.Target {
		if err := st.EnsureSchema(ctx); err != nil {
			_ = st.Close(context.Background())
			return nil, err
		}
		if err := outbox.EnsureMongoIndexes(ctx, st.DB()); err != nil {
			_ = st.Close(context.Background())
			return nil, err
		}
	}
	return &Endpoint{Location: uri, mongo: st}, nil
}

// sqlitePath resolves a data directory or database file path.
func sqlitePath(loc string, target bool) (file, dataDir string, err error) {
	fi, err := os.Stat(loc)
	switch {
	case err == nil && fi.IsDir():
		return filepath.Join(loc, daemon.DatabaseFile), loc, nil
	case err == nil:
		return loc, filepath.Dir(loc), nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", "", fmt.Errorf("%w: %v", ErrBadLocation, err)
	case !target:
		return "", "", fmt.Errorf("%w: %s does not exist", ErrBadLocation, loc)
	}
	switch strings.ToLower(filepath.Ext(loc)) {
	case ".db", ".sqlite", ".sqlite3":
		return loc, filepath.Dir(loc), nil
	}
	return filepath.Join(loc, daemon.DatabaseFile), loc, nil
}

func openSQLite(ctx context.Context, loc string, opts OpenOptions) (*Endpoint, error) {
	file, dataDir, err := sqlitePath(loc, opts.Target)
	if err != nil {
		return nil, err
	}
	if !opts.Target {
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("%w: no %s in %s", ErrBadLocation, daemon.DatabaseFile, dataDir)
		}
	}
	// synchronous=NORMAL while copying: Close checkpoints the WAL into the
	// file with a sync, and an interrupted copy is simply run again.
	db, err := sqlite.Open(ctx, sqlite.Options{Path: file, Sync: sqlite.SyncNormal, Schemas: daemon.SQLiteSchemas(), Logger: opts.Logger})
	if errors.Is(err, sqlite.ErrLocked) {
		return nil, fmt.Errorf("%s: %w", file, ErrInUse)
	}
	if err != nil {
		return nil, err
	}
	h, err := db.Conn()
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	auth, err := authstore.OpenSQLite(ctx, h, nil)
	if err != nil {
		_ = h.Close()
		_ = db.Close()
		return nil, fmt.Errorf("open whatsapp auth state: %w", err)
	}
	return &Endpoint{Location: loc, db: db, dataDir: dataDir, auth: auth}, nil
}

// Close closes the endpoint.
func (e *Endpoint) Close() error {
	var errs []error
	if e.auth != nil {
		errs = append(errs, e.auth.Close())
	}
	if e.db != nil {
		errs = append(errs, e.db.Close())
	}
	if e.mongo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs = append(errs, e.mongo.Close(ctx))
	}
	return errors.Join(errs...)
}

// Engine names the endpoint's engine.
func (e *Endpoint) Engine() string {
	if e.mongo != nil {
		return "mongodb"
	}
	return "sqlite"
}

// copier is one kind in one store: both directions.
type copier[T any] interface {
	Exporter[T]
	Importer[T]
}

// stores are an endpoint's stores of every kind.
type stores struct {
	accounts     copier[*session.AccountInfo]
	simAuth      copier[*sim.AuthRecord]
	simGroups    copier[*sim.Group]
	waAuth       copier[*authstore.Account]
	lids         copier[*authstore.LIDMapping]
	mediaRetries copier[*whatsapp.MediaRetryRecord]
	messages     copier[*messages.Message]
	traces       messages.TraceRecords
	chats        copier[*messages.Chat]
	idempotency  copier[*messages.IdempotencyRecord]
	media        media.Restorer
	webhooks     copier[*webhooks.Endpoint]
	pluginKV     copier[*pluginhost.KVEntry]
	ruleKV       copier[*rules.KVEntry]
	outbox       copier[*outbox.Job]
	apiKeys      copier[*apikeys.Key]
	sendCounts   copier[*throttle.SendCount]

	// For Reencrypt: the stores whose sealing lives above their copy
	// seam.
	messagesStore    *messages.Store
	idempotencyStore *messages.Idempotency
}

// noLimit: a copy takes every file the source holds, however large.
const noLimit = 1 << 62

func (e *Endpoint) stores() (*stores, error) {
	if e.mongo != nil {
		db := e.mongo.DB()
		msgs, idem := messages.New(db, nil), messages.NewIdempotency(db, time.Hour)
		return &stores{
			messagesStore:    msgs,
			idempotencyStore: idem,
			accounts:         session.NewMongoAccounts(db),
			simAuth:          sim.NewMongoAuth(db),
			simGroups:        sim.NewMongoGroups(db),
			waAuth:           authstore.NewMongoCopy(db),
			lids:             authstore.NewMongoLIDCopy(db),
			mediaRetries:     whatsapp.NewMongoMediaRetries(db),
			messages:         messages.New(db, nil).MessageRecords(),
			traces:           messages.New(db, nil).TraceRecords(),
			chats:            messages.New(db, nil).ChatRecords(),
			idempotency:      messages.NewIdempotency(db, time.Hour).Records(),
			media:            media.NewGridFS(db, noLimit),
			webhooks:         webhooks.NewMongoEndpoints(db, ""),
			pluginKV:         pluginhost.NewMongoKV(db, nil),
			ruleKV:           rules.NewMongoKV(db, nil),
			outbox:           outbox.NewMongoJobs(db),
			apiKeys:          apikeys.NewMongo(db),
			sendCounts:       throttle.NewMongoCounts(db),
		}, nil
	}
	files, err := media.NewFileStore(e.db, filepath.Join(e.dataDir, daemon.MediaDir), noLimit)
	if err != nil {
		return nil, err
	}
	msgs, idem := messages.NewSQLite(e.db, nil), messages.NewIdempotencySQLite(e.db, time.Hour)
	return &stores{
		messagesStore:    msgs,
		idempotencyStore: idem,
		accounts:         session.NewSQLiteAccounts(e.db),
		simAuth:          sim.NewSQLiteAuth(e.db),
		simGroups:        sim.NewSQLiteGroups(e.db),
		waAuth:           e.auth.Copy(),
		lids:             e.auth.LIDCopy(),
		mediaRetries:     whatsapp.NewSQLiteMediaRetries(e.db),
		messages:         messages.NewSQLite(e.db, nil).MessageRecords(),
		traces:           messages.NewSQLite(e.db, nil).TraceRecords(),
		chats:            messages.NewSQLite(e.db, nil).ChatRecords(),
		idempotency:      messages.NewIdempotencySQLite(e.db, time.Hour).Records(),
		media:            files,
		webhooks:         webhooks.NewSQLiteEndpoints(e.db),
		pluginKV:         pluginhost.NewSQLiteKV(e.db, nil),
		ruleKV:           rules.NewSQLiteKV(e.db, nil),
		outbox:           outbox.NewSQLiteJobs(e.db),
		apiKeys:          apikeys.NewSQLite(e.db),
		sendCounts:       throttle.NewSQLiteCounts(e.db),
	}, nil
}

// Kind names, in the order they are copied.
const (
	KindAccounts     = "accounts"
	KindSimAuth      = "sim auth"
	KindSimGroups    = "sim groups"
	KindWhatsAppAuth = "whatsapp auth"
	KindLIDMap       = "lid map"
	KindMediaRetries = "media retries"
	KindMessages     = "messages"
	// KindTraces: the messages' pipeline traces, set on the messages
	// copied before them.
	KindTraces      = "traces"
	KindChats       = "chats"
	KindIdempotency = "idempotency keys"
	KindMedia       = "media"
	KindWebhooks    = "webhooks"
	KindPluginKV    = "plugin kv"
	KindRuleKV      = "rule kv"
	KindOutbox      = "outbox jobs"
	// KindAPIKeys: the keys' hashes, valid at the target only under the
	// same server secret (data_dir/server.secret or http.auth_secret).
	KindAPIKeys = "api keys"
	// KindSendCounts: each account's sends per day, so the daily cap
	// holds across the move.
	KindSendCounts = "send counts"
)

// Kinds lists every kind to copy from src to dst.
func Kinds(src, dst *Endpoint) ([]Kind, error) {
	s, err := src.stores()
	if err != nil {
		return nil, err
	}
	d, err := dst.stores()
	if err != nil {
		return nil, err
	}
	return []Kind{
		Of(KindAccounts, s.accounts, d.accounts),
		Of(KindSimAuth, s.simAuth, d.simAuth),
		Of(KindSimGroups, s.simGroups, d.simGroups),
		Of(KindWhatsAppAuth, s.waAuth, d.waAuth),
		Of(KindLIDMap, s.lids, d.lids),
		Of(KindMediaRetries, s.mediaRetries, d.mediaRetries),
		Of(KindMessages, s.messages, d.messages),
		tracesKind(s.traces, d.traces),
		Of(KindChats, s.chats, d.chats),
		Of(KindIdempotency, s.idempotency, d.idempotency),
		mediaKind(s.media, d.media),
		Of(KindWebhooks, s.webhooks, d.webhooks),
		Of(KindPluginKV, s.pluginKV, d.pluginKV),
		Of(KindRuleKV, s.ruleKV, d.ruleKV),
		Of(KindOutbox, s.outbox, d.outbox),
		Of(KindAPIKeys, s.apiKeys, d.apiKeys),
		Of(KindSendCounts, s.sendCounts, d.sendCounts),
	}, nil
}

// tracesKind copies the messages' traces onto the target's messages (the
// messages kind has copied them). It counts the traces it set: one whose
// message the target lacks — stored in the source after its messages were
// copied — is skipped, and the report shows fewer copied than counted.
func tracesKind(src, dst messages.TraceRecords) Kind {
	return Kind{
		Name:        KindTraces,
		Count:       src.Count,
		TargetCount: dst.Count,
		Copy: func(ctx context.Context, wrote func(n int)) error {
			return src.Export(ctx, BatchSize, func(ts []*messages.TraceRecord) error {
				n, err := dst.Import(ctx, ts)
				if err != nil {
					return err
				}
				wrote(int(n))
				return nil
			})
		},
	}
}

// mediaPage is how many files are listed at a time; each is then copied
// on its own (files can be large).
const mediaPage = 100

// mediaKind copies every media file with its metadata.
func mediaKind(src media.Store, dst media.Restorer) Kind {
	return Kind{
		Name:        KindMedia,
		Count:       src.Count,
		TargetCount: dst.Count,
		Copy: func(ctx context.Context, wrote func(n int)) error {
			after := ""
			for {
				page, err := src.List(ctx, after, mediaPage)
				if err != nil {
					return err
				}
				if len(page) == 0 {
					return nil
				}
				for _, in := range page {
					if err := copyFile(ctx, src, dst, in); err != nil {
						return err
					}
					wrote(1)
				}
				after = page[len(page)-1].ID
			}
		},
	}
}

func copyFile(ctx context.Context, src media.Store, dst media.Restorer, in *media.Info) error {
	r, err := src.Open(ctx, in.ID)
	if errors.Is(err, media.ErrNotFound) {
		return nil // deleted since listed
	}
	if err != nil {
		return err
	}
	defer r.Close()
	return dst.Restore(ctx, r, in)
}

// Copy opens both locations, copies every kind and closes them: what
// wildcatd store copy runs.
func Copy(ctx context.Context, from, to string, opts OpenOptions, force bool, p Progress) (*Result, error) {
	if !IsMongoURI(from) && !IsMongoURI(to) {
		a, _, errA := sqlitePath(from, false)
		b, _, errB := sqlitePath(to, true)
		if errA == nil && errB == nil && sameFile(a, b) {
			return nil, fmt.Errorf("%w: --from and --to are the same database", ErrBadLocation)
		}
	}
	if IsMongoURI(from) && from == to {
		return nil, fmt.Errorf("%w: --from and --to are the same database", ErrBadLocation)
	}
	srcOpts := opts
	srcOpts.Target = false
	src, err := Open(ctx, from, srcOpts)
	if err != nil {
		return nil, fmt.Errorf("open --from %s: %w", from, err)
	}
	defer src.Close()
	dstOpts := opts
	dstOpts.Target = true
	dst, err := Open(ctx, to, dstOpts)
	if err != nil {
		return nil, fmt.Errorf("open --to %s: %w", to, err)
	}
	defer dst.Close()
	kinds, err := Kinds(src, dst)
	if err != nil {
		return nil, err
	}
	res, err := Run(ctx, kinds, force, p)
	if err != nil {
		return res, err
	}
	if err := dst.Close(); err != nil {
		return res, fmt.Errorf("close --to %s: %w", to, err)
	}
	return res, nil
}

func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	aa, _ := filepath.Abs(a)
	bb, _ := filepath.Abs(b)
	return aa == bb
}

// Target is what `wildcatd accounts import` writes into an endpoint: the
// account records, the WhatsApp auth state with the LID map, and the
// message history.
type Target struct {
	Accounts session.AccountStore
	Auth     interface {
		Importer[*authstore.Account]
		// Devices maps each stored device's JID to its account.
		Devices(ctx context.Context) (map[string]string, error)
	}
	LIDs     Importer[*authstore.LIDMapping]
	Messages *messages.Store
	// DeleteAuth removes all of an account's auth state (before a
	// replacing import).
	DeleteAuth func(ctx context.Context, accountID string) error
}

// Target returns the endpoint's stores for an import.
func (e *Endpoint) Target() (*Target, error) {
	if e.mongo != nil {
		db := e.mongo.DB()
		return &Target{Accounts: session.NewMongoAccounts(db), Auth: authstore.NewMongoCopy(db),
			LIDs: authstore.NewMongoLIDCopy(db), Messages: messages.New(db, nil),
			DeleteAuth: func(ctx context.Context, id string) error { return authstore.New(db, id, nil).Delete(ctx) }}, nil
	}
	return &Target{Accounts: session.NewSQLiteAccounts(e.db), Auth: e.auth.Copy(),
		LIDs: e.auth.LIDCopy(), Messages: messages.NewSQLite(e.db, nil),
		DeleteAuth: func(ctx context.Context, id string) error { return e.auth.Account(id).Delete(ctx) }}, nil
}
