package messages

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The SQLite side of the engine-to-engine copy (copy.go).

func (b *sqliteBackend) count(ctx context.Context, table string) (int64, error) {
	var n int64
	if err := b.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	return n, nil
}

func (b *sqliteBackend) CountMessages(ctx context.Context) (int64, error) {
	return b.count(ctx, "messages")
}

// ExportMessages pages through seq, the stored order.
func (b *sqliteBackend) ExportMessages(ctx context.Context, batch int, fn func([]*Message) error) error {
	var after int64
	for {
		rows, err := b.db.Reader().QueryContext(ctx, `SELECT `+msgCols+` FROM messages WHERE seq > ? ORDER BY seq LIMIT ?`, after, batch)
		if err != nil {
			return fmt.Errorf("export messages: %w", err)
		}
		ms, last, err := scanMessages(rows)
		if err != nil {
			return fmt.Errorf("export messages: %w", err)
		}
		if len(ms) == 0 {
			return nil
		}
		if err := fn(ms); err != nil {
			return err
		}
		after = last
	}
}

// upsertMessage writes every column of a message, keeping the seq (the
// stored order) of one already there. An UPDATE, not a REPLACE, so the
// full-text index's triggers see the change.
var upsertMessage = func() string {
	cols := strings.Split(rowCols, ",")
	set := make([]string, 0, len(cols)-1)
	for _, c := range cols[1:] {
		c = strings.TrimSpace(c)
		set = append(set, c+" = excluded."+c)
	}
	return `INSERT INTO messages (` + rowCols + `) VALUES (?` + strings.Repeat(", ?", len(cols)-1) + `)
	ON CONFLICT (id) DO UPDATE SET ` + strings.Join(set, ", ")
}()

func (b *sqliteBackend) ImportMessages(ctx context.Context, ms []*Message) error {
	args := make([][]any, len(ms))
	for i, m := range ms {
		a, err := rowArgs(m)
		if err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		args[i] = a
	}
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, upsertMessage)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, a := range args {
			if _, err := st.ExecContext(ctx, a...); err != nil {
				return fmt.Errorf("message %s: %w", ms[i].ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import messages: %w", err)
	}
	return nil
}

// CountTraces reads the partial index on trace_at (set and cleared with
// the trace), not every message.
func (b *sqliteBackend) CountTraces(ctx context.Context) (int64, error) {
	var n int64
	if err := b.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE trace_at IS NOT NULL AND trace <> ''`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count traces: %w", err)
	}
	return n, nil
}

// ExportTraces pages through the messages' ids.
func (b *sqliteBackend) ExportTraces(ctx context.Context, batch int, fn func([]*TraceRecord) error) error {
	after := ""
	for {
		ts, err := b.traces(ctx, after, batch)
		if err != nil {
			return fmt.Errorf("export traces: %w", err)
		}
		if len(ts) == 0 {
			return nil
		}
		if err := fn(ts); err != nil {
			return err
		}
		after = ts[len(ts)-1].ID
	}
}

// traces reads one page of ExportTraces, its rows closed before the page
// is handed on (a Reencrypt writes it back meanwhile).
func (b *sqliteBackend) traces(ctx context.Context, after string, limit int) ([]*TraceRecord, error) {
	rows, err := b.db.Reader().QueryContext(ctx, `SELECT id, trace, trace_at FROM messages
		WHERE id > ? AND trace <> '' ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ts []*TraceRecord
	for rows.Next() {
		var (
			t  TraceRecord
			at sql.NullInt64
		)
		if err := rows.Scan(&t.ID, &t.Trace, &at); err != nil {
			return nil, err
		}
		t.At = time.UnixMilli(at.Int64).UTC()
		ts = append(ts, &t)
	}
	return ts, rows.Err()
}

func (b *sqliteBackend) ImportTraces(ctx context.Context, ts []*TraceRecord) (int64, error) {
	var set int64
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		set = 0
		st, err := tx.PrepareContext(ctx, `UPDATE messages SET trace = ?, trace_at = ? WHERE id = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, t := range ts {
			res, err := st.ExecContext(ctx, t.Trace, t.At.UnixMilli(), t.ID)
			if err != nil {
				return fmt.Errorf("trace of %s: %w", t.ID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("trace of %s: %w", t.ID, err)
			}
			set += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("import traces: %w", err)
	}
	return set, nil
}

func (b *sqliteBackend) CountChats(ctx context.Context) (int64, error) { return b.count(ctx, "chats") }

// ExportChats pages through the primary key.
func (b *sqliteBackend) ExportChats(ctx context.Context, batch int, fn func([]*Chat) error) error {
	var account, chat string
	for {
		rows, err := b.db.Reader().QueryContext(ctx, `SELECT `+chatCols+` FROM chats
			WHERE (account_id, chat_id) > (?, ?) ORDER BY account_id, chat_id LIMIT ?`, account, chat, batch)
		if err != nil {
			return fmt.Errorf("export chats: %w", err)
		}
		var cs []*Chat
		for rows.Next() {
			c, err := scanChat(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("export chats: %w", err)
			}
			cs = append(cs, c)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("export chats: %w", err)
		}
		if len(cs) == 0 {
			return nil
		}
		if err := fn(cs); err != nil {
			return err
		}
		account, chat = cs[len(cs)-1].AccountID, cs[len(cs)-1].ChatID
	}
}

const upsertChatRow = `INSERT INTO chats (account_id, chat_id, chat_pn, chat_lid, name, is_group, last_message,
		last_activity, unread_count, message_count, activity_key, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (account_id, chat_id) DO UPDATE SET chat_pn = excluded.chat_pn, chat_lid = excluded.chat_lid,
		name = excluded.name, is_group = excluded.is_group, last_message = excluded.last_message,
		last_activity = excluded.last_activity, unread_count = excluded.unread_count,
		message_count = excluded.message_count, activity_key = excluded.activity_key, updated_at = excluded.updated_at`

func (b *sqliteBackend) ImportChats(ctx context.Context, cs []*Chat) error {
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		for _, c := range cs {
			var last any
			if c.LastMessage != nil {
				j, err := json.Marshal(c.LastMessage)
				if err != nil {
					return fmt.Errorf("chat %s: %w", c.ID, err)
				}
				last = string(j)
			}
			if _, err := tx.ExecContext(ctx, upsertChatRow, c.AccountID, c.ChatID, c.ChatPN, c.ChatLID, c.Name, b2i(c.IsGroup),
				last, c.LastActivity, c.UnreadCount, c.MessageCount, c.ActivityKey, c.UpdatedAt.UnixMilli()); err != nil {
				return fmt.Errorf("chat %s: %w", c.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import chats: %w", err)
	}
	return nil
}

func (s *idempotencySQLite) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM idempotency`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count idempotency records: %w", err)
	}
	return n, nil
}

func (s *idempotencySQLite) Export(ctx context.Context, batch int, fn func([]*IdempotencyRecord) error) error {
	after := ""
	for {
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, request_hash, done, status, content_type, location, body, created_at
			FROM idempotency WHERE id > ? ORDER BY id LIMIT ?`, after, batch)
		if err != nil {
			return fmt.Errorf("export idempotency records: %w", err)
		}
		var recs []*IdempotencyRecord
		for rows.Next() {
			r := &IdempotencyRecord{}
			var done, created int64
			if err := rows.Scan(&r.ID, &r.RequestHash, &done, &r.Status, &r.ContentType, &r.Location, &r.Body, &created); err != nil {
				rows.Close()
				return fmt.Errorf("export idempotency records: %w", err)
			}
			r.Done, r.CreatedAt = done != 0, time.UnixMilli(created).UTC()
			recs = append(recs, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("export idempotency records: %w", err)
		}
		if len(recs) == 0 {
			return nil
		}
		if err := fn(recs); err != nil {
			return err
		}
		after = recs[len(recs)-1].ID
	}
}

func (s *idempotencySQLite) Import(ctx context.Context, recs []*IdempotencyRecord) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		for _, r := range recs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO idempotency (id, request_hash, done, status, content_type, location, body, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET request_hash = excluded.request_hash,
				done = excluded.done, status = excluded.status, content_type = excluded.content_type,
				location = excluded.location, body = excluded.body, created_at = excluded.created_at`,
				r.ID, r.RequestHash, b2i(r.Done), r.Status, r.ContentType, r.Location, r.Body, r.CreatedAt.UnixMilli()); err != nil {
				return fmt.Errorf("record %s: %w", r.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import idempotency records: %w", err)
	}
	return nil
}
