package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/sdk"
	"github.com/wildcathub/wildcat/sdk/plugintest"
)

// gatedSink is a one-delivery Sink (no DeliverBatch) whose deliveries to
// target "wait" block until released; it counts them in flight.
type gatedSink struct {
	gate chan struct{}

	mu             sync.Mutex
	inFlight, most int
	calls          int
}

func (g *gatedSink) Deliver(ctx context.Context, job *sdk.Job) sdk.Result {
	g.mu.Lock()
	g.calls++
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	switch job.Target {
	case "wait":
		select {
		case <-g.gate:
		case <-ctx.Done():
			return sdk.Retry(ctx.Err())
		}
	case "retry":
		return sdk.Retry(errors.New("busy"))
	case "panic":
		panic("one bad job")
	}
	return sdk.OK()
}

func (g *gatedSink) state() (inFlight, most, calls int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inFlight, g.most, g.calls
}

func jobs(targets ...string) []*sdk.Job {
	out := make([]*sdk.Job, len(targets))
	for i, tg := range targets {
		out[i] = &sdk.Job{ID: fmt.Sprint("j", i), Event: plugintest.TextMessage("x"), Target: tg}
	}
	return out
}

// A Sink without DeliverBatch is served a batch by calling Deliver for each
// job, at most sdk.BatchConcurrency at a time; each job keeps its own
// outcome, a panicking one included.
func TestBatchWithoutBatchSinkCallsDeliverBounded(t *testing.T) {
	g := &gatedSink{gate: make(chan struct{})}
	h := plugintest.Start(t, g)
	const n = 3 * sdk.BatchConcurrency
	targets := make([]string, n)
	for i := range targets {
		targets[i] = "wait"
	}
	js := jobs(append(targets, "retry", "panic", "ok")...)
	done := make(chan []sdk.Result, 1)
	go func() {
		res, err := h.DeliverBatch(context.Background(), js)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	// Release the waiting jobs one at a time, each time after the bound is
	// full: never more than BatchConcurrency at once.
	for released := 0; released < n; released++ {
		poll.Until(t, 30*time.Second, func() error {
			in, most, _ := g.state()
			if most > sdk.BatchConcurrency {
				t.Fatalf("%d deliveries at once, bound %d", most, sdk.BatchConcurrency)
			}
			if want := min(sdk.BatchConcurrency, n-released); in < want {
				return fmt.Errorf("%d in flight, waiting for %d", in, want)
			}
			return nil
		})
		select {
		case g.gate <- struct{}{}:
		case <-stop:
		}
	}
	res := <-done
	for i := range n {
		if res[i].Outcome != sdk.OutcomeOK {
			t.Fatalf("job %d: %+v", i, res[i])
		}
	}
	if r := res[n]; r.Outcome != sdk.OutcomeRetry || r.Err.Error() != "busy" {
		t.Errorf("retry job: %+v", r)
	}
	if r := res[n+1]; r.Outcome != sdk.OutcomeRetry || !strings.Contains(r.Err.Error(), "one bad job") {
		t.Errorf("panicking job: %+v", r)
	}
	if r := res[n+2]; r.Outcome != sdk.OutcomeOK {
		t.Errorf("ok job: %+v", r)
	}
	if _, most, calls := g.state(); most != sdk.BatchConcurrency || calls != n+3 {
		t.Fatalf("%d calls, %d at most at once; want %d, %d", calls, most, n+3, sdk.BatchConcurrency)
	}
}

// batcher implements DeliverBatch; the SDK hands it the whole batch.
type batcher struct {
	mu    sync.Mutex
	calls []int
}

func (b *batcher) Deliver(ctx context.Context, job *sdk.Job) sdk.Result {
	return sdk.Fail(errors.New("Deliver called: a BatchSink gets batches from a version-2 host"))
}

func (b *batcher) DeliverBatch(ctx context.Context, jobs []*sdk.Job) []sdk.Result {
	b.mu.Lock()
	b.calls = append(b.calls, len(jobs))
	b.mu.Unlock()
	out := make([]sdk.Result, len(jobs))
	for i, j := range jobs {
		if j.Target == "bad" {
			out[i] = sdk.RetryAfter(time.Minute, errors.New("bad target"))
		} else {
			out[i] = sdk.OK()
			out[i].Response = "seen " + j.ID
		}
	}
	return out
}

func TestBatchSinkGetsTheWholeBatch(t *testing.T) {
	b := &batcher{}
	h := plugintest.Start(t, b)
	res, err := h.DeliverBatch(context.Background(), jobs("a", "bad", "c"))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(res[0].Outcome, res[0].Response, res[1].Outcome, res[1].RetryAfter, res[2].Response)
	if want := "okseen j0retry1m0sseen j2"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	if fmt.Sprint(b.calls) != "[3]" {
		t.Fatalf("DeliverBatch calls %v, want one of 3", b.calls)
	}
}

// wrongCount answers too few results: the call fails, so the host retries
// every job of it.
type wrongCount struct{ batcher }

func (w *wrongCount) DeliverBatch(ctx context.Context, jobs []*sdk.Job) []sdk.Result {
	return []sdk.Result{sdk.OK()}
}

func TestBatchSinkWithTooFewResults(t *testing.T) {
	h := plugintest.Start(t, &wrongCount{})
	res, err := h.DeliverBatch(context.Background(), jobs("a", "b"))
	if err == nil || !strings.Contains(err.Error(), "1 results for 2 jobs") {
		t.Fatalf("err %v", err)
	}
	for i, r := range res {
		if r.Outcome != sdk.OutcomeRetry {
			t.Fatalf("job %d: %+v", i, r)
		}
	}
}
