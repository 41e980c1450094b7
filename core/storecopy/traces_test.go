package storecopy

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestCopyKeepsTracesThereAndBack: a sealed pipeline trace survives a copy
// from SQLite to MongoDB and back again — the same sealed value, the same
// time, read by the store as it was written — and the report names the
// traces kind.
func TestCopyKeepsTracesThereAndBack(t *testing.T) {
	ctx := context.Background()
	sqliteA, _ := location(t, storetest.SQLite)
	mongoURI, database := location(t, storetest.MongoDB)
	sqliteB, _ := location(t, storetest.SQLite)
	keys := sealtest.Ring(t, "", sealtest.Key(t, "k1"))

	src, err := Open(ctx, sqliteA, OpenOptions{Target: true})
	must(t, err)
	ms := msgStore(src)
	ms.Seal(keys)
	traced := msgEvent(event.KindMessageReceived, "shop", "TR1", "15550001111@s.whatsapp.net", "hi", false, t0)
	plain := msgEvent(event.KindMessageReceived, "shop", "TR2", "15550001111@s.whatsapp.net", "ho", false, t0)
	for _, ev := range []*event.Event{traced, plain} {
		_, err := ms.Record(ctx, ev)
		must(t, err)
	}
	trace := []byte(`{"eventId":"shop:TR1","stages":[{"name":"rules","actions":[{"type":"reply","text":"TRACEMARK-1f2e"}]}]}`)
	must(t, ms.MarkProcessedTraced(ctx, traced.ID, trace))
	must(t, ms.MarkProcessed(ctx, plain.ID))
	_, at, err := ms.Trace(ctx, "shop", "TR1")
	must(t, err)
	if at.IsZero() {
		t.Fatal("the trace was stored without its time")
	}
	stored := exportAll(t, Exporter[*messages.TraceRecord](ms.TraceRecords()))
	if len(stored) != 1 || !sealing.IsSealedString(stored[0].Trace) {
		t.Fatalf("stored traces %+v", stored)
	}
	must(t, src.Close())

	var out bytes.Buffer
	for _, hop := range []struct{ from, to string }{{sqliteA, mongoURI}, {mongoURI, sqliteB}} {
		res, err := Copy(ctx, hop.from, hop.to, OpenOptions{Database: database}, false, NewLines(&out, time.Hour))
		must(t, err)
		var names []string
		for _, k := range res.Kinds {
			names = append(names, k.Name)
			if k.Name == KindTraces && (k.Source != 1 || k.Copied != 1) {
				t.Fatalf("%s → %s: traces %d in the source, %d copied", hop.from, hop.to, k.Source, k.Copied)
			}
		}
		if i := strings.Index(strings.Join(names, ","), KindMessages+","+KindTraces+","); i < 0 {
			t.Fatalf("kinds copied %v: want traces right after messages", names)
		}
		if !strings.Contains(out.String(), "traces: 1 copied") {
			t.Fatalf("progress lines:\n%s", out.String())
		}

		dst, err := Open(ctx, hop.to, OpenOptions{Database: database})
		must(t, err)
		ds := msgStore(dst)
		if got := exportAll(t, Exporter[*messages.TraceRecord](ds.TraceRecords())); !reflect.DeepEqual(got, stored) {
			t.Fatalf("%s holds the traces %+v, want %+v", hop.to, got, stored)
		}
		ds.Seal(keys)
		got, gotAt, err := ds.Trace(ctx, "shop", "TR1")
		if err != nil || !bytes.Equal(got, trace) || !gotAt.Equal(at) {
			t.Fatalf("trace in %s: %q at %v (%v), want %q at %v", hop.to, got, gotAt, err, trace, at)
		}
		if _, _, err := ds.Trace(ctx, "shop", "TR2"); !errors.Is(err, messages.ErrNoTrace) {
			t.Fatalf("untraced message in %s: %v, want ErrNoTrace", hop.to, err)
		}
		must(t, dst.Close())
	}
}
