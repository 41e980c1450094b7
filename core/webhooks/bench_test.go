package webhooks_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/webhooks"
	sw "github.com/wildcathub/wildcat/sdk/webhooks"
)

const benchConcurrency = 4

// BenchmarkWebhookDelivery reports deliveries per second to a local
// receiver through the full path — pipeline stage "sink: webhooks", the
// fan-out, the outbox on the embedded store, the dispatcher, the webhook
// plugin process over gRPC, a signed HTTP POST — next to the raw rate of
// the same signed POSTs sent directly by a Go client with the same
// concurrency, in the same run; "sink" is the webhook sink alone (plugin
// call, signing, POST) without the outbox.
func BenchmarkWebhookDelivery(b *testing.B) {
	var received atomic.Int64
	rc := newReceiver(b, func(w http.ResponseWriter, r *http.Request) { received.Add(1); w.WriteHeader(204) })

	b.Run("pipeline", func(b *testing.B) {
		h := newHarness(b, harnessOpts{concurrency: benchConcurrency})
		ep := h.create(rc.URL, nil)
		reg := pipeline.NewRegistry()
		reg.RegisterFanout(webhooks.SinkName, h.reg.Targets)
		eng, err := pipeline.New(pipeline.Options{Registry: reg, Stages: []pipeline.StageConfig{{Name: "hooks", Sink: webhooks.SinkName}}, Enqueuer: h.ob})
		if err != nil {
			b.Fatal(err)
		}
		defer eng.Close(context.Background())
		evs := make([]*event.Event, b.N)
		for i := range evs {
			evs[i] = message("bench", strconv.Itoa(i))
			evs[i].ChatID = fmt.Sprintf("chat%d@s.whatsapp.net", i%64) // chats run in parallel
		}
		start := received.Load()
		b.ResetTimer()
		began := time.Now()
		for _, ev := range evs {
			if err := eng.Submit(context.Background(), ev); err != nil {
				b.Fatal(err)
			}
		}
		pollUntilFn(b, 10*time.Minute, func() error {
			if n := received.Load() - start; n < int64(b.N) {
				return fmt.Errorf("%d of %d delivered", n, b.N)
			}
			return nil
		})
		b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "deliveries/s")
		b.StopTimer()
		_ = ep
	})

	// The sink alone: registry, plugin call over gRPC, signing and the POST,
	// without the outbox's durable claim and completion writes.
	b.Run("sink", func(b *testing.B) {
		h := newHarness(b, harnessOpts{concurrency: benchConcurrency})
		ep := h.create(rc.URL, nil)
		sink := h.reg.Sink()
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		began := time.Now()
		for range benchConcurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= b.N {
						return
					}
					job := &outbox.Job{Target: ep.Target(), Event: message("bench", strconv.Itoa(i)), Attempts: 1}
					if r := sink.Deliver(context.Background(), job); r.Outcome != outbox.OutcomeOK {
						b.Error(r.Err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "deliveries/s")
	})

	b.Run("direct", func(b *testing.B) {
		secret := sw.NewSecret()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency}}
		bodies := make([][]byte, b.N)
		for i := range bodies {
			bodies[i], _ = sw.Render(message("bench", strconv.Itoa(i)))
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		began := time.Now()
		for range benchConcurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= b.N {
						return
					}
					now := time.Now()
					sig, _ := sw.Sign(secret, "bench:"+strconv.Itoa(i), now, bodies[i])
					req, _ := http.NewRequest(http.MethodPost, rc.URL, bytesReader(bodies[i]))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set(sw.HeaderID, "bench:"+strconv.Itoa(i))
					req.Header.Set(sw.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
					req.Header.Set(sw.HeaderSignature, sig)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "deliveries/s")
	})
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
