package sim

import (
	"container/heap"
	"context"
	"log/slog"
	"sync"
	"time"
)

// inbox holds what the network has for one account: messages sent to it
// and receipts for its own messages. It outlives sessions, so anything sent
// while the account is offline arrives when it connects, as on WhatsApp.
// Items run in order of due time (then arrival); one that fails (the store
// is down) is retried with backoff, the way WhatsApp redelivers a message
// that was not acknowledged.
type inbox struct {
	log *slog.Logger

	mu    sync.Mutex
	items itemHeap
	seq   uint64
	wake  chan struct{}
}

type item struct {
	due      time.Time
	seq      uint64
	attempts int
	run      func(ctx context.Context, s *Session) error
}

func newInbox(log *slog.Logger) *inbox {
	return &inbox{log: log, wake: make(chan struct{}, 1)}
}

// add queues run to happen no earlier than due.
func (b *inbox) add(due time.Time, run func(ctx context.Context, s *Session) error) {
	b.mu.Lock()
	b.seq++
	heap.Push(&b.items, &item{due: due, seq: b.seq, run: run})
	b.mu.Unlock()
	b.signal()
}

func (b *inbox) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// next pops the first due item, or says how long until one is due (0 when
// the inbox is empty).
func (b *inbox) next(now time.Time) (*item, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.items) == 0 {
		return nil, 0
	}
	if wait := b.items[0].due.Sub(now); wait > 0 {
		return nil, wait
	}
	return heap.Pop(&b.items).(*item), 0
}

func (b *inbox) requeue(it *item, due time.Time) {
	b.mu.Lock()
	it.due = due
	heap.Push(&b.items, it)
	b.mu.Unlock()
}

// run delivers items to s until ctx ends (the session disconnects).
func (b *inbox) run(ctx context.Context, s *Session) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		it, wait := b.next(time.Now())
		if it == nil {
			var tc <-chan time.Time
			if wait > 0 {
				timer.Reset(wait)
				tc = timer.C
			}
			select {
			case <-ctx.Done():
				return
			case <-b.wake:
			case <-tc:
			}
			continue
		}
		if err := it.run(ctx, s); err != nil {
			it.attempts++
			retry := min(time.Duration(1<<min(it.attempts, 6))*100*time.Millisecond, 5*time.Second)
			if ctx.Err() == nil {
				b.log.Warn("sim delivery failed; retrying", slog.Int("attempt", it.attempts), slog.Duration("retry_in", retry), slog.Any("error", err))
			}
			b.requeue(it, time.Now().Add(retry))
		}
	}
}

type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(*item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
