package pluginhost

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// BenchmarkPluginRoundTrip measures one inline call to a real plugin process
// (event → protobuf → gRPC over a unix socket with mTLS → SDK → handler →
// actions back, resolved), next to the bare gRPC health check of the same
// process in the same run: the difference is what the protocol and the SDK
// add on top of the transport.
func BenchmarkPluginRoundTrip(b *testing.B) {
	h := start(b, Config{}, func(o *Options) {
		o.Logger = slog.New(slog.DiscardHandler)
		o.HealthInterval = time.Hour // no health checks competing with the measurement
	})
	inst, err := h.p.current()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ev := msg("ping")

	handle := func() error {
		acts, err := h.p.Handle(ctx, ev)
		if err == nil && len(acts) != 1 {
			b.Fatalf("got %d actions", len(acts))
		}
		return err
	}
	health := func() error { return inst.rpc.Health(ctx) }

	b.Run("inline-handle", func(b *testing.B) { latency(b, handle) })
	b.Run("inline-handle-parallel", func(b *testing.B) { throughput(b, handle) })
	b.Run("grpc-health", func(b *testing.B) { latency(b, health) })
	b.Run("grpc-health-parallel", func(b *testing.B) { throughput(b, health) })
}

// latency runs call sequentially and reports p50, p99 and calls/s.
func latency(b *testing.B, call func() error) {
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}

// throughput runs call from GOMAXPROCS×4 goroutines and reports calls/s.
func throughput(b *testing.B, call func() error) {
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}
