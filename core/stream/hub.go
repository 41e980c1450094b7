// Package stream fans out the events that have been through the pipeline
// to live subscribers (GET /v1/events) and keeps the most recent ones, so a
// client that reconnects with Last-Event-ID resumes without a gap.
//
// Publishing never blocks the pipeline: a subscriber that falls more than
// its buffer behind is cut off (its channel closed) and reconnects from the
// last id it received, which the hub or the message store can replay.
package stream

import (
	"sync"

	"github.com/wildcathub/wildcat/core/event"
)

// Defaults of a Hub.
const (
	DefaultRecent = 10_000
	DefaultBuffer = 1024
)

// Hub is the live event stream of one daemon.
type Hub struct {
	mu     sync.Mutex
	recent []*event.Event // circular, oldest at head
	head   int
	n      int
	index  map[string]uint64 // event id → sequence number, for events in recent
	seq    uint64            // sequence number of the last published event
	subs   map[*Sub]struct{}
	buffer int
}

// New returns a hub remembering the last recent events (≤0: DefaultRecent)
// and giving each subscriber a buffer of buffer events (≤0: DefaultBuffer).
func New(recent, buffer int) *Hub {
	if recent <= 0 {
		recent = DefaultRecent
	}
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{recent: make([]*event.Event, recent), index: map[string]uint64{}, subs: map[*Sub]struct{}{}, buffer: buffer}
}

// Sub is one subscription. C delivers matching events in publishing order;
// it is closed when the subscriber fell behind (Lagged reports true) or
// after Close.
type Sub struct {
	C      <-chan *event.Event
	c      chan *event.Event
	match  func(*event.Event) bool
	lagged bool
	closed bool
	h      *Hub
}

// Lagged reports whether the hub cut the subscription off because its
// reader fell behind. Valid once C is closed.
func (s *Sub) Lagged() bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.lagged
}

// Close ends the subscription; it is idempotent.
func (s *Sub) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.drop(s)
}

func (h *Hub) drop(s *Sub) {
	if s.closed {
		return
	}
	s.closed = true
	delete(h.subs, s)
	close(s.c)
}

// Publish hands ev to every matching subscriber and remembers it. The
// event must not be modified afterwards.
func (h *Hub) Publish(ev *event.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == len(h.recent) {
		old := h.recent[h.head]
		if h.index[old.ID] == h.seq-uint64(h.n)+1 { // not published again since
			delete(h.index, old.ID)
		}
		h.recent[h.head] = ev
		h.head = (h.head + 1) % len(h.recent)
	} else {
		h.recent[(h.head+h.n)%len(h.recent)] = ev
		h.n++
	}
	h.seq++
	// A redelivered event replaces its older position: resuming after it
	// means after its latest publication.
	h.index[ev.ID] = h.seq
	for s := range h.subs {
		if !s.match(ev) {
			continue
		}
		select {
		case s.c <- ev:
		default:
			s.lagged = true
			h.drop(s)
		}
	}
}

// Subscribe registers a subscriber for events that match. With after set
// (a Last-Event-ID), backlog holds the remembered matching events published
// after it and found reports whether it was remembered at all; when it was
// not, the caller replays from the store. Registration and backlog are one
// step: no event falls between them.
func (h *Hub) Subscribe(match func(*event.Event) bool, after string) (sub *Sub, backlog []*event.Event, found bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := make(chan *event.Event, h.buffer)
	sub = &Sub{C: c, c: c, match: match, h: h}
	h.subs[sub] = struct{}{}
	if after == "" {
		return sub, nil, false
	}
	seq, ok := h.index[after]
	if !ok {
		return sub, nil, false
	}
	first := h.seq - uint64(h.n) + 1 // sequence number of recent[head]
	for i := seq - first + 1; i < uint64(h.n); i++ {
		ev := h.recent[(h.head+int(i))%len(h.recent)]
		// Skip an older publication of an event published again later.
		if h.index[ev.ID] != first+i {
			continue
		}
		if match(ev) {
			backlog = append(backlog, ev)
		}
	}
	return sub, backlog, true
}

// Subscribers counts the live subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
