package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
)

// slowReceiver is a webhook endpoint that takes its time over every
// request and records the webhook-id of each, with the event id in the body.
type slowReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	seen     map[string]int // webhook-id → deliveries
	mismatch []string
}

func newSlowReceiver(t *testing.T, delay time.Duration) *slowReceiver {
	r := &slowReceiver{seen: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var env struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &env)
		time.Sleep(delay) // the slow receiver under test, not synchronisation
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		r.seen[id]++
		if env.Data.ID != id {
			r.mismatch = append(r.mismatch, fmt.Sprintf("webhook-id %s carries event %s", id, env.Data.ID))
		}
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *slowReceiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// kill sends SIGKILL: no shutdown code runs.
func (p *daemonProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	_ = p.cmd.Wait()
}

// TestSIGKILLLosesNoEvent kills the real daemon with SIGKILL while 5,000
// sim messages flow through the pipeline to a slow webhook receiver (the
// real webhook plugin, the outbox on the embedded store), restarts it, and
// finds every event delivered at least once — duplicates carrying the same
// event id — and nothing left pending in the outbox or the pipeline.
func TestSIGKILLLosesNoEvent(t *testing.T) {
	const total = 5000
	// Both built without the race detector, whatever this test binary is:
	// 5,000 events through a race-instrumented daemon take minutes, and
	// what is tested here is durability, not data races.
	bin := t.TempDir()
	wildcatdBin, hook := filepath.Join(bin, "wildcatd"), filepath.Join(bin, "webhook")
	for out, pkg := range map[string]string{wildcatdBin: ".", hook: "../../plugins/webhook"} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, b)
		}
	}
	recv := newSlowReceiver(t, 10*time.Millisecond)
	cfg := writeConfig(t, fmt.Sprintf(`data_dir: %s
http: {addr: "127.0.0.1:0"}
accounts: [{id: crash, driver: sim}]
plugins:
  webhook: {path: %s, timeout: 30s}
webhooks:
  allow_private_targets: true
  endpoints: [{id: slow, url: %q, events: [message.received]}]
outbox: {retries: [100ms, 200ms, 500ms], retry_every: 1s, poll_interval: 100ms}
pipeline:
  - {name: hooks, sink: webhooks}
`, t.TempDir(), hook, recv.URL))

	// Injectors post the messages in order, retrying each until it is
	// accepted: across the kill, a message whose answer was lost is sent
	// again with the same id, as WhatsApp redelivers an unacknowledged one.
	var base atomic.Pointer[string]
	var next atomic.Int64
	var accepted atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				body := fmt.Sprintf(`{"from":"+1555%07d","id":"K%05d","text":"message %d"}`, i%50, i, i)
				for {
					select {
					case <-stop:
						return
					default:
					}
					b := base.Load()
					if b == nil {
						time.Sleep(50 * time.Millisecond) // not started yet
						continue
					}
					resp, err := http.Post(*b+"/v1/accounts/crash/sim/inbound", "application/json", strings.NewReader(body))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusCreated {
							accepted.Add(1)
							break
						}
					}
					time.Sleep(50 * time.Millisecond) // the daemon is down or starting: try again
				}
			}
		})
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})

	p := startDaemonBin(t, wildcatdBin, cfg)
	b := p.waitReady(t)
	waitConnected(t, b, "crash")
	base.Store(&b)

	// Kill it in the middle: some events delivered, most not yet stored.
	poll.Until(t, 5*time.Minute, func() error {
		if n := recv.distinct(); n < 500 {
			return fmt.Errorf("%d events delivered so far", n)
		}
		return nil
	})
	p.kill(t)
	t.Logf("killed after %d messages accepted, %d delivered", accepted.Load(), recv.distinct())
	if accepted.Load() >= total {
		t.Fatalf("all %d messages were in before the kill; the test did not kill mid-flow", total)
	}

	p = startDaemonBin(t, wildcatdBin, cfg)
	b = p.waitReady(t)
	base.Store(&b)
	poll.Until(t, 10*time.Minute, func() error {
		if n := recv.distinct(); n < total {
			return fmt.Errorf("%d of %d events delivered (%d accepted)", n, total, accepted.Load())
		}
		return nil
	})
	wg.Wait()

	recv.mu.Lock()
	dups := 0
	for i := 1; i <= total; i++ {
		id := fmt.Sprintf("crash:K%05d", i)
		n := recv.seen[id]
		if n == 0 {
			t.Errorf("event %s never delivered", id)
		}
		dups += n - 1
	}
	if len(recv.seen) != total || len(recv.mismatch) > 0 {
		t.Errorf("%d distinct webhook ids, want %d; mismatches: %v", len(recv.seen), total, recv.mismatch)
	}
	recv.mu.Unlock()
	t.Logf("%d duplicate deliveries (at least once), each with its event id", dups)

	// Nothing left behind: no job pending or in flight, no event queued.
	poll.Until(t, time.Minute, func() error {
		for _, state := range []string{"pending", "processing"} {
			var page struct {
				Deliveries []json.RawMessage `json:"deliveries"`
			}
			if err := getJSON(b+"/v1/deliveries?state="+state, &page); err != nil {
				return err
			}
			if len(page.Deliveries) > 0 {
				return fmt.Errorf("%d deliveries still %s", len(page.Deliveries), state)
			}
		}
		var pl struct {
			Queued int `json:"queued"`
		}
		if err := getJSON(b+"/v1/pipeline", &pl); err != nil {
			return err
		}
		if pl.Queued != 0 {
			return fmt.Errorf("%d events still queued in the pipeline", pl.Queued)
		}
		return nil
	})
}

func getJSON(url string, into any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

func waitConnected(t testing.TB, base, id string) {
	t.Helper()
	poll.Until(t, time.Minute, func() error {
		var a struct {
			State string `json:"state"`
		}
		if err := getJSON(base+"/v1/accounts/"+id, &a); err != nil {
			return err
		}
		if a.State != "connected" {
			return fmt.Errorf("account %s is %s", id, a.State)
		}
		return nil
	})
}
