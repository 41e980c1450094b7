package daemon

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/store/sqlite"
)

type sinkFunc func(ctx context.Context, j *outbox.Job) outbox.Result

func (f sinkFunc) Deliver(ctx context.Context, j *outbox.Job) outbox.Result { return f(ctx, j) }

// On the embedded engine an event's outbox jobs and its done mark are one
// transaction: a mark that fails takes the jobs with it, jobs that fail
// take the mark, and once both are stored the jobs' dispatcher is woken
// (its poll is an hour here) and delivers at once.
func TestTxProgressStoresJobsAndMarkTogether(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "wildcat.db"), Sync: sqlite.SyncNormal,
		Schemas: []sqlite.Schema{messages.SQLiteSchema, outbox.SQLiteSchema}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ms := messages.NewSQLite(db, nil)
	ob, err := outbox.OpenSQLite(db, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	delivered := make(chan string, 4)
	disp := outbox.NewDispatcher(ob, outbox.DispatcherOptions{PollInterval: time.Hour})
	disp.Handle("archive", sinkFunc(func(_ context.Context, j *outbox.Job) outbox.Result {
		delivered <- j.ID
		return outbox.OK()
	}), 1)
	dctx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); _ = disp.Run(dctx) }()
	t.Cleanup(func() { stop(); <-ran })

	ev := &event.Event{
		ID: event.MessageEventID("acme", "M1"), Kind: event.KindMessageReceived, AccountID: "acme",
		ChatID: "15550001111@s.whatsapp.net", Source: event.SourcePhone, Timestamp: time.Now().UTC(),
		Message: &event.Message{AccountID: "acme", MessageID: "M1", ChatID: "15550001111@s.whatsapp.net",
			From: "15550001111@s.whatsapp.net", Timestamp: time.Now().Unix(), Type: event.TypeText, Text: "hi"},
	}
	if _, err := ms.Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
	p := txProgress{db: db, messages: ms, outbox: ob}
	reqs := []pipeline.EnqueueRequest{{Event: ev, Targets: []string{"archive", "webhook:a"}}}
	jobID := outbox.JobID(ev.ID, "archive")
	exec := func(q string) {
		t.Helper()
		if err := db.Write(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(q); return err }); err != nil {
			t.Fatal(err)
		}
	}
	nothingStored := func(what string) {
		t.Helper()
		if pending, err := ms.PipelinePending(ctx, ev.ID); err != nil || !pending {
			t.Errorf("%s: event marked processed (pending %v, %v)", what, pending, err)
		}
		for _, target := range reqs[0].Targets {
			if _, err := ob.Get(ctx, outbox.JobID(ev.ID, target)); !errors.Is(err, outbox.ErrNotFound) {
				t.Errorf("%s: job for %s stored (%v)", what, target, err)
			}
		}
	}

	// The mark fails: no job stays.
	exec(`CREATE TRIGGER refuse_mark BEFORE UPDATE OF pipeline_done ON messages BEGIN SELECT RAISE(ABORT, 'mark refused'); END`)
	if err := p.MarkProcessedWithJobs(ctx, ev.ID, reqs); err == nil {
		t.Fatal("MarkProcessedWithJobs succeeded with the mark refused")
	}
	nothingStored("mark refused")
	exec(`DROP TRIGGER refuse_mark`)

	// The second job fails: no job and no mark stay.
	exec(`CREATE TRIGGER refuse_job BEFORE INSERT ON outbox_jobs WHEN NEW.target = 'webhook:a' BEGIN SELECT RAISE(ABORT, 'job refused'); END`)
	if err := p.MarkProcessedWithJobs(ctx, ev.ID, reqs); err == nil {
		t.Fatal("MarkProcessedWithJobs succeeded with a job refused")
	}
	nothingStored("job refused")
	exec(`DROP TRIGGER refuse_job`)
	select {
	case id := <-delivered:
		t.Fatalf("%s delivered though nothing was stored", id)
	case <-time.After(100 * time.Millisecond):
	}

	// Both go in, and the dispatcher delivers without waiting for its poll.
	if err := p.MarkProcessedWithJobs(ctx, ev.ID, reqs); err != nil {
		t.Fatal(err)
	}
	if pending, err := ms.PipelinePending(ctx, ev.ID); err != nil || pending {
		t.Errorf("event still pending (%v)", err)
	}
	if j, err := ob.Get(ctx, outbox.JobID(ev.ID, "webhook:a")); err != nil || j.Event.Message.Text != "hi" {
		t.Errorf("webhook:a job %+v, %v", j, err)
	}
	select {
	case id := <-delivered:
		if id != jobID {
			t.Errorf("delivered %s, want %s", id, jobID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stored job was not delivered: its dispatcher was not woken")
	}

	// An event without jobs is only marked.
	if err := p.MarkProcessedWithJobs(ctx, "acme:none", nil); err != nil {
		t.Fatal(err)
	}
}
