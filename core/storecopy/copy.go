// Package storecopy moves an installation's whole state from one store to
// another — SQLite to MongoDB when it outgrows one machine, or back — kind by
// kind (messages, chats, auth state, media, outbox…), so the linked phones
// and the history come along. Each kind is copied through its package's own
// seam (an exporter on the source engine, an importer on the target), in
// batches, preserving ids, so a copy can be interrupted and run again.
package storecopy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTargetNotEmpty means the target already holds data of some kind; run
// again with Force to merge into it (items with the same id are replaced).
var ErrTargetNotEmpty = errors.New("target store is not empty")

// Kind is one sort of stored thing.
type Kind struct {
	Name string
	// Count counts the items in the source (for progress and the report).
	Count func(ctx context.Context) (int64, error)
	// TargetCount counts the items already in the target.
	TargetCount func(ctx context.Context) (int64, error)
	// Copy moves every item, reporting each batch it has written.
	Copy func(ctx context.Context, wrote func(n int)) error
}

// Exporter streams one kind out of a store in batches.
type Exporter[T any] interface {
	Count(ctx context.Context) (int64, error)
	Export(ctx context.Context, batch int, fn func([]T) error) error
}

// Importer writes batches of one kind into a store, keeping their ids;
// writing an item again replaces it.
type Importer[T any] interface {
	Count(ctx context.Context) (int64, error)
	Import(ctx context.Context, items []T) error
}

// BatchSize is how many items travel in one batch.
const BatchSize = 500

// Of builds the Kind that copies src into dst.
func Of[T any](name string, src Exporter[T], dst Importer[T]) Kind {
	return Kind{
		Name:        name,
		Count:       src.Count,
		TargetCount: dst.Count,
		Copy: func(ctx context.Context, wrote func(n int)) error {
			return src.Export(ctx, BatchSize, func(items []T) error {
				if err := dst.Import(ctx, items); err != nil {
					return err
				}
				wrote(len(items))
				return nil
			})
		},
	}
}

// Progress is told how a copy goes. Terminal bars and plain log lines are
// two implementations.
type Progress interface {
	// Start announces a kind and how many items it has.
	Start(kind string, total int64)
	// Add reports n more items of the kind written.
	Add(kind string, n int)
	// Done ends a kind.
	Done(kind string, copied int64, took time.Duration)
	// Wait flushes the display.
	Wait()
}

// Result is what was copied, per kind, in the kinds' order.
type Result struct {
	Kinds []KindResult
}

// KindResult is one kind's count.
type KindResult struct {
	Name   string
	Source int64 // items in the source when the copy began
	Copied int64
	Took   time.Duration
}

// Run copies every kind in order. Unless force, it first checks that the
// target holds nothing of any kind and refuses with ErrTargetNotEmpty.
func Run(ctx context.Context, kinds []Kind, force bool, p Progress) (*Result, error) {
	totals := make([]int64, len(kinds))
	var occupied []string
	for i, k := range kinds {
		n, err := k.Count(ctx)
		if err != nil {
			return nil, fmt.Errorf("count %s in the source: %w", k.Name, err)
		}
		totals[i] = n
		if force {
			continue
		}
		have, err := k.TargetCount(ctx)
		if err != nil {
			return nil, fmt.Errorf("count %s in the target: %w", k.Name, err)
		}
		if have > 0 {
			occupied = append(occupied, fmt.Sprintf("%d %s", have, k.Name))
		}
	}
	if len(occupied) > 0 {
		return nil, fmt.Errorf("%w: it holds %v (use --force to copy into it anyway)", ErrTargetNotEmpty, occupied)
	}
	res := &Result{}
	defer p.Wait()
	for i, k := range kinds {
		p.Start(k.Name, totals[i])
		start := time.Now()
		var copied int64
		err := k.Copy(ctx, func(n int) {
			copied += int64(n)
			p.Add(k.Name, n)
		})
		took := time.Since(start)
		p.Done(k.Name, copied, took)
		res.Kinds = append(res.Kinds, KindResult{Name: k.Name, Source: totals[i], Copied: copied, Took: took})
		if err != nil {
			return res, fmt.Errorf("copy %s (after %d): %w", k.Name, copied, err)
		}
	}
	return res, nil
}
