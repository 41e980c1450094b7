package daemon

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/store/sqlite"
)

// txProgress is the pipeline's Progress on the embedded engine: an event's
// outbox jobs (every sink stage's, collected by the engine) and its done
// mark are stored in one Write, so they commit together or not at all — one
// group-committed write per event instead of one per sink stage plus one
// for the mark. On MongoDB the pipeline enqueues stage by stage and marks
// through the messages store, as before.
type txProgress struct {
	db       *sqlite.DB
	messages *messages.Store
	outbox   *outbox.Outbox
}

var _ pipeline.ProcessedWithJobs = txProgress{}

func (p txProgress) MarkProcessed(ctx context.Context, eventID string) error {
	return tracedMarks{p.messages}.MarkProcessed(ctx, eventID)
}

// MarkProcessedWithJobs stores the jobs and the mark in one transaction and
// then wakes the jobs' dispatchers, so delivery starts at once.
func (p txProgress) MarkProcessedWithJobs(ctx context.Context, eventID string, reqs []pipeline.EnqueueRequest) error {
	return p.mark(ctx, eventID, nil, nil, reqs)
}

// MarkProcessedWithMarks is MarkProcessedWithJobs that also stores the tags
// and annotations the stages added, in the same transaction.
func (p txProgress) MarkProcessedWithMarks(ctx context.Context, ev *event.Event, tags []string, ann map[string]string, reqs []pipeline.EnqueueRequest) error {
	return p.mark(ctx, ev.ID, tags, ann, reqs)
}

// CheckAnnotations implements pipeline.ProcessedWithMarks.
func (txProgress) CheckAnnotations(ann map[string]string) error {
	return messages.CheckAnnotations(ann)
}

var _ pipeline.ProcessedWithMarks = txProgress{}

func (p txProgress) mark(ctx context.Context, eventID string, tags []string, ann map[string]string, reqs []pipeline.EnqueueRequest) error {
	trace, err := encodeTrace(ctx)
	if err != nil {
		return fmt.Errorf("event %s: %w", eventID, err)
	}
	// The trace and the tags ride on the mark's own UPDATE: no statement
	// of their own.
	done, err := p.messages.PrepareDone(eventID, tags, ann, trace)
	if err != nil {
		return err
	}
	var jobs *outbox.TxJobs
	if len(reqs) > 0 {
		items := make([]outbox.Item, len(reqs))
		for i, r := range reqs {
			items[i] = outbox.Item{Event: r.Event, Targets: r.Targets}
		}
		// Encoded here, not in the transaction every writer of the moment
		// shares. Jobs a dispatcher has a free slot for are stored claimed
		// by it and handed over after the commit: no claim of their own.
		if jobs, err = p.outbox.PrepareTx(items); err != nil {
			return fmt.Errorf("event %s: %w", eventID, err)
		}
	}
	err = p.db.Write(ctx, func(tx *sql.Tx) error {
		if err := done.Tx(ctx, tx); err != nil {
			return err
		}
		if jobs == nil {
			return nil
		}
		return jobs.Insert(tx)
	})
	if jobs != nil {
		if err != nil {
			jobs.Abort()
		} else {
			jobs.Wake()
		}
	}
	return err
}

// tracedMarks is the pipeline's Progress on MongoDB (and txProgress's
// MarkProcessed): the done mark, with the event's trace in the same update
// of the message document.
type tracedMarks struct{ messages *messages.Store }

func (p tracedMarks) MarkProcessed(ctx context.Context, eventID string) error {
	trace, err := encodeTrace(ctx)
	if err != nil {
		return fmt.Errorf("event %s: %w", eventID, err)
	}
	if trace == nil {
		return p.messages.MarkProcessed(ctx, eventID)
	}
	return p.messages.MarkProcessedTraced(ctx, eventID, trace)
}

// encodeTrace is the JSON of the trace the pipeline hands over with the
// done mark; nil without one.
func encodeTrace(ctx context.Context) ([]byte, error) {
	tr := pipeline.TraceFrom(ctx)
	if tr == nil {
		return nil, nil
	}
	b, err := json.Marshal(tr.Snapshot())
	if err != nil {
		return nil, fmt.Errorf("encode pipeline trace: %w", err)
	}
	return b, nil
}

// PurgeTraces clears the pipeline traces older than outbox.retention (the
// hourly trace sweep): a trace is kept as long as the delivered jobs it
// lists are, which the outbox dispatcher purges by the same age.
func (d *Daemon) PurgeTraces(ctx context.Context) (int64, error) {
	return d.messages.PurgeTraces(ctx, time.Now().Add(-d.traceRetention()))
}

func (d *Daemon) purgeTraces(ctx context.Context) {
	n, err := d.PurgeTraces(ctx)
	if err != nil && ctx.Err() == nil {
		d.log.Warn("purging pipeline traces failed", slog.Any("error", err))
	} else if n > 0 {
		d.log.Debug("purged pipeline traces", slog.Int64("count", n))
	}
}

// traceRetention is outbox.retention, with the outbox's default.
func (d *Daemon) traceRetention() time.Duration {
	if r := d.cfg.Outbox.Retention; r > 0 {
		return r
	}
	return 7 * 24 * time.Hour
}
