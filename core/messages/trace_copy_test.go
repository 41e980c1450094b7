package messages_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// traceAt is the time the store's clock gives the i-th trace: distinct,
// with milliseconds, so a lost or shifted time shows.
func traceAt(i int) time.Time { return t0.Add(time.Duration(i)*time.Hour + 123*time.Millisecond) }

// storeTraced records messages ids and stores a trace for those in
// traced, the i-th at traceAt(i); it returns the traces by id.
func storeTraced(t *testing.T, s *messages.Store, ids []string, traced map[string]int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range ids {
		ev := msgEvent(event.KindMessageReceived, id, "text of "+id, false)
		if _, err := s.Record(ctx(t), ev); err != nil {
			t.Fatal(err)
		}
		i, ok := traced[id]
		if !ok {
			continue
		}
		messages.SetNow(s, func() time.Time { return traceAt(i) })
		trace := fmt.Sprintf(`{"eventId":%q,"stages":[{"name":"rules","actions":[{"type":"reply","text":"TRACEMARK-%s"}]}]}`, ev.ID, id)
		if err := s.MarkProcessedTraced(ctx(t), ev.ID, []byte(trace)); err != nil {
			t.Fatal(err)
		}
		messages.SetNow(s, time.Now)
		out[id] = trace
	}
	return out
}

func exportTraces(t *testing.T, r messages.TraceRecords, batch int) (all []*messages.TraceRecord, batches int) {
	t.Helper()
	err := r.Export(ctx(t), batch, func(ts []*messages.TraceRecord) error {
		if len(ts) == 0 || len(ts) > batch {
			t.Fatalf("a batch of %d traces, batch size %d", len(ts), batch)
		}
		all = append(all, ts...)
		batches++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all, batches
}

// TestTraceRecordsCopyBetweenEngines: the copy's trace kind carries every
// stored trace, sealed as stored, with its time, onto the messages copied
// to the other engine, where the store reads them as in the source.
func TestTraceRecordsCopyBetweenEngines(t *testing.T) {
	for _, dir := range []struct{ from, to storetest.Engine }{
		{storetest.SQLite, storetest.MongoDB},
		{storetest.MongoDB, storetest.SQLite},
	} {
		t.Run(string(dir.from)+"_to_"+string(dir.to), func(t *testing.T) {
			src, dst := newEnv(t, dir.from), newEnv(t, dir.to)
			keys := sealtest.Ring(t, "", sealtest.Key(t, "k1"))
			src.s.Seal(keys)
			ids := []string{"T0", "T1", "T2", "T3", "T4"}
			traces := storeTraced(t, src.s, ids, map[string]int{"T0": 0, "T2": 2, "T3": 3, "T4": 4})

			// The messages first, as the copy does.
			err := src.s.MessageRecords().Export(ctx(t), 100, func(ms []*messages.Message) error {
				return dst.s.MessageRecords().Import(ctx(t), ms)
			})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := src.s.TraceRecords().Count(ctx(t)); err != nil || n != 4 {
				t.Fatalf("traces in the source: %d (%v), want 4", n, err)
			}
			if n, err := dst.s.TraceRecords().Count(ctx(t)); err != nil || n != 0 {
				t.Fatalf("traces in the target before the copy: %d (%v), want 0", n, err)
			}
			all, batches := exportTraces(t, src.s.TraceRecords(), 3)
			got := make([]string, len(all))
			for i, r := range all {
				got[i] = r.ID
				if !sealing.IsSealedString(r.Trace) {
					t.Fatalf("trace of %s exported opened: %q", r.ID, r.Trace)
				}
			}
			want := []string{messages.DocID("acme", "T0"), messages.DocID("acme", "T2"), messages.DocID("acme", "T3"), messages.DocID("acme", "T4")}
			if !slices.Equal(got, want) || batches != 2 {
				t.Fatalf("exported %v in %d batches, want %v in 2", got, batches, want)
			}
			// A trace whose message the target does not hold is skipped,
			// and makes no message there.
			orphan := &messages.TraceRecord{ID: messages.DocID("acme", "GONE"), Trace: all[0].Trace, At: all[0].At}
			set, err := dst.s.TraceRecords().Import(ctx(t), append(slices.Clone(all), orphan))
			if err != nil || set != 4 {
				t.Fatalf("import: %d set (%v), want 4", set, err)
			}
			if _, err := dst.s.Get(ctx(t), "acme", "GONE"); !errors.Is(err, messages.ErrNotFound) {
				t.Fatalf("the orphan trace made a message: %v", err)
			}
			if n, err := dst.s.TraceRecords().Count(ctx(t)); err != nil || n != 4 {
				t.Fatalf("traces in the target: %d (%v), want 4", n, err)
			}
			// Stored as in the source, byte for byte.
			if copied, _ := exportTraces(t, dst.s.TraceRecords(), 100); !reflect.DeepEqual(copied, all) {
				t.Fatalf("target holds %s, source %s", traceList(copied), traceList(all))
			}

			// Read through the target's store, with the source's keys.
			dst.s.Seal(keys)
			for _, id := range ids {
				trace, at, err := dst.s.Trace(ctx(t), "acme", id)
				want, ok := traces[id]
				if !ok {
					if !errors.Is(err, messages.ErrNoTrace) {
						t.Fatalf("untraced %s in the target: %v, want ErrNoTrace", id, err)
					}
					continue
				}
				_, srcAt, _ := src.s.Trace(ctx(t), "acme", id)
				if err != nil || string(trace) != want || !at.Equal(srcAt) || !at.Equal(traceAt(int(id[1]-'0'))) {
					t.Fatalf("trace of %s in the target: %q at %v (%v), want %q at %v", id, trace, at, err, want, srcAt)
				}
			}
			if m, err := dst.s.Get(ctx(t), "acme", "T2"); err != nil || m.Text != "text of T2" {
				t.Fatalf("traced message in the target: %+v (%v)", m, err)
			}
		})
	}
}

// TestReencryptTraces: after a key rotation the traces under the old key
// (and those stored in the clear) are re-sealed under the new one and read
// without the old key; the messages' own re-encryption keeps them.
func TestReencryptTraces(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		k1, k2 := sealtest.Key(t, "k1"), sealtest.Key(t, "k2")
		v.s.Seal(nil)
		traces := storeTraced(t, v.s, []string{"P1"}, map[string]int{"P1": 1})
		v.s.Seal(sealtest.Ring(t, "", k1))
		for id, tr := range storeTraced(t, v.s, []string{"K1", "K2"}, map[string]int{"K1": 2}) {
			traces[id] = tr
		}
		sealtest.HasPlaintext(t, "the trace stored in the clear", v.rawDump(t), "TRACEMARK-P1")

		// Without k1 the trace sealed under it does not open: what the
		// re-encryption is for.
		v.s.Seal(sealtest.Ring(t, "", k2))
		if _, _, err := v.s.Trace(ctx(t), "acme", "K1"); !errors.Is(err, sealing.ErrUnknownKey) {
			t.Fatalf("trace under k1 read with k2 only: %v, want ErrUnknownKey", err)
		}

		v.s.Seal(sealtest.Ring(t, "k2", k1, k2))
		// The messages' re-encryption rewrites the messages P1, K1, K2 (and
		// on MongoDB must keep their traces).
		if n, _, err := v.s.Reencrypt(ctx(t), 2); err != nil || n != 3 {
			t.Fatalf("Reencrypt = %d messages (%v), want 3", n, err)
		}
		if n, err := v.s.ReencryptTraces(ctx(t), 1); err != nil || n != 2 {
			t.Fatalf("ReencryptTraces = %d (%v), want 2", n, err)
		}
		if n, err := v.s.ReencryptTraces(ctx(t), 1); err != nil || n != 0 {
			t.Fatalf("second ReencryptTraces = %d (%v), want 0", n, err)
		}
		if e == storetest.SQLite {
			if err := v.sql.Vacuum(ctx(t)); err != nil {
				t.Fatal(err)
			}
		}
		sealtest.NoPlaintext(t, "after reencrypt", v.rawDump(t), "TRACEMARK-P1", "TRACEMARK-K1")

		v.s.Seal(sealtest.Ring(t, "", k2))
		for id, at := range map[string]time.Time{"P1": traceAt(1), "K1": traceAt(2)} {
			got, gotAt, err := v.s.Trace(ctx(t), "acme", id)
			if err != nil || string(got) != traces[id] || !gotAt.Equal(at) {
				t.Fatalf("trace of %s with k2 only: %q at %v (%v), want %q at %v", id, got, gotAt, err, traces[id], at)
			}
		}
		if _, _, err := v.s.Trace(ctx(t), "acme", "K2"); !errors.Is(err, messages.ErrNoTrace) {
			t.Fatalf("untraced K2 after reencrypt: %v, want ErrNoTrace", err)
		}
		checkReadable(t, v, "P1", "K1", "K2")
	})
}

// TestReencryptTracesNeedsAKey: like the messages' re-encryption it
// refuses to run with encryption off.
func TestReencryptTracesNeedsAKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		v := newEnv(t, e)
		if _, err := v.s.ReencryptTraces(context.Background(), 10); err == nil {
			t.Fatal("ReencryptTraces with encryption off did not fail")
		}
	})
}

func traceList(ts []*messages.TraceRecord) string {
	out := ""
	for _, r := range ts {
		out += fmt.Sprintf("\n  %s %q %v", r.ID, r.Trace, r.At)
	}
	return out
}
