package stream

import (
	"fmt"
	"slices"
	"testing"

	"github.com/wildcathub/wildcat/core/event"
)

func ev(id string) *event.Event {
	return &event.Event{ID: id, Kind: event.KindMessageReceived, AccountID: "a"}
}

func all(*event.Event) bool { return true }

func ids(evs []*event.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func TestSubscribeResume(t *testing.T) {
	tests := []struct {
		name      string
		recent    int
		published []string
		after     string
		match     func(*event.Event) bool
		backlog   []string
		found     bool
	}{
		{"no last id", 10, []string{"1", "2"}, "", all, []string{}, false},
		{"resume in the middle", 10, []string{"1", "2", "3", "4"}, "2", all, []string{"3", "4"}, true},
		{"resume at the end", 10, []string{"1", "2"}, "2", all, []string{}, true},
		{"unknown id", 10, []string{"1", "2"}, "x", all, []string{}, false},
		{"evicted id", 3, []string{"1", "2", "3", "4", "5"}, "1", all, []string{}, false},
		{"oldest kept id", 3, []string{"1", "2", "3", "4", "5"}, "3", all, []string{"4", "5"}, true},
		{"filtered backlog", 10, []string{"1", "2", "3", "4"}, "1", func(e *event.Event) bool { return e.ID != "3" }, []string{"2", "4"}, true},
		{"republished event resumes after its last publication", 10, []string{"1", "2", "3", "2", "4"}, "2", all, []string{"4"}, true},
		{"republished event is not repeated", 10, []string{"1", "2", "3", "2", "4"}, "1", all, []string{"3", "2", "4"}, true},
		{"republished evicted copy keeps the newer", 3, []string{"1", "2", "1", "3", "4"}, "1", all, []string{"3", "4"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(tt.recent, 10)
			for _, id := range tt.published {
				h.Publish(ev(id))
			}
			sub, backlog, found := h.Subscribe(tt.match, tt.after)
			defer sub.Close()
			if found != tt.found || !slices.Equal(ids(backlog), tt.backlog) {
				t.Fatalf("backlog %v found %v, want %v %v", ids(backlog), found, tt.backlog, tt.found)
			}
			h.Publish(ev("live"))
			if got := <-sub.C; got.ID != "live" {
				t.Fatalf("live event %q", got.ID)
			}
		})
	}
}

func TestSlowSubscriberIsCutOff(t *testing.T) {
	h := New(100, 3)
	slow, _, _ := h.Subscribe(all, "")
	fast, _, _ := h.Subscribe(func(e *event.Event) bool { return e.ID == "9" }, "")
	for i := range 10 {
		h.Publish(ev(fmt.Sprint(i))) // never blocks, whatever the readers do
	}
	var got []string
	for e := range slow.C {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, []string{"0", "1", "2"}) || !slow.Lagged() {
		t.Fatalf("slow subscriber got %v, lagged %v", got, slow.Lagged())
	}
	if e := <-fast.C; e.ID != "9" || fast.Lagged() {
		t.Fatalf("fast subscriber got %q lagged %v", e.ID, fast.Lagged())
	}
	fast.Close()
	fast.Close()
	if _, open := <-fast.C; open {
		t.Fatal("closed subscription still open")
	}
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
}
