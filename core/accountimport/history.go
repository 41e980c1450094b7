package accountimport

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/storecopy"
)

// The message history another program kept, where its layout is known.
// Known today: GoWA's chat storage (go-whatsapp-web-multidevice), tables
// chats and messages keyed by the device (device_id: the device's JID, or
// the name GoWA gave it in its devices table), kept in a database of its
// own (storages/chatstorage.db beside storages/whatsapp.db, or a SQL URL).
// The layout is read from GoWA's migrations, by column name; the messages
// keep only text, captions and media references, not WhatsApp's protobuf.

// GoWAChatStorage is the name of GoWA's chat storage file beside its
// whatsmeow store.
const GoWAChatStorage = "chatstorage.db"

// HistoryResult is what --history brought in.
type HistoryResult struct {
	// Layout names the program whose message store was read ("" when none
	// was found: Where says where it looked).
	Layout   string
	Where    string
	Accounts []*AccountHistory
}

// AccountHistory is one imported account's history.
type AccountHistory struct {
	AccountID string
	// Messages were stored; Present were in Wildcat already (an import
	// run again stores nothing twice).
	Messages, Present, Chats int
	// Skipped counts what could not be imported, by reason.
	Skipped map[string]int
}

// HistoryOptions say where the history is.
type HistoryOptions struct {
	// From is the database holding the messages: "" looks in the source
	// itself, then (a SQLite source) for GoWA's chatstorage.db beside it.
	From string
	// SourcePath is the source's location (--from).
	SourcePath string
	Keys       *sealing.Keyring
}

// History imports the stored messages of the devices res imported, where
// the other program keeps them in a layout this package knows, as
// messages of the accounts: history (source "history"), already through
// the pipeline (imported history fires no rules nor webhooks), with the
// ids WhatsApp gave them, so running it again stores nothing twice.
func History(ctx context.Context, src *authstore.Source, t *storecopy.Target, res *Result, opts HistoryOptions) (*HistoryResult, error) {
	db, dialect, where, closeDB, err := historyDB(ctx, src, opts)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	out := &HistoryResult{Where: where}
	if db == nil {
		return out, nil
	}
	out.Layout = "GoWA chat storage"
	t.Messages.Seal(opts.Keys)
	r := &gowaReader{db: db, dialect: dialect}
	if err := r.init(ctx); err != nil {
		return nil, err
	}
	devs, err := src.Devices(ctx)
	if err != nil {
		return nil, err
	}
	for _, im := range res.Imported {
		h, err := r.importAccount(ctx, t, im, len(devs) == 1)
		if err != nil {
			return out, fmt.Errorf("history of %s: %w", im.AccountID, err)
		}
		out.Accounts = append(out.Accounts, h)
	}
	return out, nil
}

// historyDB finds the database with a known layout; nil when none.
func historyDB(ctx context.Context, src *authstore.Source, opts HistoryOptions) (db *sql.DB, dialect, where string, closeDB func(), err error) {
	noop := func() {}
	if opts.From != "" {
		db, dialect, err := authstore.OpenReadOnly(opts.From)
		if err != nil {
			return nil, "", opts.From, noop, fmt.Errorf("--history-from: %w", err)
		}
		ok, err := isGoWA(ctx, db, dialect)
		if err != nil || !ok {
			_ = db.Close()
			return nil, "", opts.From, noop, err
		}
		return db, dialect, opts.From, func() { _ = db.Close() }, nil
	}
	if ok, err := isGoWA(ctx, src.DB(), src.Dialect); err != nil || ok {
		return src.DB(), src.Dialect, "the source", noop, err
	}
	if src.Dialect != "sqlite" {
		return nil, "", "the source", noop, nil
	}
	beside := filepath.Join(filepath.Dir(opts.SourcePath), GoWAChatStorage)
	if _, err := os.Stat(beside); err != nil {
		return nil, "", "the source and " + beside, noop, nil
	}
	db, dialect, err = authstore.OpenReadOnly(beside)
	if err != nil {
		return nil, "", beside, noop, err
	}
	if ok, err := isGoWA(ctx, db, dialect); err != nil || !ok {
		_ = db.Close()
		return nil, "", "the source and " + beside, noop, err
	}
	return db, dialect, beside, func() { _ = db.Close() }, nil
}

// isGoWA reports whether db has GoWA's chat storage tables.
func isGoWA(ctx context.Context, db *sql.DB, dialect string) (bool, error) {
	w, err := dbutil.NewWithDB(db, dialect)
	if err != nil {
		return false, err
	}
	for _, table := range []string{"messages", "chats"} {
		if ok, err := w.TableExists(ctx, table); err != nil || !ok {
			return false, err
		}
	}
	for _, col := range []string{"id", "chat_jid", "device_id", "sender", "content", "timestamp", "is_from_me", "media_type"} {
		if ok, err := w.ColumnExists(ctx, "messages", col); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

type gowaReader struct {
	db      *sql.DB
	dialect string
	w       *dbutil.Database
	// directPath: the messages table has GoWA's later direct_path column.
	directPath bool
}

func (r *gowaReader) init(ctx context.Context) (err error) {
	if r.w, err = dbutil.NewWithDB(r.db, r.dialect); err != nil {
		return err
	}
	r.directPath, err = r.w.ColumnExists(ctx, "messages", "direct_path")
	return err
}

// deviceIDs are the values of device_id that mean the device: its JID
// with and without the device number, and the names GoWA's devices table
// gives it.
func (r *gowaReader) deviceIDs(ctx context.Context, jid types.JID) (map[string]bool, error) {
	ids := map[string]bool{jid.String(): true, jid.ToNonAD().String(): true}
	ok, err := r.w.TableExists(ctx, "devices")
	if err != nil || !ok {
		return ids, err
	}
	q := `SELECT device_id FROM devices WHERE jid = $1 OR jid = $2`
	if adj, err := r.w.ColumnExists(ctx, "devices", "ad_jid"); err != nil {
		return nil, err
	} else if adj {
		q += ` OR ad_jid = $2`
	}
	rows, err := r.db.QueryContext(ctx, q, jid.ToNonAD().String(), jid.String())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// gowaTypes maps GoWA's media_type to Wildcat's message types.
var gowaTypes = map[string]event.MessageType{
	"": event.TypeText, "image": event.TypeImage, "video": event.TypeVideo, "video_note": event.TypePTV,
	"audio": event.TypeAudio, "ptt": event.TypeVoice, "document": event.TypeDocument, "sticker": event.TypeSticker,
}

func (r *gowaReader) importAccount(ctx context.Context, t *storecopy.Target, im *Imported, unnamed bool) (*AccountHistory, error) {
	h := &AccountHistory{AccountID: im.AccountID, Skipped: map[string]int{}}
	ids, err := r.deviceIDs(ctx, im.Device.JID)
	if err != nil {
		return nil, err
	}
	if unnamed {
		// Rows written before GoWA kept several devices carry none.
		ids[""] = true
	}
	cols := `id, chat_jid, device_id, sender, content, timestamp, is_from_me, media_type, filename, url, media_key, file_sha256, file_enc_sha256, file_length`
	if r.directPath {
		cols += `, direct_path`
	}
	rows, err := r.db.QueryContext(ctx, `SELECT `+cols+` FROM messages ORDER BY timestamp, id`)
	if err != nil {
		return nil, fmt.Errorf("read GoWA messages: %w", err)
	}
	defer rows.Close()
	chats := map[string]bool{}
	for rows.Next() {
		var (
			id, chat, device, sender                      string
			content, mediaType, filename, url, directPath sql.NullString
			ts                                            any
			fromMe                                        sql.NullBool
			mediaKey, sha, encSHA                         []byte
			size                                          sql.NullInt64
		)
		dest := []any{&id, &chat, &device, &sender, &content, &ts, &fromMe, &mediaType, &filename, &url, &mediaKey, &sha, &encSHA, &size}
		if r.directPath {
			dest = append(dest, &directPath)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read GoWA messages: %w", err)
		}
		if !ids[device] {
			continue // another device's
		}
		typ, known := gowaTypes[mediaType.String]
		switch {
		case mediaType.String == "call":
			h.Skipped["call records (not messages)"]++
			continue
		case !known:
			h.Skipped[fmt.Sprintf("media type %q unknown to this import", mediaType.String)]++
			continue
		case typ == event.TypeText && content.String == "":
			h.Skipped["no text nor media (reactions, protocol messages)"]++
			continue
		case id == "" || chat == "":
			h.Skipped["no message or chat id"]++
			continue
		}
		at, ok := timeOf(ts)
		if !ok {
			h.Skipped["unreadable timestamp"]++
			continue
		}
		m := &event.Message{AccountID: im.AccountID, MessageID: id, ChatID: chat, From: sender, FromMe: fromMe.Bool,
			Timestamp: at.Unix(), Type: typ, Text: content.String, IsGroup: strings.HasSuffix(chat, "@"+types.GroupServer),
			IsBroadcast: strings.HasSuffix(chat, "@"+types.BroadcastServer), IsStatus: chat == types.StatusBroadcastJID.String()}
		if m.FromMe && m.From == "" {
			m.From = im.Device.JID.ToNonAD().String()
		}
		if typ.HasMedia() {
			m.HasMedia = true
			m.Media = &event.Media{Size: uint64(max(size.Int64, 0)), MediaKey: mediaKey, DirectPath: directPath.String,
				URL: url.String, Filename: filename.String, Caption: content.String, Voice: typ == event.TypeVoice, PTV: typ == event.TypePTV}
			if len(sha) > 0 {
				m.Media.SHA256 = hex.EncodeToString(sha)
			}
			if len(encSHA) > 0 {
				m.Media.FileEncSHA256 = hex.EncodeToString(encSHA)
			}
		}
		kind := event.KindMessageReceived
		if m.FromMe {
			kind = event.KindMessageSent
		}
		ev := &event.Event{ID: event.MessageEventID(im.AccountID, id), Kind: kind, AccountID: im.AccountID, ChatID: chat,
			Timestamp: at.UTC(), Source: event.SourceHistory, Message: m}
		if err := ev.Validate(); err != nil {
			h.Skipped["not a valid message: "+err.Error()]++
			continue
		}
		// Looked up first: Record reports a message of our own stored
		// again as completing a pending send.
		switch _, err := t.Messages.Get(ctx, im.AccountID, id); {
		case err == nil:
			h.Present++
			continue
		case !errors.Is(err, messages.ErrNotFound):
			return nil, err
		}
		if _, err := t.Messages.Record(ctx, ev); err != nil {
			return nil, err
		}
		// History: the pipeline does not run on it (no rules, no
		// webhooks for old messages).
		if err := t.Messages.MarkProcessed(ctx, ev.ID); err != nil {
			return nil, err
		}
		h.Messages++
		chats[chat] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read GoWA messages: %w", err)
	}
	h.Chats = len(chats)
	return h, nil
}

// timeOf reads a TIMESTAMP column as the drivers hand it over: a time, the
// text Go's SQLite drivers write, or Unix seconds.
func timeOf(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, !x.IsZero()
	case int64:
		return time.Unix(x, 0), x > 0
	case []byte:
		return timeOf(string(x))
	case string:
		for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999",
			"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999 -0700 MST"} {
			if t, err := time.Parse(layout, strings.TrimSpace(x)); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// SkippedLines renders the skipped counts, largest first.
func (h *AccountHistory) SkippedLines() []string {
	whys := make([]string, 0, len(h.Skipped))
	for why := range h.Skipped {
		whys = append(whys, why)
	}
	sort.Slice(whys, func(i, j int) bool {
		if a, b := h.Skipped[whys[i]], h.Skipped[whys[j]]; a != b {
			return a > b
		}
		return whys[i] < whys[j]
	})
	out := make([]string, len(whys))
	for i, why := range whys {
		out[i] = fmt.Sprintf("%d %s", h.Skipped[why], why)
	}
	return out
}
