package messages

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/store/sqlite"
)

//go:embed schema/*.sql
var schemaFiles embed.FS

// SQLiteSchema is the messages, chats and idempotency tables of the
// embedded engine.
var SQLiteSchema = sqlite.SchemaIn("messages", schemaFiles, "schema")

// sqliteBackend keeps messages and chats in the tables of
// schema/0001_messages.sql. Every write is one db.Write, so it is atomic
// (a message and its chat commit together) and group-committed with the
// other writers of the moment. The writer is single, so a read inside a
// Write sees exactly what the write will change: the few
// read-modify-write updates (an edit, tags, media links) need no locks and
// no retries.
type sqliteBackend struct {
	db *sqlite.DB
}

// msgCols are the columns a Message is read from: the authoritative
// columns, then doc (scanMessage).
const msgCols = `seq, raw, status, status_rank, status_at, error, pipeline_done, doc`

// msgColsNoRaw reads a message without its raw proto.
const msgColsNoRaw = `seq, NULL, status, status_rank, status_at, error, pipeline_done, doc`

type scanner interface{ Scan(dest ...any) error }

func scanMessage(sc scanner) (*Message, int64, error) {
	var (
		seq      int64
		raw      []byte
		status   string
		rank     int
		statusAt sql.NullInt64
		errText  string
		done     sql.NullInt64
		doc      []byte
	)
	if err := sc.Scan(&seq, &raw, &status, &rank, &statusAt, &errText, &done, &doc); err != nil {
		return nil, 0, err
	}
	var m Message
	if err := decodeDoc(doc, &m); err != nil {
		return nil, 0, fmt.Errorf("decode message document: %w", err)
	}
	if len(raw) > 0 {
		m.RawMessage = raw
	}
	m.Status, m.StatusRank, m.Error = Status(status), rank, errText
	if statusAt.Valid {
		t := time.UnixMilli(statusAt.Int64).UTC()
		m.StatusAt = &t
	}
	if done.Valid {
		d := done.Int64 != 0
		m.PipelineDone = &d
	}
	return &m, seq, nil
}

func scanMessages(rows *sql.Rows) ([]*Message, int64, error) {
	defer rows.Close()
	var out []*Message
	var last int64
	for rows.Next() {
		m, seq, err := scanMessage(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, m)
		last = seq
	}
	return out, last, rows.Err()
}

// docJSON is the document without the authoritative columns' fields.
func docJSON(m *Message) (string, error) {
	d := *m
	d.RawMessage, d.Status, d.StatusRank, d.StatusAt, d.Error, d.PipelineDone = nil, "", 0, nil, "", nil
	b, err := encodeDoc(d)
	if err != nil {
		return "", fmt.Errorf("encode message document: %w", err)
	}
	return string(b), nil
}

// The columns of a full row, in rowArgs order.
const rowCols = `id, account_id, message_id, chat_id, sort_key, kind, type, from_jid, from_pn, from_lid, from_me,
	timestamp, text, has_media, media_id, stored_at, status, status_rank, status_at, error, pipeline_done, raw, doc`

func rowArgs(m *Message) ([]any, error) {
	doc, err := docJSON(m)
	if err != nil {
		return nil, err
	}
	var raw []byte
	if len(m.RawMessage) > 0 {
		raw = m.RawMessage
	}
	return []any{m.ID, m.AccountID, m.MessageID, m.ChatID, m.SortKey, string(m.Kind), string(m.Type),
		m.From, m.FromPN, m.FromLID, b2i(m.FromMe), m.Timestamp, searchText(m.Text), b2i(m.HasMedia), m.MediaID,
		m.StoredAt.UnixMilli(), string(m.Status), m.StatusRank, millisOrNil(m.StatusAt), m.Error,
		doneOrNil(m.PipelineDone), raw, doc}, nil
}

// searchText is what the text column (and so the full-text index) holds:
// nothing for sealed text, which no index could search (sealed.go).
func searchText(s string) string {
	if sealing.IsSealedString(s) {
		return ""
	}
	return s
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func millisOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func doneOrNil(d *bool) any {
	if d == nil {
		return nil
	}
	return b2i(*d)
}

var updateRow = func() string {
	cols := strings.Split(rowCols, ",")
	set := make([]string, 0, len(cols)-1)
	for _, c := range cols[1:] {
		set = append(set, strings.TrimSpace(c)+" = ?")
	}
	return `UPDATE messages SET ` + strings.Join(set, ", ") + ` WHERE id = ?`
}()

// putRow rewrites every column of the stored message m.ID.
func (b *sqliteBackend) putRow(ctx context.Context, tx *sql.Tx, m *Message) error {
	args, err := rowArgs(m)
	if err != nil {
		return err
	}
	_, err = b.db.Exec(ctx, tx, updateRow, append(args[1:], m.ID)...)
	return err
}

func (b *sqliteBackend) getTx(ctx context.Context, tx *sql.Tx, id string) (*Message, error) {
	m, _, err := scanMessage(b.db.QueryRow(ctx, tx, `SELECT `+msgCols+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	return m, err
}

const insertMessage = `INSERT INTO messages (` + rowCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO NOTHING`

// upsertChat is chatUpdate.apply in SQL: every SET expression reads the
// row as it was before the update.
const upsertChat = `INSERT INTO chats (account_id, chat_id, chat_pn, chat_lid, name, is_group, last_message,
		last_activity, unread_count, message_count, activity_key, updated_at)
	VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, MAX(?9, 0), 1, ?10, ?11)
	ON CONFLICT (account_id, chat_id) DO UPDATE SET
		chat_pn = CASE WHEN excluded.chat_pn <> '' THEN excluded.chat_pn ELSE chat_pn END,
		chat_lid = CASE WHEN excluded.chat_lid <> '' THEN excluded.chat_lid ELSE chat_lid END,
		name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE name END,
		unread_count = CASE ?9 WHEN -1 THEN 0 WHEN 1 THEN unread_count + 1 ELSE unread_count END,
		message_count = message_count + 1,
		last_message = CASE WHEN excluded.activity_key > activity_key THEN excluded.last_message ELSE last_message END,
		last_activity = CASE WHEN excluded.activity_key > activity_key THEN excluded.last_activity ELSE last_activity END,
		activity_key = MAX(activity_key, excluded.activity_key),
		updated_at = excluded.updated_at`

func (b *sqliteBackend) Insert(ctx context.Context, m *Message, chat *chatUpdate) error {
	ins, err := b.inserter(ctx, m, chat)
	if err != nil {
		return err
	}
	// One write: the message and its chat commit together or not at all.
	return b.db.Write(ctx, ins)
}

// inserter is the insert of m and the fold into its chat, to run inside a
// write; it returns ErrExists when m is stored already.
func (b *sqliteBackend) inserter(ctx context.Context, m *Message, chat *chatUpdate) (func(tx *sql.Tx) error, error) {
	args, err := rowArgs(m)
	if err != nil {
		return nil, err
	}
	var last []byte
	if chat != nil {
		if last, err = json.Marshal(chat.Last); err != nil {
			return nil, fmt.Errorf("encode last message: %w", err)
		}
	}
	return func(tx *sql.Tx) error {
		res, err := b.db.Exec(ctx, tx, insertMessage, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrExists
		}
		if chat == nil {
			return nil
		}
		_, err = b.db.Exec(ctx, tx, upsertChat, chat.AccountID, chat.ChatID, chat.ChatPN, chat.ChatLID, chat.Name,
			b2i(chat.IsGroup), string(last), chat.LastActivity, chat.Unread, chat.ActivityKey, chat.At.UnixMilli())
		if err != nil {
			return fmt.Errorf("fold into chat %s: %w", ChatDocID(chat.AccountID, chat.ChatID), err)
		}
		return nil
	}, nil
}

// InsertVote stores the vote and updates its poll's tally in one write: a
// vote is never stored without being counted, nor counted twice.
func (b *sqliteBackend) InsertVote(ctx context.Context, m *Message, chat *chatUpdate, pollID string, ballot PollBallot) (inserted, applied bool, err error) {
	ins, err := b.inserter(ctx, m, chat)
	if err != nil {
		return false, false, err
	}
	err = b.db.Write(ctx, func(tx *sql.Tx) error {
		inserted, applied = false, false
		if err := ins(tx); errors.Is(err, ErrExists) {
			return nil // counted when it was stored
		} else if err != nil {
			return err
		}
		inserted = true
		poll, err := b.getTx(ctx, tx, pollID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if !applyVote(poll, ballot) {
			return nil
		}
		applied = true
		return b.putRow(ctx, tx, poll)
	})
	if err != nil {
		return false, false, err
	}
	return inserted, applied, nil
}

// modify runs change on the stored message id inside one write and
// rewrites the row when change reports a change. found is false when id is
// not stored.
func (b *sqliteBackend) modify(ctx context.Context, id string, change func(cur *Message) bool) (changed, found bool, err error) {
	err = b.db.Write(ctx, func(tx *sql.Tx) error {
		changed, found = false, false
		cur, err := b.getTx(ctx, tx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		if !change(cur) {
			return nil
		}
		changed = true
		return b.putRow(ctx, tx, cur)
	})
	if err != nil {
		return false, found, err
	}
	return changed, found, nil
}

func (b *sqliteBackend) CompletePending(ctx context.Context, doc *Message, merge func(cur, m *Message) bool) (bool, error) {
	changed, found, err := b.modify(ctx, doc.ID, func(cur *Message) bool {
		if !merge(cur, doc) {
			return false
		}
		*cur = *doc
		return true
	})
	if err == nil && !found {
		return false, fmt.Errorf("message %s: %w", doc.ID, ErrNotFound)
	}
	return changed, err
}

func (b *sqliteBackend) Get(ctx context.Context, id string) (*Message, error) {
	m, _, err := scanMessage(b.db.Reader().QueryRowContext(ctx, `SELECT `+msgCols+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read message %s: %w", id, err)
	}
	return m, nil
}

// exec runs one statement as its own write and reports the rows it changed.
func (b *sqliteBackend) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := b.db.Exec(ctx, tx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

func (b *sqliteBackend) SetStatus(ctx context.Context, id string, st Status, rank int, at time.Time) (bool, error) {
	// The rank guard is in the WHERE: out-of-order receipts race safely.
	n, err := b.exec(ctx, `UPDATE messages SET status = ?, status_rank = ?, status_at = ? WHERE id = ? AND status_rank < ?`,
		string(st), rank, at.UnixMilli(), id, rank)
	return n > 0, err
}

func (b *sqliteBackend) MarkChatRead(ctx context.Context, accountID, chatID string, at time.Time) error {
	_, err := b.exec(ctx, `UPDATE chats SET unread_count = 0, updated_at = ? WHERE account_id = ? AND chat_id = ? AND unread_count > 0`,
		at.UnixMilli(), accountID, chatID)
	return err
}

func (b *sqliteBackend) NameChat(ctx context.Context, accountID, chatID, name string, at, now time.Time) error {
	_, err := b.exec(ctx, `INSERT INTO chats (account_id, chat_id, chat_pn, chat_lid, name, is_group, last_message,
			last_activity, unread_count, message_count, activity_key, updated_at)
		VALUES (?, ?, '', '', ?, 1, NULL, ?, 0, 0, ?, ?)
		ON CONFLICT (account_id, chat_id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at`,
		accountID, chatID, name, at.Unix(), namedChatKey(at, chatID), now.UnixMilli())
	return err
}

func (b *sqliteBackend) Edit(ctx context.Context, id, editID, text string, at time.Time) (bool, error) {
	changed, _, err := b.modify(ctx, id, func(cur *Message) bool { return applyEdit(cur, editID, text, at) })
	return changed, err
}

func (b *sqliteBackend) Revoke(ctx context.Context, id, by string, at time.Time) (bool, error) {
	changed, _, err := b.modify(ctx, id, func(cur *Message) bool {
		if cur.Revoked {
			return false
		}
		cur.Revoked, cur.RevokedBy, cur.RevokedAt = true, by, &at
		return true
	})
	return changed, err
}

func (b *sqliteBackend) MarkFailed(ctx context.Context, id, reason string, at time.Time) (bool, error) {
	n, err := b.exec(ctx, `UPDATE messages SET status = 'failed', error = ?, status_at = ? WHERE id = ? AND status = 'pending'`,
		reason, at.UnixMilli(), id)
	return n > 0, err
}

func (b *sqliteBackend) FailStalePending(ctx context.Context, cutoff time.Time, reason string, at time.Time) (int, error) {
	n, err := b.exec(ctx, `UPDATE messages SET status = 'failed', error = ?, status_at = ? WHERE status = 'pending' AND stored_at < ?`,
		reason, at.UnixMilli(), cutoff.UnixMilli())
	return int(n), err
}

func (b *sqliteBackend) Annotate(ctx context.Context, id string, tags []string, annotations map[string]string) error {
	_, _, err := b.modify(ctx, id, func(cur *Message) bool {
		annotate(cur, tags, annotations)
		return true
	})
	return err
}

func (b *sqliteBackend) RecordFailures(ctx context.Context, id string, fs []ActionFailure) error {
	_, _, err := b.modify(ctx, id, func(cur *Message) bool {
		mergeFailures(cur, fs)
		return true
	})
	return err
}

const markProcessedSQL = `UPDATE messages SET pipeline_done = 1, pipeline_at = ? WHERE id = ?`

func (b *sqliteBackend) MarkProcessed(ctx context.Context, id string, at time.Time) error {
	_, err := b.exec(ctx, markProcessedSQL, at.UnixMilli(), id)
	return err
}

// ErrNoTx: MarkProcessedTx on a Store that is not on SQLite; use
// MarkProcessed.
var ErrNoTx = errors.New("messages store is not on the SQLite engine")

// MarkProcessedTx is MarkProcessed inside tx — a transaction of the
// caller's own Write on the store's database — so the mark commits together
// with the caller's other statements (the event's outbox jobs). It is for
// the SQLite engine only (ErrNoTx otherwise).
func (s *Store) MarkProcessedTx(ctx context.Context, tx *sql.Tx, eventID string) error {
	b, ok := s.engine().(*sqliteBackend)
	if !ok {
		return ErrNoTx
	}
	if _, err := b.db.Exec(ctx, tx, markProcessedSQL, s.now().UTC().UnixMilli(), eventID); err != nil {
		return fmt.Errorf("mark event %s processed: %w", eventID, err)
	}
	return nil
}

func (b *sqliteBackend) query(ctx context.Context, q string, args ...any) ([]*Message, int64, error) {
	rows, err := b.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, err
	}
	return scanMessages(rows)
}

func limitOrAll(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}

// textIndexEvery is how often at most a group commit takes the rows stored
// since the last such commit into the trigram index (textIndexer).
const textIndexEvery = 50 * time.Millisecond

// textIndexer is the before-commit hook that keeps the trigram index (see
// the schema's 0002_messages_text_per_commit.sql). FTS5 writes an index
// segment, and its bookkeeping pages, per statement that changes it: one per
// message made the index a fifth of the cost of storing one, and one per
// group commit was still a twentieth of an event's CPU end to end and
// several pages in every group's commit. So a group indexes what the
// groups before it stored only once every `every`; a search first takes in
// whatever is left (catchUpText), so it still finds every message stored
// before it began.
func textIndexer(db *sqlite.DB, every time.Duration) func(ctx context.Context, tx *sql.Tx) error {
	var last time.Time // only the committer's goroutine runs hooks
	return func(ctx context.Context, tx *sql.Tx) error {
		if now := time.Now(); now.Sub(last) >= every {
			last = now
			return indexText(ctx, db, tx)
		}
		return nil
	}
}

// catchUpText indexes every row stored before it was called that the
// trigram index does not hold yet.
func (b *sqliteBackend) catchUpText(ctx context.Context) error {
	_, _, behind, err := textIndexState(b.db.Reader().QueryRowContext(ctx, textIndexStateSQL))
	if err != nil || !behind {
		return err
	}
	return b.db.Write(ctx, func(tx *sql.Tx) error { return indexText(ctx, b.db, tx) })
}

// textIndexStateSQL reads the highest indexed seq and the highest seq.
const textIndexStateSQL = `SELECT (SELECT indexed_seq FROM messages_text_state), (SELECT MAX(seq) FROM messages)`

// textIndexState scans textIndexStateSQL's row: behind means rows above
// indexed, up to top, are not in the index yet.
func textIndexState(row *sql.Row) (indexed, top int64, behind bool, err error) {
	var i, t sql.NullInt64
	if err := row.Scan(&i, &t); err != nil {
		return 0, 0, false, fmt.Errorf("index text: %w", err)
	}
	return i.Int64, t.Int64, t.Valid && t.Int64 > i.Int64, nil
}

// indexText adds the text of every row above indexed_seq to the trigram
// index in one statement, in tx.
func indexText(ctx context.Context, db *sqlite.DB, tx *sql.Tx) error {
	indexed, top, behind, err := textIndexState(db.QueryRow(ctx, tx, textIndexStateSQL))
	if err != nil || !behind {
		return err
	}
	if _, err := db.Exec(ctx, tx, `INSERT INTO messages_text (rowid, text) SELECT seq, text FROM messages WHERE seq > ? AND seq <= ?`, indexed, top); err != nil {
		return fmt.Errorf("index text: %w", err)
	}
	if _, err := db.Exec(ctx, tx, `UPDATE messages_text_state SET indexed_seq = ?`, top); err != nil {
		return fmt.Errorf("index text: %w", err)
	}
	return nil
}

// minTrigram is the shortest text the trigram index can match.
const minTrigram = 3

func (b *sqliteBackend) History(ctx context.Context, q Query, before string, limit int) ([]*Message, error) {
	where := []string{"account_id = ?"}
	args := []any{q.AccountID}
	add := func(cond string, a ...any) { where, args = append(where, cond), append(args, a...) }
	if q.ChatID != "" {
		add("chat_id = ?", q.ChatID)
	}
	if q.From != "" {
		add("(from_jid = ? OR from_pn = ? OR from_lid = ?)", q.From, q.From, q.From)
	}
	if q.Type != "" {
		add("type = ?", string(q.Type))
	}
	if q.FromMe != nil {
		add("from_me = ?", b2i(*q.FromMe))
	}
	if !q.Since.IsZero() {
		add("timestamp >= ?", q.Since.Unix())
	}
	if !q.Until.IsZero() {
		add("timestamp < ?", q.Until.Unix())
	}
	if q.Text != "" {
		if utf8.RuneCountInString(q.Text) >= minTrigram {
			if err := b.catchUpText(ctx); err != nil {
				return nil, err
			}
			// One quoted FTS5 string: the trigram index matches it as a
			// case-insensitive substring.
			add("seq IN (SELECT rowid FROM messages_text WHERE messages_text MATCH ?)", `"`+strings.ReplaceAll(q.Text, `"`, `""`)+`"`)
		} else {
			// Too short for trigrams: a LIKE over the rows the index walk
			// below reads anyway (LIKE folds ASCII letters only).
			add(`text LIKE ? ESCAPE '\'`, "%"+likeEscaper.Replace(q.Text)+"%")
		}
	}
	if before != "" {
		add("sort_key < ?", before)
	}
	out, _, err := b.query(ctx, `SELECT `+msgColsNoRaw+` FROM messages WHERE `+strings.Join(where, " AND ")+
		` ORDER BY sort_key DESC LIMIT ?`, append(args, limitOrAll(limit))...)
	return out, err
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func (b *sqliteBackend) DeleteAccount(ctx context.Context, accountID string) (int64, error) {
	var n int64
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE account_id = ?`, accountID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM chats WHERE account_id = ?`, accountID)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

const chatCols = `account_id, chat_id, chat_pn, chat_lid, name, is_group, last_message, last_activity,
	unread_count, message_count, activity_key, updated_at`

func scanChat(sc scanner) (*Chat, error) {
	var (
		c       Chat
		isGroup int64
		last    sql.NullString
		updated int64
	)
	if err := sc.Scan(&c.AccountID, &c.ChatID, &c.ChatPN, &c.ChatLID, &c.Name, &isGroup, &last, &c.LastActivity,
		&c.UnreadCount, &c.MessageCount, &c.ActivityKey, &updated); err != nil {
		return nil, err
	}
	c.ID, c.IsGroup, c.UpdatedAt = ChatDocID(c.AccountID, c.ChatID), isGroup != 0, time.UnixMilli(updated).UTC()
	if last.Valid && last.String != "" {
		c.LastMessage = &ChatMessage{}
		if err := json.Unmarshal([]byte(last.String), c.LastMessage); err != nil {
			return nil, fmt.Errorf("decode last message of chat %s: %w", c.ID, err)
		}
	}
	return &c, nil
}

func (b *sqliteBackend) Chats(ctx context.Context, accountID, before string, limit int) ([]*Chat, error) {
	q := `SELECT ` + chatCols + ` FROM chats WHERE account_id = ?`
	args := []any{accountID}
	if before != "" {
		q, args = q+` AND activity_key < ?`, append(args, before)
	}
	rows, err := b.db.Reader().QueryContext(ctx, q+` ORDER BY activity_key DESC LIMIT ?`, append(args, limitOrAll(limit))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]*Chat, 0, max(limit, 0))
	for rows.Next() {
		c, err := scanChat(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (b *sqliteBackend) Chat(ctx context.Context, accountID, chatID string) (*Chat, error) {
	c, err := scanChat(b.db.Reader().QueryRowContext(ctx, `SELECT `+chatCols+` FROM chats WHERE account_id = ? AND chat_id = ?`, accountID, chatID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("chat %s of %s: %w", chatID, accountID, ErrChatNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read chat %s of %s: %w", chatID, accountID, err)
	}
	return c, nil
}

// Stored order on SQLite is seq; a position is "seq id" (the id only makes
// it readable: a space never occurs in an event id).
func sqlitePosition(seq int64, id string) string { return strconv.FormatInt(seq, 10) + " " + id }

func parseSQLitePosition(p string) (int64, bool) {
	n, _, ok := strings.Cut(p, " ")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseInt(n, 10, 64)
	return seq, err == nil
}

func (b *sqliteBackend) Unprocessed(ctx context.Context, accountID, after string, limit int) ([]*Message, string, error) {
	var from int64
	if after != "" {
		seq, ok := parseSQLitePosition(after)
		if !ok {
			return nil, "", fmt.Errorf("position %q: malformed", after)
		}
		from = seq
	}
	docs, last, err := b.query(ctx, `SELECT `+msgCols+` FROM messages
		WHERE account_id = ? AND pipeline_done = 0 AND seq > ? ORDER BY seq LIMIT ?`, accountID, from, limitOrAll(limit))
	if err != nil || len(docs) == 0 {
		return nil, "", err
	}
	return docs, sqlitePosition(last, docs[len(docs)-1].ID), nil
}

func (b *sqliteBackend) PipelinePending(ctx context.Context, id string) (bool, error) {
	var n int
	err := b.db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE id = ? AND pipeline_done = 0`, id).Scan(&n)
	return n > 0, err
}

func (b *sqliteBackend) StoredAfter(ctx context.Context, after string, limit int) ([]*Message, string, bool, error) {
	from, ok := parseSQLitePosition(after)
	if !ok {
		err := b.db.Reader().QueryRowContext(ctx, `SELECT seq FROM messages WHERE id = ?`, after).Scan(&from)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, "", false, nil
		}
		if err != nil {
			return nil, "", false, fmt.Errorf("find stored event %s: %w", after, err)
		}
	}
	docs, last, err := b.query(ctx, `SELECT `+msgCols+` FROM messages WHERE seq > ? AND pipeline_done IS NOT 0 ORDER BY seq LIMIT ?`,
		from, limitOrAll(limit))
	if err != nil {
		return nil, "", true, err
	}
	next := ""
	if limit > 0 && len(docs) == limit {
		next = sqlitePosition(last, docs[len(docs)-1].ID)
	}
	return docs, next, true, nil
}

func (b *sqliteBackend) SetMediaArchive(ctx context.Context, id, mediaID string, a MediaArchive, keep func(cur *Message) bool) (*Message, bool, error) {
	var read *Message
	changed, found, err := b.modify(ctx, id, func(cur *Message) bool {
		r := *cur
		read = &r
		if keep(cur) {
			return false
		}
		cur.MediaArchive = &a
		if a.Status == MediaArchived && mediaID != "" {
			cur.MediaID, cur.MediaURL = mediaID, MediaPath(mediaID)
		}
		return true
	})
	if err != nil {
		return nil, false, err
	}
	if !found {
		return nil, false, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	return read, changed, nil
}

func (b *sqliteBackend) MediaRefs(ctx context.Context) ([]MediaRef, error) {
	rows, err := b.db.Reader().QueryContext(ctx,
		`SELECT id, media_id, timestamp, json_extract(doc, '$.mediaArchive.status') FROM messages WHERE media_id <> ''`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var refs []MediaRef
	for rows.Next() {
		var r MediaRef
		var status sql.NullString
		if err := rows.Scan(&r.ID, &r.MediaID, &r.Timestamp, &status); err != nil {
			return nil, err
		}
		r.Archived = status.String == string(MediaArchived)
		refs = append(refs, r)
	}
	return refs, rows.Err()
}

func (b *sqliteBackend) ExpireMedia(ctx context.Context, mediaID string, at time.Time) (int64, error) {
	var n int64
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, `SELECT `+msgCols+` FROM messages WHERE media_id = ?`, mediaID)
		if err != nil {
			return err
		}
		linked, _, err := scanMessages(rows)
		if err != nil {
			return err
		}
		for _, m := range linked {
			m.MediaID, m.MediaURL = "", ""
			if m.MediaArchive == nil {
				m.MediaArchive = &MediaArchive{}
			}
			m.MediaArchive.Status, m.MediaArchive.At = MediaExpired, at
			if err := b.putRow(ctx, tx, m); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func (b *sqliteBackend) MediaMessages(ctx context.Context, accountID string, since int64, kinds []string) ([]*Message, error) {
	q := `SELECT ` + msgColsNoRaw + ` FROM messages WHERE account_id = ? AND has_media = 1`
	args := []any{accountID}
	if since > 0 {
		q, args = q+` AND timestamp >= ?`, append(args, since)
	}
	if len(kinds) > 0 {
		q += ` AND kind IN (?` + strings.Repeat(", ?", len(kinds)-1) + `)`
		for _, k := range kinds {
			args = append(args, k)
		}
	}
	out, _, err := b.query(ctx, q+` ORDER BY sort_key`, args...)
	return out, err
}
