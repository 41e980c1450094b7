package outbox

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/store/sqlite"
)

//go:embed schema/*.sql
var schemaFiles embed.FS

// SQLiteSchema is the outbox's tables on the embedded engine; the daemon
// migrates it at open.
var SQLiteSchema = sqlite.SchemaIn("outbox", schemaFiles, "schema")

// sqliteBackend keeps jobs in the table outbox_jobs (schema/). Writes go
// through the group-committing writer, each method one Write, so a claim or
// a completion is atomic without any lock here; reads use the reader pool.
type sqliteBackend struct {
	db *sqlite.DB
}

const jobColumns = `id, event_id, target, account_id, state, attempts, run_at, first_attempt_at, lease_until,
	owner, claim_id, last_error, created_at, updated_at, attempt_log, payload, chat_key, seq`

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(n int64) time.Time { return time.UnixMilli(n).UTC() }

func nullMS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ms(*t), Valid: true}
}

func msPtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMS(n.Int64)
	return &t
}

type scanner interface{ Scan(dest ...any) error }

func scanJob(row scanner) (*Job, error) {
	var (
		j                         Job
		runAt, createdAt, updated int64
		firstAttempt, leaseUntil  sql.NullInt64
		log, payload              string
	)
	if err := row.Scan(&j.ID, &j.EventID, &j.Target, &j.AccountID, &j.State, &j.Attempts, &runAt, &firstAttempt, &leaseUntil,
		&j.Owner, &j.ClaimID, &j.LastError, &createdAt, &updated, &log, &payload, &j.ChatKey, &j.Seq); err != nil {
		return nil, err
	}
	j.RunAt, j.CreatedAt, j.UpdatedAt = fromMS(runAt), fromMS(createdAt), fromMS(updated)
	j.FirstAttemptAt, j.LeaseUntil = msPtr(firstAttempt), msPtr(leaseUntil)
	if err := json.Unmarshal([]byte(log), &j.Log); err != nil {
		return nil, fmt.Errorf("job %s: attempt log: %w", j.ID, err)
	}
	if j.Log == nil {
		j.Log = []Attempt{}
	}
	j.Event = new(event.Event)
	if err := json.Unmarshal([]byte(payload), j.Event); err != nil {
		return nil, fmt.Errorf("job %s: payload: %w", j.ID, err)
	}
	return &j, nil
}

func collectJobs(rows *sql.Rows) ([]*Job, error) {
	defer rows.Close()
	var jobs []*Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// encoded is a job's JSON columns, encoded before the write so the shared
// transaction does not wait for them.
type encoded struct {
	job          *Job
	log, payload []byte
}

func encodeJobs(jobs []*Job) ([]encoded, error) {
	out := make([]encoded, len(jobs))
	for i, j := range jobs {
		log := j.Log
		if log == nil {
			log = []Attempt{}
		}
		l, err := json.Marshal(log)
		if err != nil {
			return nil, fmt.Errorf("job %s: attempt log: %w", j.ID, err)
		}
		p, err := json.Marshal(j.Event)
		if err != nil {
			return nil, fmt.Errorf("job %s: payload: %w", j.ID, err)
		}
		out[i] = encoded{job: j, log: l, payload: p}
	}
	return out, nil
}

func (b *sqliteBackend) Insert(ctx context.Context, jobs []*Job) error {
	enc, err := encodeJobs(jobs)
	if err != nil {
		return err
	}
	return b.db.Write(ctx, func(tx *sql.Tx) error { return b.insertJobs(ctx, tx, enc, nil) })
}

// insertJobs stores jobs in tx; ids already stored are skipped. When
// inserted is not nil, inserted(i) is called for each job the statement
// stored.
func (b *sqliteBackend) insertJobs(ctx context.Context, tx *sql.Tx, jobs []encoded, inserted func(i int)) error {
	for i, e := range jobs {
		j := e.job
		res, err := b.db.Exec(ctx, tx, insertJobSQL, j.ID, j.EventID, j.Target, j.AccountID, string(j.State), j.Attempts, ms(j.RunAt),
			nullMS(j.FirstAttemptAt), nullMS(j.LeaseUntil), j.Owner, j.ClaimID, j.LastError,
			ms(j.CreatedAt), ms(j.UpdatedAt), string(e.log), string(e.payload), j.ChatKey, j.Seq)
		if err != nil {
			return fmt.Errorf("insert %s: %w", j.ID, err)
		}
		if inserted != nil {
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("insert %s: %w", j.ID, err)
			} else if n > 0 {
				inserted(i)
			}
		}
	}
	return nil
}

const insertJobSQL = `INSERT INTO outbox_jobs (` + jobColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`

// claimSQL is a whole claim: the subquery walks outbox_jobs_due for the
// target's earliest due jobs, the UPDATE takes them and returns their ids.
// Parameters: owner, claim id, lease end, now, target, how many.
const claimSQL = `UPDATE outbox_jobs SET
		state = 'processing', owner = ?1, claim_id = ?2, lease_until = ?3, updated_at = ?4,
		attempts = attempts + 1, first_attempt_at = min(coalesce(first_attempt_at, ?4), ?4)
	WHERE id IN (
		SELECT id FROM outbox_jobs WHERE target = ?5 AND due_at <= ?4 ORDER BY due_at LIMIT ?6)
	RETURNING id`

// claimOrderedSQL is claimSQL in per-chat order: a job is taken only if
// no live job of its chat precedes it (outbox_jobs_chat_live answers
// that). The subquery is evaluated before the UPDATE changes a row, and a
// chat's second due job sees its first as live (pending), so one claim
// never takes two jobs of one chat either.
const claimOrderedSQL = `UPDATE outbox_jobs SET
		state = 'processing', owner = ?1, claim_id = ?2, lease_until = ?3, updated_at = ?4,
		attempts = attempts + 1, first_attempt_at = min(coalesce(first_attempt_at, ?4), ?4)
	WHERE id IN (
		SELECT j.id FROM outbox_jobs j WHERE j.target = ?5 AND j.due_at <= ?4
			AND (j.chat_key = '' OR NOT EXISTS (
				SELECT 1 FROM outbox_jobs e WHERE e.target = j.target AND e.chat_key = j.chat_key
					AND e.due_at IS NOT NULL AND e.chat_key <> '' AND (e.seq, e.id) < (j.seq, j.id)))
		ORDER BY j.due_at LIMIT ?6)
	RETURNING id`

// claimedSQL reads the jobs a claim took (ids as a JSON array, claim id).
const claimedSQL = `SELECT ` + jobColumns + ` FROM outbox_jobs
	WHERE id IN (SELECT value FROM json_each(?1)) AND claim_id = ?2`

// Claim takes the jobs in the one writer's transaction but reads them
// (payloads and all) from the reader pool after the commit, so the writer
// every event waits for only updates rows.
func (b *sqliteBackend) Claim(ctx context.Context, c ClaimRequest) ([]*Job, error) {
	var ids []string
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		ids = ids[:0] // a retried transaction starts over
		q := claimSQL
		if c.Ordered {
			q = claimOrderedSQL
		}
		rows, err := b.db.Query(ctx, tx, q, c.Owner, c.ClaimID, ms(c.LeaseUntil), ms(c.Now), c.Target, c.Max)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	js, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rows, err := b.db.Read(ctx, claimedSQL, string(js), c.ClaimID)
	if err != nil {
		return nil, fmt.Errorf("read claimed jobs: %w", err)
	}
	jobs, err := collectJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("read claimed jobs: %w", err)
	}
	sort.Slice(jobs, func(i, k int) bool {
		if !jobs[i].RunAt.Equal(jobs[k].RunAt) {
			return jobs[i].RunAt.Before(jobs[k].RunAt)
		}
		return jobs[i].ID < jobs[k].ID
	})
	return jobs, nil
}

func (b *sqliteBackend) Extend(ctx context.Context, id, claimID string, leaseUntil time.Time) error {
	var n int64
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := b.db.Exec(ctx, tx, `UPDATE outbox_jobs SET lease_until = ?
			WHERE id = ? AND claim_id = ? AND state = 'processing'`, ms(leaseUntil), id, claimID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Finish settles every job in one Write: one transaction, each UPDATE
// guarded by the claim that holds the job.
// finishSQL settles one job while its claim holds it.
const finishSQL = `UPDATE outbox_jobs SET
		state = ?, run_at = ?, last_error = ?, attempt_log = ?, updated_at = ?, lease_until = NULL
	WHERE id = ? AND claim_id = ? AND state = 'processing'`

func (b *sqliteBackend) Finish(ctx context.Context, settle []Settlement) []error {
	errs := make([]error, len(settle))
	logs := make([][]byte, len(settle))
	for i, s := range settle {
		l, err := json.Marshal(s.Log)
		if err != nil {
			errs[i] = fmt.Errorf("attempt log: %w", err)
		}
		logs[i] = l
	}
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		for i, s := range settle {
			if errs[i] != nil {
				continue
			}
			res, err := b.db.Exec(ctx, tx, finishSQL, string(s.State), ms(s.RunAt), s.LastError, string(logs[i]), ms(s.UpdatedAt), s.ID, s.ClaimID)
			if err != nil {
				return fmt.Errorf("settle %s: %w", s.ID, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				errs[i] = ErrLeaseLost
			}
		}
		return nil
	})
	if err != nil {
		for i := range errs {
			if errs[i] == nil || errors.Is(errs[i], ErrLeaseLost) {
				errs[i] = err
			}
		}
	}
	return errs
}

func (b *sqliteBackend) Get(ctx context.Context, id string) (*Job, error) {
	j, err := scanJob(b.db.Reader().QueryRowContext(ctx, `SELECT `+jobColumns+` FROM outbox_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return j, err
}

// where is f as a WHERE clause (with a leading "WHERE", or empty) and its
// arguments.
func where(f Filter, extra ...string) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if f.State != "" {
		add("state = ?", string(f.State))
	}
	if f.Target != "" {
		add("target = ?", f.Target)
	}
	if f.EventID != "" {
		add("event_id = ?", f.EventID)
	}
	if f.AccountID != "" {
		add("account_id = ?", f.AccountID)
	}
	if !f.Since.IsZero() {
		add("created_at >= ?", ms(f.Since))
	}
	conds = append(conds, extra...)
	if len(conds) == 0 {
		return "", nil
	}
	return "WHERE " + strings.Join(conds, " AND "), args
}

func (b *sqliteBackend) List(ctx context.Context, f Filter, afterAt time.Time, afterID string, limit int) ([]*Job, error) {
	q, args := listQuery(f, afterAt, afterID, limit)
	rows, err := b.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return collectJobs(rows)
}

func listQuery(f Filter, afterAt time.Time, afterID string, limit int) (string, []any) {
	var extra []string
	if afterID != "" {
		extra = append(extra, "(created_at, id) < (?, ?)")
	}
	w, args := where(f, extra...)
	if afterID != "" {
		args = append(args, ms(afterAt), afterID)
	}
	return `SELECT ` + jobColumns + ` FROM outbox_jobs ` + w + ` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, limit)
}

// requeueSet is the SET clause of Requeue and RequeueMatching; its two
// parameters are now.
const requeueSet = `SET state = 'pending', run_at = ?, updated_at = ?, attempts = 0,
	first_attempt_at = NULL, lease_until = NULL`

func (b *sqliteBackend) Requeue(ctx context.Context, id string, now time.Time) (*Job, error) {
	var j *Job
	var outcome error
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		j, err = scanJob(tx.QueryRow(`UPDATE outbox_jobs `+requeueSet+`
			WHERE id = ? AND state IN ('done', 'deadletter') RETURNING `+jobColumns, ms(now), ms(now), id))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// Nothing moved: missing, or live.
		var state string
		switch err := tx.QueryRow(`SELECT state FROM outbox_jobs WHERE id = ?`, id).Scan(&state); {
		case errors.Is(err, sql.ErrNoRows):
			outcome = ErrNotFound
		case err != nil:
			return err
		default:
			outcome = ErrNotRetryable
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if outcome != nil {
		return nil, outcome
	}
	return j, nil
}

func (b *sqliteBackend) RequeueMatching(ctx context.Context, f Filter, now time.Time) (int64, error) {
	w, args := where(f)
	var n int64
	err := b.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE outbox_jobs `+requeueSet+` `+w, append([]any{ms(now), ms(now)}, args...)...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// purgeChunk bounds the rows one purge transaction deletes, so a large
// purge never holds the writer (and everyone's commits) for long. A
// variable so that a test can make chunking visible with few rows.
var purgeChunk = 1000

// purgeSQL deletes one chunk of done jobs last updated before ?1. It
// matches created_at too — implied, as a job is updated after it is
// created — so outbox_jobs_state_created bounds the scan.
const purgeSQL = `DELETE FROM outbox_jobs WHERE rowid IN (
	SELECT rowid FROM outbox_jobs WHERE state = 'done' AND created_at < ?1 AND updated_at < ?1 LIMIT ?2)`

func (b *sqliteBackend) Purge(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := b.db.Write(ctx, func(tx *sql.Tx) error {
			res, err := tx.Exec(purgeSQL, ms(before), purgeChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < int64(purgeChunk) {
			return total, err
		}
	}
}

const (
	statsSQL         = `SELECT state, target, count(*) FROM outbox_jobs GROUP BY state, target`
	oldestPendingSQL = `SELECT min(created_at) FROM outbox_jobs WHERE state = 'pending'`
)

func (b *sqliteBackend) Stats(ctx context.Context) (*Stats, error) {
	r := b.db.Reader()
	rows, err := r.QueryContext(ctx, statsSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	st := &Stats{Depth: map[State]map[string]int{}}
	for rows.Next() {
		var state, target string
		var n int
		if err := rows.Scan(&state, &target, &n); err != nil {
			return nil, err
		}
		st.add(State(state), target, n)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var oldest sql.NullInt64
	if err := r.QueryRowContext(ctx, oldestPendingSQL).Scan(&oldest); err != nil {
		return nil, err
	}
	if oldest.Valid {
		st.OldestPending = fromMS(oldest.Int64)
	}
	return st, nil
}

// EnqueueTx stores the pending jobs of items inside tx — a transaction of
// the caller's own Write on the same database — so they commit together
// with the caller's other statements (the transactional outbox). It is for
// the SQLite engine only (ErrNoTx otherwise). Call the returned wake once
// the Write has returned without error, so this process's dispatchers claim
// the jobs at once. PrepareTx does the same in two steps, with the jobs
// encoded before the Write and handed to the dispatchers without a claim.
func (o *Outbox) EnqueueTx(tx *sql.Tx, items []Item) (wake func(), err error) {
	t, err := o.prepareTx(items, false)
	if err != nil {
		return nil, err
	}
	if err := t.Insert(tx); err != nil {
		return nil, err
	}
	return t.Wake, nil
}

// TxJobs are the jobs of some items, built and encoded ahead of the
// transaction that stores them (PrepareTx): the shared transaction of a
// group commit then spends no time on their encoding. Those a dispatcher
// loop of this process has a free slot for are stored already claimed by
// it and handed over by Wake (see handoff.go).
type TxJobs struct {
	o    *Outbox
	jobs []*Job
	enc  []encoded
	hand []handed
}

// PrepareTx builds and encodes the jobs of items for Insert. It is for
// the SQLite engine only (ErrNoTx otherwise). The caller must end with
// exactly one of Wake (its transaction committed) or Abort (it did not).
func (o *Outbox) PrepareTx(items []Item) (*TxJobs, error) {
	return o.prepareTx(items, true)
}

func (o *Outbox) prepareTx(items []Item, handoff bool) (*TxJobs, error) {
	if o.sql == nil {
		return nil, ErrNoTx
	}
	jobs, plain, err := o.jobsOf(items)
	if err != nil {
		return nil, err
	}
	var hand []handed
	if handoff {
		hand = o.claimForTakers(jobs, plain)
	}
	enc, err := encodeJobs(jobs)
	if err != nil {
		for _, h := range hand {
			h.to.unreserve(1)
		}
		return nil, err
	}
	return &TxJobs{o: o, jobs: jobs, enc: enc, hand: hand}, nil
}

// Insert stores the jobs inside tx, a transaction of the caller's own Write
// on the outbox's database; jobs already stored are left as they are. It
// may be called again in a later transaction if the first one failed.
func (t *TxJobs) Insert(tx *sql.Tx) error {
	if len(t.enc) == 0 {
		return nil
	}
	var inserted func(int)
	if len(t.hand) > 0 {
		at := make(map[int]*handed, len(t.hand))
		for k := range t.hand {
			t.hand[k].inserted = false // a retried transaction starts over
			at[t.hand[k].i] = &t.hand[k]
		}
		inserted = func(i int) {
			if h := at[i]; h != nil {
				h.inserted = true
			}
		}
	}
	// The caller's Write has its own context; the statement is only kept.
	if err := t.o.sql.insertJobs(context.Background(), tx, t.enc, inserted); err != nil {
		return fmt.Errorf("enqueue %d outbox jobs: %w", len(t.jobs), err)
	}
	return nil
}

// Wake hands the jobs stored claimed to their dispatcher loops and tells
// the dispatchers of the others' targets to claim them now. Call it once
// the transaction that inserted them has committed.
func (t *TxJobs) Wake() {
	if len(t.hand) == 0 {
		t.o.notifyJobs(t.jobs)
		return
	}
	claimed := make(map[int]bool, len(t.hand))
	for _, h := range t.hand {
		claimed[h.i] = true
	}
	var rest []*Job
	for i, j := range t.jobs {
		if !claimed[i] {
			rest = append(rest, j)
		}
	}
	t.o.handOver(t.hand)
	t.hand = nil
	t.o.notifyJobs(rest)
}

// Abort gives back the delivery slots PrepareTx reserved, when the
// transaction did not commit.
func (t *TxJobs) Abort() {
	for _, h := range t.hand {
		h.to.unreserve(1)
	}
	t.hand = nil
}

// ErrNoTx: EnqueueTx on an outbox that is not on SQLite; use Enqueue.
var ErrNoTx = errors.New("outbox is not on the SQLite engine")
