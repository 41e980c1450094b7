package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// writeRules writes name → source into dir.
func writeRules(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		// Written aside and renamed into place, as editors save: on a loaded
		// machine the watcher could otherwise settle on a truncated file.
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path+".tmp", []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
}

// newEngine loads files from a fresh directory; opts.Globs is set to it.
func newEngine(t testing.TB, files map[string]string, opts Options) (*Engine, string) {
	t.Helper()
	dir := t.TempDir()
	writeRules(t, dir, files)
	opts.Globs = []string{filepath.Join(dir, "*.js")}
	e := New(opts)
	if err := e.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	return e, dir
}

// msgEvent is a message.received event in a direct chat.
func msgEvent(text string) *event.Event {
	return &event.Event{
		ID: "acme:3EB0AA", Kind: event.KindMessageReceived, AccountID: "acme", Source: event.SourcePhone,
		Timestamp: time.Date(2026, 1, 7, 10, 0, 0, 0, time.UTC), ChatID: "15550002222@s.whatsapp.net",
		Message: &event.Message{
			AccountID: "acme", MessageID: "3EB0AA", ChatID: "15550002222@s.whatsapp.net",
			From: "15550002222@s.whatsapp.net", Type: event.TypeText, Text: text, Timestamp: 1767780000, PushName: "Ana",
		},
	}
}

// groupEvent is a message.received event from a group member.
func groupEvent(text string) *event.Event {
	ev := msgEvent(text)
	ev.ChatID, ev.Message.ChatID = "120363025246125244@g.us", "120363025246125244@g.us"
	ev.Message.From, ev.Message.IsGroup = "98765432101234@lid", true
	return ev
}

// recorder is a live Effects that notes each call.
type recorder struct {
	mu    sync.Mutex
	calls []string
	reqs  []*session.SendRequest
}

func (r *recorder) note(s string, req *session.SendRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
	if req != nil {
		r.reqs = append(r.reqs, req)
	}
}

func (r *recorder) Reply(req *session.SendRequest) { r.note("reply "+req.Text, req) }
func (r *recorder) Send(to string, req *session.SendRequest) {
	r.note("send "+to+" "+req.Text, req)
}
func (r *recorder) React(emoji string)         { r.note("react "+emoji, nil) }
func (r *recorder) MarkRead()                  { r.note("markRead", nil) }
func (r *recorder) Drop()                      { r.note("drop", nil) }
func (r *recorder) Tag(tags ...string)         { r.note("tag "+strings.Join(tags, ","), nil) }
func (r *recorder) Annotate(key, value string) { r.note("annotate "+key+"="+value, nil) }
func (r *recorder) Route(sinks ...string)      { r.note("route "+strings.Join(sinks, ","), nil) }

// effectsJSON renders effects as `rules test` prints them, compactly.
func effectsJSON(t testing.TB, effs []Effect) string {
	t.Helper()
	b, err := json.Marshal(effs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logBuffer is a JSON slog logger whose lines tests can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records returns the log lines whose msg is msg.
func (l *logBuffer) records(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func handle(t testing.TB, e *Engine, ev *event.Event) ([]Effect, error) {
	t.Helper()
	return e.Handle(context.Background(), ev, nil)
}

func mustHandle(t testing.TB, e *Engine, ev *event.Event) []Effect {
	t.Helper()
	effs, err := handle(t, e, ev)
	if err != nil {
		t.Fatalf("handle: %v", err)
	}
	return effs
}

func fixedClock(s string) func() time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return func() time.Time { return t }
}
