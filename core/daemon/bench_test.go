package daemon_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session/sim"
)

// arrivals records when each event reached the bench sink.
type arrivals struct {
	mu   sync.Mutex
	at   map[string]time.Time
	n    atomic.Int64
	want atomic.Int64
	all  chan struct{}
}

func (a *arrivals) reset(want int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at = map[string]time.Time{}
	a.n.Store(0)
	a.want.Store(int64(want))
	a.all = make(chan struct{})
}

func (a *arrivals) Deliver(_ context.Context, j *outbox.Job) outbox.Result {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.at[j.EventID]; !dup {
		a.at[j.EventID] = now
		if a.n.Add(1) == a.want.Load() {
			close(a.all)
		}
	}
	return outbox.OK()
}

// BenchmarkPipeline measures the whole path on the store the tests use (the
// embedded engine unless WILDCAT_TEST_MONGODB_URI names a MongoDB): a sim
// message is injected, normalised, stored, run through one inline stage (a
// tag, which is written to the message) and one sink stage (an outbox job,
// claimed, delivered to an in-process sink, completed).
//
//   - throughput: events/s end to end with 16 senders on the daemon's own
//     SQLite database, beside raw SQLite inserting as many message-sized
//     rows in 200-row transactions on the same disk in the same run — the
//     ceiling no durable pipeline here can pass.
//
//   - latency: intake-to-sink p50/p99 with events offered at a fixed rate
//     (1,000/s for 2 s, open loop), and the rate the pipeline kept up: when
//     it is below the offered rate the queue grows and the latency with it,
//     which is what the figures then show.
//
//     make bench   (or: go test -run '^$' -bench Pipeline ./core/daemon/)
func BenchmarkPipeline(b *testing.B) {
	sink := &arrivals{}
	// The daemon's own embedded engine, as `make run` has it (the shared test
	// engine would put the outbox on MongoDB in its multi-daemon mode).
	cfg := testConfig(b, "")
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "tag", Builtin: "tag", Config: map[string]any{"tag": "bench"}, Match: pipeline.Match{Kinds: []string{"message.received"}}},
		{Name: "sink", Sink: "bench", Match: pipeline.Match{Kinds: []string{"message.received"}}},
	}
	d, _ := benchDaemon(b, cfg, daemon.Options{
		NoSignals: true, Sinks: map[string]outbox.Sink{"bench": sink},
		Sim: sim.Options{PairDelay: time.Millisecond, DeliveredDelay: time.Millisecond, ReadDelay: time.Millisecond},
	}, "bench")

	var seq atomic.Int64
	inject := func(ctx context.Context) (string, error) {
		i := seq.Add(1)
		ev, err := d.Sim().Inject(ctx, "bench", &sim.Inbound{
			From: fmt.Sprintf("+1555%07d", i%200), ID: fmt.Sprintf("B%09d", i),
			Text: fmt.Sprintf("bench message %d: is my order %d ready?", i, i%977),
		})
		if err != nil {
			return "", err
		}
		return ev.ID, nil
	}

	b.Run("throughput", func(b *testing.B) {
		n := b.N
		sink.reset(n)
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					if _, err := inject(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		<-sink.all
		took := time.Since(start)
		b.ReportMetric(float64(n)/took.Seconds(), "events/s")
		raw := rawSQLite(b, filepath.Join(b.TempDir(), "raw.db"), n, 16)
		b.ReportMetric(raw.batched, "raw-batched-rows/s")
	})

	b.Run("latency@1000/s", func(b *testing.B) {
		const rate, seconds = 1000, 2
		total := rate * seconds
		// One run whatever b.N is: the figures are percentiles of its
		// events, not a per-iteration cost.
		{
			sink.reset(total)
			sent := make([]time.Time, total)
			ids := make([]string, total)
			var wg sync.WaitGroup
			start := time.Now()
			for i := range total {
				// Open loop: event i is offered at its time whether or not
				// the ones before it are through.
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
				sent[i] = time.Now()
				wg.Go(func() {
					id, err := inject(context.Background())
					if err != nil {
						b.Error(err)
					}
					ids[i] = id
				})
			}
			wg.Wait()
			<-sink.all
			took := time.Since(start)
			lat := make([]time.Duration, total)
			sink.mu.Lock()
			for i, id := range ids {
				lat[i] = sink.at[id].Sub(sent[i])
			}
			sink.mu.Unlock()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[total/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[total*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(total)/took.Seconds(), "kept-events/s")
		}
	})
}

// benchDaemon starts a daemon for a benchmark, waits until it is ready and,
// when account is not empty, creates that sim account and waits until it is
// connected.
func benchDaemon(b *testing.B, cfg config.Config, opts daemon.Options, account string) (*daemon.Daemon, *client) {
	b.Helper()
	d, err := daemon.New(cfg, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	if err := d.Start(); err != nil {
		b.Fatal(err)
	}
	c := &client{t: b, base: "http://" + d.Addr()}
	poll.Until(b, 60*time.Second, func() error { return d.Ready(context.Background()) })
	if account == "" {
		return d, c
	}
	if r := c.post("/v1/accounts", fmt.Sprintf(`{"id":%q,"driver":"sim"}`, account)); r.status != 201 {
		b.Fatalf("create account: %d %s", r.status, r.body)
	}
	c.post("/v1/accounts/"+account+"/connect", "")
	poll.Until(b, 30*time.Second, func() error {
		if st, err := c.state(account); err != nil || st != "connected" {
			return fmt.Errorf("account %s is %q (%v)", account, st, err)
		}
		return nil
	})
	return d, c
}
