package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/poll"
)

// chatEvent is event n of chat (a chat-less account event when chat is
// empty). Its id sorts against the enqueue order (z… first), so only the
// jobs' Seq, not their ids, can give their order.
func chatEvent(chat string, n int) *event.Event {
	ev := testEvent(n)
	ev.ID = fmt.Sprintf("acct:%s-z%03d", chat, 999-n)
	ev.ChatID, ev.Message.ChatID = chat, chat
	if chat == "" {
		ev.ID = fmt.Sprintf("acct:none-z%03d", 999-n)
		ev.Kind, ev.Message = event.KindAccountConnected, nil
	}
	return ev
}

func chatItems(target string, chats []string, perChat int) []Item {
	var items []Item
	for _, c := range chats {
		for n := range perChat {
			items = append(items, Item{Event: chatEvent(c, n), Targets: []string{target}})
		}
	}
	return items
}

func claimedIDs(t *testing.T, o *Outbox, target string, ordered bool) []*Job {
	t.Helper()
	jobs, err := o.claimBatch(context.Background(), target, "w", 100, ordered)
	if errors.Is(err, ErrNoJob) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func eventIDs(jobs []*Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.EventID)
	}
	sort.Strings(out)
	return out
}

// An ordered claim takes only the first live job of each chat — of the
// jobs enqueued in one batch, one millisecond, the first enqueued — and
// the next one only once that is delivered or dead-lettered; a retry
// holds its chat back until it comes due. Chat-less events are ordered
// per account. An unordered claim of the same jobs takes them all.
func TestOrderedClaimTakesEachChatsFirstLiveJob(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk, Rand: fixedRand(0)})
		o.setOrdered("o", true)
		chats := []string{"a@s.whatsapp.net", "b@s.whatsapp.net", ""}
		items := chatItems("o", chats, 3)
		items = append(items, chatItems("u", chats, 3)...)
		if err := o.EnqueueBatch(ctx, items); err != nil {
			t.Fatal(err)
		}
		a, b, none := chatEvent(chats[0], 0), chatEvent(chats[1], 0), chatEvent("", 0)
		for _, ev := range []*event.Event{a, b, none} {
			if j := mustGet(t, o, JobID(ev.ID, "o")); j.ChatKey != ChatKey(ev) || j.Seq == 0 {
				t.Fatalf("job of %s: chat key %q seq %d, want %q and a seq", ev.ID, j.ChatKey, j.Seq, ChatKey(ev))
			}
			// An unordered target's jobs skip the order's index.
			if j := mustGet(t, o, JobID(ev.ID, "u")); j.ChatKey != "" || j.Seq != 0 {
				t.Fatalf("job of %s for an unordered target: chat key %q seq %d, want none", ev.ID, j.ChatKey, j.Seq)
			}
		}

		if n := len(claimedIDs(t, o, "u", false)); n != 9 {
			t.Fatalf("unordered claim took %d jobs, want all 9", n)
		}
		first := claimedIDs(t, o, "o", true)
		if got, want := eventIDs(first), eventIDs([]*Job{{EventID: a.ID}, {EventID: b.ID}, {EventID: none.ID}}); !slices.Equal(got, want) {
			t.Fatalf("ordered claim took %v, want each chat's first job %v", got, want)
		}
		if got := claimedIDs(t, o, "o", true); len(got) != 0 {
			t.Fatalf("claimed %v while each chat's first job is processing", eventIDs(got))
		}
		byEvent := map[string]*Job{}
		for _, j := range first {
			byEvent[j.EventID] = j
		}
		// Chat a's first job fails for now, chat b's is delivered, the
		// chat-less one fails for good.
		if err := o.Complete(ctx, byEvent[a.ID], Retry(errors.New("503")), 0); err != nil {
			t.Fatal(err)
		}
		if err := o.Complete(ctx, byEvent[b.ID], OK(), 0); err != nil {
			t.Fatal(err)
		}
		if err := o.Complete(ctx, byEvent[none.ID], Fail(errors.New("410")), 0); err != nil {
			t.Fatal(err)
		}
		next := claimedIDs(t, o, "o", true)
		want := []string{chatEvent(chats[1], 1).ID, chatEvent("", 1).ID}
		if got := eventIDs(next); !slices.Equal(got, eventIDs([]*Job{{EventID: want[0]}, {EventID: want[1]}})) {
			t.Fatalf("after the first round claimed %v, want %v (chat a waits for its retry)", got, want)
		}
		// Chat a's retry comes due: it goes first, alone.
		clk.Set(mustGet(t, o, JobID(a.ID, "o")).RunAt)
		retried := claimedIDs(t, o, "o", true)
		if len(retried) != 1 || retried[0].EventID != a.ID {
			t.Fatalf("claimed %v once the retry came due, want only %s", eventIDs(retried), a.ID)
		}
		if err := o.Complete(ctx, retried[0], OK(), 0); err != nil {
			t.Fatal(err)
		}
		if got := claimedIDs(t, o, "o", true); len(got) != 1 || got[0].EventID != chatEvent(chats[0], 1).ID {
			t.Fatalf("claimed %v after chat a's first job was delivered, want its second", eventIDs(got))
		}
	})
}

// A job made live again (Replay) takes its place in its chat's order:
// jobs after it wait for it again.
func TestOrderedClaimReplayedJobGoesFirst(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		o := s.open(t, Options{Clock: newClock()})
		o.setOrdered("o", true)
		if err := o.EnqueueBatch(ctx, chatItems("o", []string{"a"}, 2)); err != nil {
			t.Fatal(err)
		}
		j := claimedIDs(t, o, "o", true)
		if len(j) != 1 {
			t.Fatalf("claimed %d jobs, want 1", len(j))
		}
		if err := o.Complete(ctx, j[0], Fail(errors.New("400")), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Retry(ctx, j[0].ID); err != nil {
			t.Fatal(err)
		}
		got := claimedIDs(t, o, "o", true)
		if len(got) != 1 || got[0].ID != j[0].ID {
			t.Fatalf("claimed %v after the first job was retried, want it alone", eventIDs(got))
		}
	})
}

// Jobs enqueued before their target was in per-chat order carry no chat
// key and are claimed as if unordered.
func TestOrderedClaimTakesJobsWithoutAChatKeyUnordered(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		o := s.open(t, Options{Clock: newClock()})
		if err := o.EnqueueBatch(ctx, chatItems("o", []string{"a"}, 3)); err != nil {
			t.Fatal(err)
		}
		o.setOrdered("o", true)
		if got := claimedIDs(t, o, "o", true); len(got) != 3 {
			t.Fatalf("claimed %d jobs without chat keys, want all 3", len(got))
		}
	})
}

// gatedSink holds every delivery until the test lets it go, and records
// per chat the order of deliveries and how many were in flight at once.
type gatedSink struct {
	release chan struct{}
	// fail answers the first attempt of these event ids with a retry.
	fail map[string]bool

	mu sync.Mutex
	// waiting counts deliveries waiting for a release; the test takes
	// one off for each it lets go, so it is exact when the test reads it.
	waiting  int
	released map[string]int  // chat key → deliveries let go
	failed   map[string]bool // chat key → a delivery of it was answered with a retry
	inflight map[string]int
	maxPer   map[string]int
	total    int
	order    map[string][]string // chat key → event ids delivered OK
	batches  [][]string          // chat keys of each DeliverBatch
}

func newGatedSink(fail ...string) *gatedSink {
	g := &gatedSink{release: make(chan struct{}), fail: map[string]bool{}, failed: map[string]bool{}, released: map[string]int{}, inflight: map[string]int{},
		maxPer: map[string]int{}, order: map[string][]string{}}
	for _, id := range fail {
		g.fail[id] = true
	}
	return g
}

func (g *gatedSink) Deliver(ctx context.Context, j *Job) Result {
	key := ChatKey(j.Event)
	g.mu.Lock()
	g.inflight[key]++
	g.total++
	g.maxPer[key] = max(g.maxPer[key], g.inflight[key])
	g.waiting++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inflight[key]--
		g.total--
		g.mu.Unlock()
	}()
	select {
	case <-g.release:
	case <-ctx.Done():
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
		return Retry(ctx.Err())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.released[key]++
	if g.fail[j.EventID] && j.Attempts == 1 {
		g.failed[key] = true
		return Retry(errors.New("503"))
	}
	g.order[key] = append(g.order[key], j.EventID)
	return OK()
}

// letOne lets one waiting delivery go.
func (g *gatedSink) letOne() {
	g.release <- struct{}{}
	g.mu.Lock()
	g.waiting--
	g.mu.Unlock()
}

// gatedBatchSink is gatedSink as a BatchSink.
type gatedBatchSink struct{ *gatedSink }

func (g gatedBatchSink) DeliverBatch(ctx context.Context, jobs []*Job) []Result {
	var keys []string
	for _, j := range jobs {
		keys = append(keys, ChatKey(j.Event))
	}
	g.mu.Lock()
	g.batches = append(g.batches, keys)
	g.mu.Unlock()
	out := make([]Result, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = g.Deliver(ctx, j)
		}()
	}
	wg.Wait()
	return out
}

// A target in per-chat order delivers each chat's jobs one at a time, in
// the order they were enqueued, with all its slots busy: while chat a's
// first job waits for its retry, the later jobs of chat a wait too and the
// other chats' jobs are delivered. With a BatchSink, no batch holds two
// jobs of one chat.
func TestDispatcherKeepsPerChatOrder(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			backends(t, func(t *testing.T, s backend) {
				ctx := context.Background()
				clk := newClock()
				o := s.open(t, Options{Clock: clk, Rand: fixedRand(0)})
				const slots, perChat = 4, 5
				chats := []string{"a", "b", "c", "d", "e"}
				head := chatEvent("a", 0).ID
				g := newGatedSink(head)
				var sink Sink = g
				if batch {
					sink = gatedBatchSink{g}
				}
				d := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond})
				d.HandleWith("o", sink, HandleOptions{Concurrency: slots, PerChatOrder: true})
				// Chat by chat, chat a first and a millisecond earlier: an
				// unordered claim of the earliest jobs would take several of
				// chat a's.
				if err := o.EnqueueBatch(ctx, chatItems("o", chats[:1], perChat)); err != nil {
					t.Fatal(err)
				}
				clk.Add(time.Millisecond)
				if err := o.EnqueueBatch(ctx, chatItems("o", chats[1:], perChat)); err != nil {
					t.Fatal(err)
				}
				run(t, d)

				// Let deliveries go wave by wave (a BatchSink's slots come
				// back per batch), each once every slot that can be busy
				// is: one per chat with jobs left, but
				// none of chat a's once its first job failed. (want can
				// be stale only upwards: released and failed are set just
				// after a release.)
				for {
					var want int
					poll.Until(t, waitLimit, func() error {
						g.mu.Lock()
						defer g.mu.Unlock()
						want = 0
						for _, c := range chats {
							key := ChatKey(chatEvent(c, 0))
							if g.released[key] < perChat && !g.failed[key] {
								want++
							}
						}
						for key, n := range g.maxPer {
							if n > 1 {
								t.Fatalf("chat %q had %d deliveries in flight at once", key, n)
							}
						}
						if want = min(want, slots); g.waiting != want {
							return fmt.Errorf("%d deliveries waiting, want %d", g.waiting, want)
						}
						return nil
					})
					if want == 0 {
						break
					}
					for range want {
						g.letOne()
					}
				}
				others := (len(chats) - 1) * perChat
				poll.Until(t, waitLimit, func() error {
					if n := countState(t, o, "o", StateDone); n != others {
						return fmt.Errorf("%d of %d done", n, others)
					}
					return nil
				})
				// Chat a: its first job waits for its retry, the rest never ran.
				if j := mustGet(t, o, JobID(head, "o")); j.State != StatePending || j.Attempts != 1 {
					t.Fatalf("chat a's first job: %s after %d attempts, want pending after 1", j.State, j.Attempts)
				}
				for n := 1; n < perChat; n++ {
					if j := mustGet(t, o, JobID(chatEvent("a", n).ID, "o")); j.State != StatePending || j.Attempts != 0 {
						t.Fatalf("chat a's job %d: %s after %d attempts, want pending and untried behind the first", n, j.State, j.Attempts)
					}
				}
				// The retry comes due: chat a drains, in order.
				clk.Add(time.Hour)
				close(g.release)
				poll.Until(t, waitLimit, func() error {
					if n := countState(t, o, "o", StateDone); n != len(chats)*perChat {
						return fmt.Errorf("%d of %d done", n, len(chats)*perChat)
					}
					return nil
				})

				g.mu.Lock()
				defer g.mu.Unlock()
				for _, c := range chats {
					key := ChatKey(chatEvent(c, 0))
					var want []string
					for n := range perChat {
						want = append(want, chatEvent(c, n).ID)
					}
					if got := g.order[key]; !slices.Equal(got, want) {
						t.Errorf("chat %s delivered %v, want %v", c, got, want)
					}
					if g.maxPer[key] != 1 {
						t.Errorf("chat %s had %d deliveries in flight at once, want 1", c, g.maxPer[key])
					}
				}
				for _, b := range g.batches {
					if len(slices.Compact(slices.Sorted(slices.Values(b)))) != len(b) {
						t.Errorf("a batch holds two jobs of one chat: %s", strings.Join(b, ","))
					}
				}
				if batch && len(g.batches) == 0 {
					t.Error("the BatchSink got no batch")
				}
			})
		})
	}
}

// Without per-chat order a failing job holds nothing back: the later jobs
// of its chat are delivered while it waits for its retry.
func TestDispatcherUnorderedTargetIsNotHeldBack(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		clk := newClock()
		o := s.open(t, Options{Clock: clk, Rand: fixedRand(0)})
		const perChat = 5
		if err := o.EnqueueBatch(ctx, chatItems("u", []string{"a"}, perChat)); err != nil {
			t.Fatal(err)
		}
		head := chatEvent("a", 0).ID
		g := newGatedSink(head)
		close(g.release)
		d := NewDispatcher(o, DispatcherOptions{PollInterval: 10 * time.Millisecond})
		d.HandleWith("u", g, HandleOptions{Concurrency: 2})
		run(t, d)
		poll.Until(t, waitLimit, func() error {
			if n := countState(t, o, "u", StateDone); n != perChat-1 {
				return fmt.Errorf("%d of %d done", n, perChat-1)
			}
			return nil
		})
		if j := mustGet(t, o, JobID(head, "u")); j.State != StatePending || j.Attempts != 1 {
			t.Fatalf("the failing job: %s after %d attempts, want pending after 1", j.State, j.Attempts)
		}
	})
}

// A target in per-chat order takes no handed-over jobs (handoff.go): the
// jobs of one chat stored in one transaction while its slots are free are
// stored pending, not claimed together, and delivered one by one in order.
func TestOrderedTargetTakesNoHandoff(t *testing.T) {
	o, db, cb := handoffOutbox(t, Options{})
	g := newGatedSink()
	close(g.release)
	d := NewDispatcher(o, DispatcherOptions{PollInterval: time.Hour})
	d.HandleWith("o", g, HandleOptions{Concurrency: 8, PerChatOrder: true})
	run(t, d)
	poll.Until(t, waitLimit, func() error {
		if claims, _ := cb.sizes(); len(claims) == 0 {
			return errors.New("no claim yet")
		}
		return nil
	})
	var evs []*event.Event
	for n := range 3 {
		evs = append(evs, chatEvent("a", n))
	}
	storeTx(t, o, db, evs, "o")
	for _, ev := range evs[1:] {
		if j := mustGet(t, o, JobID(ev.ID, "o")); j.Attempts != 0 {
			t.Fatalf("job of %s stored %s after %d attempts, want pending and untried behind the first", ev.ID, j.State, j.Attempts)
		}
	}
	poll.Until(t, waitLimit, func() error {
		if got := countState(t, o, "o", StateDone); got != len(evs) {
			return fmt.Errorf("%d of %d done", got, len(evs))
		}
		return nil
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	key := ChatKey(evs[0])
	if want := []string{evs[0].ID, evs[1].ID, evs[2].ID}; !slices.Equal(g.order[key], want) || g.maxPer[key] != 1 {
		t.Fatalf("delivered %v with up to %d at once, want %v one at a time", g.order[key], g.maxPer[key], want)
	}
}
