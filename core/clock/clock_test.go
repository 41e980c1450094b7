package clock_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/clock"
	"github.com/wildcathub/wildcat/core/poll"
)

func TestFakeRunsDueTimersWhenMoved(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	var (
		mu  sync.Mutex
		ran []string
	)
	mark := func(name string) func() {
		return func() { mu.Lock(); ran = append(ran, name); mu.Unlock() }
	}
	got := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), ran...) }
	c.AfterFunc(10*time.Second, mark("10s"))
	stopped := c.AfterFunc(5*time.Second, mark("stopped"))
	c.AfterFunc(20*time.Second, mark("20s"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop of a pending timer must report true once")
	}
	if n, ok := c.Next(); !ok || !n.Equal(t0.Add(10*time.Second)) || c.Pending() != 2 {
		t.Fatalf("next %s %v, pending %d", n, ok, c.Pending())
	}
	c.Advance(9 * time.Second)
	if c.Pending() != 2 || len(got()) != 0 {
		t.Fatalf("ran %v before due", got())
	}
	c.Advance(time.Second)
	poll.Until(t, 5*time.Second, func() error {
		if r := got(); len(r) != 1 || r[0] != "10s" {
			return fmt.Errorf("ran so far: %v", r)
		}
		return nil
	})
	if !c.Now().Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("now %s", c.Now())
	}
	c.Set(t0) // never backwards
	if !c.Now().Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("moved backwards to %s", c.Now())
	}
	c.AfterFunc(0, mark("now"))
	c.Advance(time.Hour)
	poll.Until(t, 5*time.Second, func() error {
		if r := got(); len(r) != 3 {
			return fmt.Errorf("ran so far: %v", r)
		}
		return nil
	})
	if c.Pending() != 0 {
		t.Fatalf("%d timers left", c.Pending())
	}
}
