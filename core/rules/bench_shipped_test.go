package rules

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// BenchmarkShippedRules is the rules stage of the end-to-end benchmark
// (core/daemon BenchmarkEndToEnd) on its own: every shipped rule
// (scripts/*.js) with the rules stage's config from the shipped
// config.yaml, business hours open around the clock as there, on the
// received text the e2e bench injects ("is my order N ready?", one of 500
// senders). The keyword router tags and routes it; the flood limiter
// counts the sender in kv: in memory (memory-kv, the rules' own cost), or
// in the embedded engine's rule_kv table as in the daemon (sqlite-kv, one
// write transaction per event; synchronous=NORMAL). The clock moves 10 s
// per event, so each sender's flood window has ended by the time it writes
// again, as at the e2e bench's rate.
func BenchmarkShippedRules(b *testing.B) {
	b.Run("memory-kv", func(b *testing.B) { benchShippedRules(b, nil) })
	b.Run("sqlite-kv", func(b *testing.B) {
		benchShippedRules(b, func(now func() time.Time) KV {
			return NewSQLiteKV(storetest.NewSQLite(b, SQLiteSchema), now)
		})
	})
}

// benchShippedRules runs the shipped rules with the kv newKV makes (nil:
// in memory).
func benchShippedRules(b *testing.B, newKV func(now func() time.Time) KV) {
	e := shippedEngine(b, newKV)
	const senders = 500
	events := make([]*event.Event, senders)
	for i := range events {
		events[i] = e2eLikeEvent(i)
	}
	// Warm up: the pool's runtime, the router's compiled routes.
	effs, err := e.Handle(b.Context(), events[0], nil)
	if err != nil {
		b.Fatal(err)
	}
	var kinds []EffectKind
	for _, ef := range effs {
		kinds = append(kinds, ef.Kind)
	}
	if !slices.Equal(kinds, []EffectKind{EffectTag, EffectRoute}) {
		b.Fatalf("rules did not take the benchmarked path (tag, route): %s", effectsJSON(b, effs))
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := range b.N {
		if _, err := e.Handle(b.Context(), events[i%senders], nil); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time of the whole process (garbage collection included) per
	// event: on a shared machine it varies less than ns/op, which counts
	// the time other processes hold the cores.
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// processCPU is the user and system CPU time the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// shippedEngine loads ../../scripts/*.js with the rules stage config of
// ../../config.yaml, business hours open all day, on a clock that moves
// 10 s per reading of it.
func shippedEngine(b *testing.B, newKV func(now func() time.Time) KV) *Engine {
	b.Helper()
	shipped, err := config.Load(config.Source{Path: filepath.Join("..", "..", "config.yaml")})
	if err != nil {
		b.Fatal(err)
	}
	var stage *config.StageConfig
	for i, st := range shipped.Config.Pipeline {
		if len(st.Rules) > 0 {
			stage = &shipped.Config.Pipeline[i]
		}
	}
	if stage == nil {
		b.Fatal("the shipped config.yaml has no rules stage")
	}
	globs := make([]string, len(stage.Rules))
	for i, g := range stage.Rules {
		globs[i] = filepath.Join("..", "..", g)
	}
	cfg := map[string]map[string]any{}
	for name, v := range stage.Config {
		block, _ := v.(map[string]any)
		if block == nil {
			block = map[string]any{}
		}
		cfg[name] = block
	}
	if hours, ok := cfg["20-business-hours"]; ok {
		hours["hours"] = "daily 00:00-24:00"
	} else {
		b.Fatal("the shipped rules config has no 20-business-hours block")
	}
	var tick atomic.Int64
	start := time.Date(2026, 1, 7, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { return start.Add(time.Duration(tick.Add(1)) * 10 * time.Second) }
	// A long deadline, as in BenchmarkAutoReplyRule: this measures cost.
	for _, block := range cfg {
		block["timeout"] = "10s"
	}
	var kv KV = NewMemoryKV(now)
	if newKV != nil {
		kv = newKV(now)
	}
	e := New(Options{Globs: globs, Config: cfg, Now: now, KV: kv})
	if err := e.Reload(); err != nil {
		b.Fatal(err)
	}
	if n := len(e.Status()); n < 4 {
		b.Fatalf("%d shipped rules loaded, want the 4 of scripts/", n)
	}
	return e
}

// e2eLikeEvent is the text message the e2e bench's sim account receives
// from its i-th sender.
func e2eLikeEvent(i int) *event.Event {
	jid := fmt.Sprintf("1555%07d@s.whatsapp.net", i)
	return &event.Event{
		ID: fmt.Sprintf("e2e:E%09d", i), Kind: event.KindMessageReceived, AccountID: "e2e", Source: event.SourcePhone,
		Timestamp: time.Date(2026, 1, 7, 10, 0, 0, 0, time.UTC), ChatID: jid,
		Message: &event.Message{
			AccountID: "e2e", MessageID: fmt.Sprintf("E%09d", i), ChatID: jid, From: jid,
			Type: event.TypeText, Text: fmt.Sprintf("is my order %d ready?", i%977), Timestamp: 1767780000,
		},
	}
}
