package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/accountid"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/stream"
)

// EventStream is the live stream of events that have been through the
// pipeline (the daemon's stream.Hub).
type EventStream interface {
	Subscribe(match func(*event.Event) bool, after string) (sub *stream.Sub, backlog []*event.Event, found bool)
}

// StoredEvents replays stored message events after a Last-Event-ID the
// live stream no longer remembers; the message store implements it.
type StoredEvents interface {
	EventsAfter(ctx context.Context, after string, limit int) (evs []*event.Event, next string, found bool, err error)
}

type eventRoutes struct {
	hub       EventStream
	stored    StoredEvents
	keepAlive time.Duration
	stopping  <-chan struct{}
}

// streamMatch reads the filters of GET /v1/events: a stage's match, as query
// parameters. Lists are comma-separated. As for a sink stage, the stream
// shows events of every source unless sources is given: a reader cannot
// loop (see pipeline.MatchesEverySource).
func streamMatch(r *http.Request) (*pipeline.Match, error) {
	qs := r.URL.Query()
	if err := onlyParams(qs, "kinds", "accounts", "chat", "sources", "fromMe", "hasMedia", "lastEventId"); err != nil {
		return nil, err
	}
	list := func(name string) []string {
		v := strings.TrimSpace(qs.Get(name))
		if v == "" {
			return nil
		}
		parts := strings.Split(v, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	m := &pipeline.Match{Kinds: list("kinds"), Accounts: list("accounts"), Chat: list("chat"), Sources: list("sources")}
	for i, id := range m.Accounts {
		if id == "*" {
			continue
		}
		if err := accountid.Check(id); err != nil {
			return nil, Invalid(fmt.Sprintf("accounts[%d]", i), "%v", err)
		}
	}
	for _, name := range []string{"fromMe", "hasMedia"} {
		v := qs.Get(name)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, Invalid(name, "must be true or false, got %q", v)
		}
		if name == "fromMe" {
			m.FromMe = &b
		} else {
			m.HasMedia = &b
		}
	}
	if err := pipeline.ValidateMatch(m); err != nil {
		field, _, _ := strings.Cut(err.Error(), ":")
		return nil, Invalid(field, "%s", err.Error())
	}
	return m, nil
}

// stream answers GET /v1/events with Server-Sent Events: one event per
// pipeline event (id: the event id, event: its kind, data: the event as
// JSON). A client reconnecting with Last-Event-ID (or ?lastEventId=, for
// clients that cannot set headers) first gets what it missed: from the
// daemon's memory of recent events, else the stored message events after
// that id. A reader too slow to keep up is disconnected and resumes the
// same way.
func (h *eventRoutes) stream(w http.ResponseWriter, r *http.Request) error {
	match, err := streamMatch(r)
	if err != nil {
		return err
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("event stream: response writer cannot flush")
	}
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("lastEventId")
	}
	// A key limited to accounts sees only their events.
	ctx := r.Context()
	matches := func(ev *event.Event) bool {
		return allowsAccount(ctx, ev.AccountID) && pipeline.MatchesEverySource(match, ev)
	}
	sub, backlog, found := h.hub.Subscribe(matches, after)
	defer sub.Close()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": wildcat event stream\nretry: 2000\n\n")
	flusher.Flush()

	sent := map[string]bool{} // replayed from the store, to skip when they arrive live
	write := func(ev *event.Event) error {
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", ev.ID, ev.Kind, data)
		return err
	}
	switch {
	case found:
		for _, ev := range backlog {
			if err := write(ev); err != nil {
				return nil // the client went away
			}
		}
	case after != "" && h.stored != nil:
		// The resume point itself may still be on its way through the
		// pipeline (its id came from the POST that stored it, not from
		// this stream): when it arrives live it is not "after" itself.
		sent[after] = true
		known, err := h.replayStored(r.Context(), after, matches, sent, write)
		if err != nil {
			fmt.Fprintf(w, ": resume failed: %s\n\n", oneLine(err.Error()))
			return nil
		}
		if !known {
			fmt.Fprintf(w, ": last event id %q is unknown; streaming live events only\n\n", oneLine(after))
		}
	case after != "":
		fmt.Fprintf(w, ": last event id %q is unknown; streaming live events only\n\n", oneLine(after))
	}
	flusher.Flush()

	keepAlive := time.NewTicker(h.keepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-h.stopping:
			// The daemon is stopping: the client reconnects (to another
			// daemon, or this one once it is back) and resumes.
			return nil
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
		case ev, open := <-sub.C:
			if !open {
				// Cut off for falling behind: the client reconnects with
				// the last id it got and resumes from there.
				fmt.Fprint(w, ": reader too slow; reconnect with Last-Event-ID to resume\n\n")
				flusher.Flush()
				return nil
			}
			if sent[ev.ID] {
				delete(sent, ev.ID)
				continue
			}
			if err := write(ev); err != nil {
				return nil
			}
		}
		flusher.Flush()
	}
}

// replayStored writes the stored message events after the id, page by
// page, recording what it sent.
func (h *eventRoutes) replayStored(ctx context.Context, after string, matches func(*event.Event) bool, sent map[string]bool, write func(*event.Event) error) (known bool, err error) {
	pos := after
	for {
		evs, next, found, err := h.stored.EventsAfter(ctx, pos, 500)
		if err != nil {
			return true, err
		}
		if !found {
			return false, nil
		}
		for _, ev := range evs {
			if !matches(ev) {
				continue
			}
			if err := write(ev); err != nil {
				return true, err
			}
			sent[ev.ID] = true
		}
		if next == "" {
			return true, nil
		}
		pos = next
	}
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }
