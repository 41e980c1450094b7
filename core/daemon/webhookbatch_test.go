package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/core/webhooks"
	sw "github.com/wildcathub/wildcat/sdk/webhooks"
)

// batchReceiver verifies every request's signature and records, per event
// text, how many times it was answered 2xx. It answers 503 until it has
// been sent failUntil distinct events.
type batchReceiver struct {
	*httptest.Server
	secret    string
	failUntil int
	failed    map[string]bool

	mu        sync.Mutex
	requests  int
	arrays    int // requests whose body was a JSON array
	delivered map[string]int
	bad       []string
}

func newBatchReceiver(t *testing.T, secret string, failUntil int) *batchReceiver {
	b := &batchReceiver{secret: secret, failUntil: failUntil, failed: map[string]bool{}, delivered: map[string]int{}}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		defer b.mu.Unlock()
		b.requests++
		if err := sw.Verify(b.secret, r.Header, body); err != nil {
			b.bad = append(b.bad, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var envs []sw.Envelope
		if len(body) > 0 && body[0] == '[' {
			b.arrays++
			if err := json.Unmarshal(body, &envs); err != nil {
				b.bad = append(b.bad, err.Error())
			}
		} else {
			var env sw.Envelope
			if err := json.Unmarshal(body, &env); err != nil {
				b.bad = append(b.bad, err.Error())
			}
			envs = append(envs, env)
		}
		if len(b.failed) < b.failUntil {
			for _, e := range envs {
				b.failed[e.Data.Message.Text] = true
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		for _, e := range envs {
			if e.Type == "message.received" {
				b.delivered[e.Data.Message.Text]++
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *batchReceiver) state() (delivered map[string]int, requests, arrays int, bad []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := map[string]int{}
	for k, v := range b.delivered {
		d[k] = v
	}
	return d, b.requests, b.arrays, append([]string(nil), b.bad...)
}

// Deliveries through the real webhook plugin process in batches, on either
// engine: an endpoint with batch on (set over REST) gets signed JSON arrays
// and fails until every event has been sent to it once — those deliveries
// are retried, and every event reaches it once; the other endpoint, in one
// request per event, is not held up and gets every event exactly once.
func TestWebhookBatchesPartlyFail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		goodSecret := sw.NewSecret()
		good := newBatchReceiver(t, goodSecret, 0)
		const n = 20
		arr := newBatchReceiver(t, "", n) // its secret is known once it is created
		_, c := webhookDaemon(t, func(cfg *config.Config) {
			if e == storetest.MongoDB {
				cfg.MongoDB.URI, cfg.MongoDB.Database = storetest.URI(t), storetest.DatabaseName(t)
			}
			cfg.Outbox.Concurrency = 16
			cfg.Webhooks.Endpoints = []webhooks.Declared{{ID: "good", URL: good.URL, Events: []string{"message.received"}, Secret: goodSecret}}
		}, func(o *daemon.Options) {
			o.OutboxSchedule = &outbox.Schedule{Delays: []time.Duration{20 * time.Millisecond}, Every: 50 * time.Millisecond, MaxAge: time.Minute, MaxRetryAfter: time.Second}
		})
		created := c.must(c.post("/v1/webhooks", fmt.Sprintf(`{"id":"arr","url":%q,"events":["message.received"],"batch":true}`, arr.URL)), 201).json(t)
		if created["batch"] != true {
			t.Fatalf("created: %v", created)
		}
		arr.mu.Lock()
		arr.secret, _ = created["secret"].(string)
		arr.mu.Unlock()
		c.connectSim("demo")
		for i := range n {
			c.inject("demo", fmt.Sprintf(`{"from":"15551234567","text":"batch %02d"}`, i))
		}
		poll.Until(t, time.Minute, func() error {
			for _, r := range []*batchReceiver{good, arr} {
				d, _, _, _ := r.state()
				if len(d) != n {
					return fmt.Errorf("%s: %d of %d events delivered", r.URL, len(d), n)
				}
			}
			return nil
		})
		d, requests, arrays, bad := arr.state()
		if len(bad) > 0 {
			t.Fatalf("batch endpoint: bad requests %v", bad)
		}
		if arrays != requests {
			t.Fatalf("batch endpoint: %d of %d requests were arrays", arrays, requests)
		}
		for text, k := range d {
			if k != 1 {
				t.Errorf("batch endpoint: %q accepted %d times", text, k)
			}
		}
		d, requests, arrays, bad = good.state()
		if len(bad) > 0 || arrays != 0 || requests != n {
			t.Fatalf("other endpoint: %d requests (%d arrays) for %d events, bad %v", requests, arrays, n, bad)
		}
		for text, k := range d {
			if k != 1 {
				t.Errorf("other endpoint: %q delivered %d times", text, k)
			}
		}
		// The outbox: every job done; those of the failed requests after a
		// retry, logged per job.
		poll.Until(t, 30*time.Second, func() error {
			jobs := c.deliveries("sink=webhook:arr&limit=100")
			if len(jobs) != n {
				return fmt.Errorf("%d jobs of the batch endpoint, want %d", len(jobs), n)
			}
			for _, j := range jobs {
				last := len(j.Log) - 1
				if j.State != "done" || last < 1 || j.Log[0].Result != "retry" || j.Log[0].Status != http.StatusServiceUnavailable || j.Log[last].Result != "ok" {
					return fmt.Errorf("job %s: %s, log %+v; want a 503 retry, then ok", j.ID, j.State, j.Log)
				}
			}
			for _, j := range c.deliveries("sink=webhook:good&limit=100") {
				if j.State != "done" || len(j.Log) != 1 {
					return fmt.Errorf("job %s: %s, log %+v; want done in one attempt", j.ID, j.State, j.Log)
				}
			}
			return nil
		})
	})
}
