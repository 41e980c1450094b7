package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// PayloadSealer seals what a job's event says before the job is stored and
// opens it when a job is read (encryption at rest: the daemon's is
// messages.EventSealer). Only content changes; ids, kinds and accounts,
// which the outbox filters by, stay as they are.
type PayloadSealer interface {
	SealEvent(ev *event.Event) (*event.Event, error)
	OpenEvent(ev *event.Event) (*event.Event, error)
}

// sealPayload is ev as it is stored.
func (o *Outbox) sealPayload(ev *event.Event) (*event.Event, error) {
	if o.payload == nil {
		return ev, nil
	}
	s, err := o.payload.SealEvent(ev)
	if err != nil {
		return nil, fmt.Errorf("seal event %s: %w", ev.ID, err)
	}
	return s, nil
}

// openingBackend opens the payload of every job its Backend reads.
type openingBackend struct {
	Backend
	p PayloadSealer
}

func (b *openingBackend) open(j *Job) (*Job, error) {
	if j == nil || j.Event == nil {
		return j, nil
	}
	ev, err := b.p.OpenEvent(j.Event)
	if err != nil {
		return nil, fmt.Errorf("job %s: payload: %w", j.ID, err)
	}
	c := *j
	c.Event = ev
	return &c, nil
}

func (b *openingBackend) openAll(js []*Job, err error) ([]*Job, error) {
	if err != nil {
		return nil, err
	}
	for i, j := range js {
		if js[i], err = b.open(j); err != nil {
			return nil, err
		}
	}
	return js, nil
}

func (b *openingBackend) Claim(ctx context.Context, c ClaimRequest) ([]*Job, error) {
	return b.openAll(b.Backend.Claim(ctx, c))
}

func (b *openingBackend) Get(ctx context.Context, id string) (*Job, error) {
	j, err := b.Backend.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return b.open(j)
}

func (b *openingBackend) List(ctx context.Context, f Filter, afterAt time.Time, afterID string, limit int) ([]*Job, error) {
	return b.openAll(b.Backend.List(ctx, f, afterAt, afterID, limit))
}

func (b *openingBackend) Requeue(ctx context.Context, id string, now time.Time) (*Job, error) {
	j, err := b.Backend.Requeue(ctx, id, now)
	if err != nil {
		return nil, err
	}
	return b.open(j)
}

func (b *openingBackend) ensureIndexes(ctx context.Context) error {
	if ix, ok := b.Backend.(interface{ ensureIndexes(context.Context) error }); ok {
		return ix.ensureIndexes(ctx)
	}
	return nil
}

// JobEntries is an engine's jobs as the engine-to-engine copy sees them.
type JobEntries interface {
	Export(ctx context.Context, batch int, fn func([]*Job) error) error
	Import(ctx context.Context, jobs []*Job) error
}

// ReencryptJobs re-seals the payload of every job of jobs with p, whose
// Reseal reports whether a payload was not sealed under the active key
// and returns it sealed under it; it reports how many it rewrote.
func ReencryptJobs(ctx context.Context, jobs JobEntries, reseal func(*event.Event) (*event.Event, bool, error)) (int64, error) {
	var n int64
	err := jobs.Export(ctx, 500, func(js []*Job) error {
		var out []*Job
		for _, j := range js {
			if j.Event == nil {
				continue
			}
			ev, changed, err := reseal(j.Event)
			if err != nil {
				return fmt.Errorf("job %s: %w", j.ID, err)
			}
			if !changed {
				continue
			}
			c := *j
			c.Event = ev
			out = append(out, &c)
		}
		if len(out) == 0 {
			return nil
		}
		n += int64(len(out))
		return jobs.Import(ctx, out)
	})
	if err != nil {
		return n, fmt.Errorf("reencrypt outbox jobs: %w", err)
	}
	return n, nil
}
