package outbox

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// backend is one way of storing the outbox under test.
type backend struct {
	// exclusive is MongoDB's exclusive mode: one process owns the schedule,
	// so a second daemon on the same store is not a supported setup.
	exclusive bool
	// open returns a new Outbox on the test's store — a second call models
	// another (or a restarted) daemon on the same database.
	open func(t testing.TB, opts Options) *Outbox
}

// backends runs f once per backend — SQLite, and MongoDB in its shared and
// exclusive modes — each on a fresh database: the conformance suite.
func backends(t *testing.T, f func(t *testing.T, b backend)) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		switch e {
		case storetest.SQLite:
			f(t, sqliteBackendFor(t))
		case storetest.MongoDB:
			for _, m := range []struct {
				name      string
				exclusive bool
			}{{"shared", false}, {"exclusive", true}} {
				t.Run(m.name, func(t *testing.T) { f(t, mongoBackendFor(t, m.exclusive)) })
			}
		default:
			t.Fatalf("no outbox backend for engine %s", e)
		}
	})
}

func sqliteBackendFor(t testing.TB) backend {
	db := storetest.NewSQLite(t, SQLiteSchema)
	return backend{open: func(t testing.TB, opts Options) *Outbox {
		t.Helper()
		o, err := OpenSQLite(db, opts)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}}
}

func mongoBackendFor(t testing.TB, exclusive bool) backend {
	db := storetest.NewDatabase(t)
	return backend{exclusive: exclusive, open: func(t testing.TB, opts Options) *Outbox {
		t.Helper()
		opts.Exclusive = exclusive
		o := open(t, db, opts)
		if err := o.EnsureIndexes(context.Background()); err != nil {
			t.Fatal(err)
		}
		return o
	}}
}

func open(t testing.TB, db *mongo.Database, opts Options) *Outbox {
	t.Helper()
	o, err := Open(context.Background(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func testEvent(i int) *event.Event {
	return &event.Event{
		ID:        fmt.Sprintf("acct:MSG%05d", i),
		Kind:      event.KindMessageReceived,
		AccountID: "acct",
		Timestamp: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		ChatID:    "123@s.whatsapp.net",
		Source:    event.SourcePhone,
		Message: &event.Message{
			AccountID: "acct", MessageID: fmt.Sprintf("MSG%05d", i), ChatID: "123@s.whatsapp.net",
			From: "123@s.whatsapp.net", Type: event.TypeText, Text: fmt.Sprintf("hello %d", i),
		},
		Tags: []string{"t"},
	}
}

func mustEnqueue(t testing.TB, o *Outbox, ev *event.Event, targets ...string) {
	t.Helper()
	if err := o.Enqueue(context.Background(), ev, targets...); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t testing.TB, o *Outbox, id string) *Job {
	t.Helper()
	j, err := o.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// waitLimit bounds a wait for the dispatcher. Generous: MongoDB's shared
// mode on the in-process FerretDB scans the collection per claim, which
// under -race on a loaded machine takes most of a second.
const waitLimit = 2 * time.Minute
