package wildcat

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// Event is one event as the daemon's pipeline saw it: the same document
// webhooks receive and rules handle.
type Event = event.Event

// EventQuery filters the event stream; empty fields match everything.
type EventQuery struct {
	// Kinds are event kinds or patterns: message.received, message.*.
	Kinds    []string
	Accounts []string
	// Chats are chat kinds: user, group, broadcast, status.
	Chats []string
	// Sources: phone, api, rule, plugin, history.
	Sources  []string
	FromMe   *bool
	HasMedia *bool
	// LastEventID resumes after that event: stored message events since it
	// are sent first, then live ones.
	LastEventID string
	// MaxRetryDelay caps the wait between reconnections (default 30s).
	MaxRetryDelay time.Duration
}

func (q EventQuery) values() url.Values {
	v := url.Values{}
	for k, list := range map[string][]string{"kinds": q.Kinds, "accounts": q.Accounts, "chat": q.Chats, "sources": q.Sources} {
		if len(list) > 0 {
			v.Set(k, strings.Join(list, ","))
		}
	}
	if q.FromMe != nil {
		v.Set("fromMe", strconv.FormatBool(*q.FromMe))
	}
	if q.HasMedia != nil {
		v.Set("hasMedia", strconv.FormatBool(*q.HasMedia))
	}
	return v
}

// Events streams GET /v1/events until ctx ends. When an established
// stream breaks (the daemon restarts, a proxy cuts it) it reconnects, with
// the id of the last event seen as Last-Event-ID, so stored events are not
// missed; it waits between attempts as the server asks (retry:), growing to
// MaxRetryDelay while the daemon cannot be reached. The first connection's
// failure, any refusal (an *Error: bad filter, bad key), and a malformed
// event end the stream: they are yielded as the last error. Cancelling ctx
// ends it without an error.
func (c *Client) Events(ctx context.Context, q EventQuery) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		s := &eventStream{c: c, q: q, last: q.LastEventID, retry: 2 * time.Second, maxRetry: q.MaxRetryDelay}
		if s.maxRetry <= 0 {
			s.maxRetry = 30 * time.Second
		}
		s.run(ctx, yield)
	}
}

type eventStream struct {
	c               *Client
	q               EventQuery
	last            string
	retry, maxRetry time.Duration
}

func (s *eventStream) run(ctx context.Context, yield func(Event, error) bool) {
	connected := false
	delay := s.retry
	for {
		body, err := s.connect(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var apiErr *Error
			// Refusals and a first connection that fails are the caller's
			// to see; a daemon that went away after serving is waited for.
			if !connected || (errors.As(err, &apiErr) && apiErr.Status < 500) {
				yield(Event{}, err)
				return
			}
			if !sleep(ctx, delay) {
				return
			}
			delay = min(delay*2, s.maxRetry)
			continue
		}
		connected = true
		delay = s.retry
		cont, err := s.read(body, yield)
		body.Close()
		if !cont || ctx.Err() != nil {
			return
		}
		if err != nil {
			yield(Event{}, err)
			return
		}
		if !sleep(ctx, s.retry) {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *eventStream) connect(ctx context.Context) (io.ReadCloser, error) {
	h := http.Header{"Accept": {"text/event-stream"}}
	if s.last != "" {
		h.Set("Last-Event-ID", s.last)
	}
	req, err := s.c.newRequest(ctx, request{method: http.MethodGet, path: "/events", query: s.q.values(), header: h})
	if err != nil {
		return nil, err
	}
	resp, err := s.c.http.Do(req)
	if err != nil {
		return nil, &TransportError{Method: http.MethodGet, URL: s.c.base.String(), Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, decodeError(http.MethodGet, "/events", resp)
	}
	return resp.Body, nil
}

// read parses one connection's stream (text/event-stream) until it ends.
// cont is false once the caller stopped iterating; err is a malformed
// event, never the connection ending.
func (s *eventStream) read(body io.Reader, yield func(Event, error) bool) (cont bool, err error) {
	r := bufio.NewReader(body)
	var id, data strings.Builder
	hasID := false
	for {
		line, rerr := r.ReadString('\n')
		if rerr != nil {
			return true, nil // the connection ended: reconnect
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if data.Len() > 0 {
				var ev Event
				if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
					return true, fmt.Errorf("wildcat: event %q: %w", id.String(), err)
				}
				if hasID {
					s.last = id.String()
				}
				if !yield(ev, nil) {
					return false, nil
				}
			}
			id.Reset()
			data.Reset()
			hasID = false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment: keep-alive or a note
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id.Reset()
			id.WriteString(value)
			hasID = true
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms > 0 {
				s.retry = min(time.Duration(ms)*time.Millisecond, s.maxRetry)
			}
		}
	}
}
