package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Count counts the jobs, every state.
func (j *SQLiteJobs) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := j.b.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM outbox_jobs`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count outbox jobs: %w", err)
	}
	return n, nil
}

// Export hands every job to fn in batches, by id.
func (j *SQLiteJobs) Export(ctx context.Context, batch int, fn func([]*Job) error) error {
	after := ""
	for {
		rows, err := j.b.db.Reader().QueryContext(ctx, `SELECT `+jobColumns+` FROM outbox_jobs WHERE id > ? ORDER BY id LIMIT ?`, after, batch)
		if err != nil {
			return fmt.Errorf("export outbox jobs: %w", err)
		}
		jobs, err := collectJobs(rows)
		if err != nil {
			return fmt.Errorf("export outbox jobs: %w", err)
		}
		if len(jobs) == 0 {
			return nil
		}
		if err := fn(jobs); err != nil {
			return err
		}
		after = jobs[len(jobs)-1].ID
	}
}

var upsertJob = func() string {
	cols := strings.Split(jobColumns, ",")
	set := make([]string, 0, len(cols)-1)
	for _, c := range cols[1:] {
		c = strings.TrimSpace(c)
		set = append(set, c+" = excluded."+c)
	}
	return `INSERT INTO outbox_jobs (` + jobColumns + `) VALUES (?` + strings.Repeat(", ?", len(cols)-1) + `)
		ON CONFLICT (id) DO UPDATE SET ` + strings.Join(set, ", ")
}()

// Import stores the jobs with their ids, replacing stored ones.
func (j *SQLiteJobs) Import(ctx context.Context, jobs []*Job) error {
	enc, err := encodeJobs(jobs)
	if err != nil {
		return err
	}
	err = j.b.db.Write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, upsertJob)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, e := range enc {
			x := e.job
			if _, err := st.ExecContext(ctx, x.ID, x.EventID, x.Target, x.AccountID, string(x.State), x.Attempts, ms(x.RunAt),
				nullMS(x.FirstAttemptAt), nullMS(x.LeaseUntil), x.Owner, x.ClaimID, x.LastError,
				ms(x.CreatedAt), ms(x.UpdatedAt), string(e.log), string(e.payload), x.ChatKey, x.Seq); err != nil {
				return fmt.Errorf("job %s: %w", x.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import outbox jobs: %w", err)
	}
	return nil
}
