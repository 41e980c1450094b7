package rules

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dop251/goja"
)

// BenchmarkAutoReplyRule is the per-event cost of the shipped business-hours
// auto-reply rule through Engine.Handle (event rendered as msg, runtime
// from the pool, deadline guard, ctx.time, kv) next to a raw goja call of an
// empty function on one runtime, measured in the same run. The goal
// is that the rule stage adds under 10 µs per event.
func BenchmarkAutoReplyRule(b *testing.B) {
	for _, bc := range []struct {
		name, now string
		kv        map[string]string
	}{
		// The common path: within opening hours, the rule checks the window
		// and returns.
		{name: "open", now: "2026-01-07T10:00:00+01:00"},
		// After hours and already answered today: one kv read.
		{name: "closed-answered", now: "2026-01-07T20:00:00+01:00",
			kv: map[string]string{"away:acme:15550002222@s.whatsapp.net:2026-01-07": "true"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			now := fixedClock(bc.now)
			kv := NewMemoryKV(now)
			for k, v := range bc.kv {
				if err := kv.Set(b.Context(), "20-business-hours", k, json.RawMessage(v), 0); err != nil {
					b.Fatal(err)
				}
			}
			// A long deadline: on a busy shared machine a 50 ms wall-clock
			// deadline can pass during a scheduling stall, and this measures
			// cost, not deadlines.
			e := New(Options{Globs: []string{"../../scripts/20-business-hours.js"}, Now: now, KV: kv, Timeout: 10 * time.Second})
			if err := e.Reload(); err != nil {
				b.Fatal(err)
			}
			ev := msgEvent("Hello, is the shop open today?")
			if effs, err := e.Handle(b.Context(), ev, nil); err != nil || len(effs) != 0 {
				b.Fatalf("rule did not take the benchmarked path: %v %v", effectsJSON(b, effs), err)
			}

			rt := goja.New()
			v, err := rt.RunString(`(function () {})`)
			if err != nil {
				b.Fatal(err)
			}
			empty, _ := goja.AssertFunction(v)

			b.ReportAllocs()
			b.ResetTimer()
			rawStart := time.Now()
			for range b.N {
				if _, err := empty(goja.Undefined()); err != nil {
					b.Fatal(err)
				}
			}
			raw := time.Since(rawStart)
			ruleStart := time.Now()
			for range b.N {
				if _, err := e.Handle(b.Context(), ev, nil); err != nil {
					b.Fatal(err)
				}
			}
			rule := time.Since(ruleStart)
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(rule.Nanoseconds())/n, "ns/event")
			b.ReportMetric(float64(raw.Nanoseconds())/n, "raw-goja-ns/call")
			b.ReportMetric(0, "ns/op") // the two figures above say it; their sum would only confuse
		})
	}
}
