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

// modes runs a test once per claiming strategy.
func modes(t *testing.T, f func(t *testing.T, exclusive bool)) {
	for _, m := range []struct {
		name      string
		exclusive bool
	}{{"shared", false}, {"exclusive", true}} {
		t.Run(m.name, func(t *testing.T) { f(t, m.exclusive) })
	}
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
