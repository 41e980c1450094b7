package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/sdk"
)

// annotations collects the annotate actions of a Handle result:
// annotations(t)(p.Handle(ctx, ev)).
func annotations(t *testing.T) func([]Action, error) map[string]string {
	return func(acts []Action, err error) map[string]string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, a := range acts {
			if a.Kind != ActionAnnotate {
				t.Fatalf("unexpected action %+v", a)
			}
			out[a.Key] = a.Value
		}
		return out
	}
}

func TestConfigureDeliversTheConfigBlock(t *testing.T) {
	cfg := map[string]any{"greeting": "hello", "limits": map[string]any{"perMinute": 10}, "hosts": []any{"a", "b"}, "on": true}
	h := start(t, Config{Config: cfg})
	got := annotations(t)(h.p.Handle(context.Background(), msg("config")))
	var back map[string]any
	if err := json.Unmarshal([]byte(got["config"]), &back); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"greeting": "hello", "limits": map[string]any{"perMinute": float64(10)}, "hosts": []any{"a", "b"}, "on": true}
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("config arrived as %v, want %v", back, want)
	}
	st := h.p.Status()
	if st.State != StateRunning || st.Plugin != "testplugin" || st.Version != "1.2.3" || fmt.Sprint(st.Capabilities) != "[inline sink]" || st.PID == 0 {
		t.Fatalf("status: %+v", st)
	}
}

func TestRejectedConfigFailsStart(t *testing.T) {
	m, err := New(Options{Plugins: map[string]Config{"picky": {Path: bin("testplugin"), Config: map[string]any{"reject": true}}}})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `plugin "picky" rejected its configuration (plugins.picky.config)`) || !strings.Contains(err.Error(), "reject: true is not allowed") {
		t.Fatalf("got %v", err)
	}
	_ = m.Stop(context.Background())
}

func TestInlineActionsConvert(t *testing.T) {
	h := start(t, Config{})
	ev := msg("actions")
	acts, err := h.p.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	want := []Action{
		{Kind: ActionReply, Send: &session.SendRequest{To: ev.ChatID, Source: event.SourcePlugin, Text: "quoted",
			ReplyTo: &session.QuoteRef{MessageID: ev.Message.MessageID, Sender: ev.Message.From, Message: ev.Message}}},
		{Kind: ActionSend, Send: &session.SendRequest{To: "15550002222@s.whatsapp.net", Source: event.SourcePlugin, Text: "hi",
			Mentions: []string{"1@s.whatsapp.net"}, Location: &event.Location{Latitude: 1.5, Longitude: 2.5, Name: "here"}}},
		{Kind: ActionDrop},
		{Kind: ActionTag, Tags: []string{"a", "b"}},
		{Kind: ActionAnnotate, Key: "k", Value: "v"},
		{Kind: ActionRoute, Sinks: []string{"hooks", "archive"}},
	}
	if len(acts) != len(want) {
		t.Fatalf("got %d actions: %+v", len(acts), acts)
	}
	for i := range want {
		if !reflect.DeepEqual(acts[i], want[i]) {
			g, _ := json.Marshal(acts[i])
			w, _ := json.Marshal(want[i])
			t.Errorf("action %d:\n got %s\nwant %s", i, g, w)
		}
	}
	// Kinds the plugin did not ask for are not sent to it.
	qr, _ := event.NewAccountEvent(event.KindAccountQR, "acme", at, event.AccountState{State: event.AccountPairing, QRCode: "2@abc"})
	if acts, err := h.p.Handle(context.Background(), qr); err != nil || acts != nil || h.p.Wants(event.KindAccountQR) {
		t.Fatalf("account.qr: %v %v", acts, err)
	}
}

func TestSinkOutcomes(t *testing.T) {
	h := start(t, Config{})
	ctx := context.Background()
	ev := msg("x")
	tests := []struct {
		target     string
		ok         bool
		retryAfter time.Duration
		permanent  bool
		errText    string
	}{
		{"ok", true, 0, false, ""},
		{"retry", false, 0, false, "busy (job " + ev.ID + ":retry attempt 3)"},
		{"retry-after", false, 42 * time.Second, false, "429"},
		{"fail", false, 0, true, "410 gone"},
	}
	for _, tt := range tests {
		ok, ra, perm, err := h.p.Deliver(ctx, ev, tt.target, 3)
		if ok != tt.ok || ra != tt.retryAfter || perm != tt.permanent || (tt.errText == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.errText)) {
			t.Errorf("%s: got ok=%v retryAfter=%v permanent=%v err=%v", tt.target, ok, ra, perm, err)
		}
	}
	if c := h.p.Status().Calls.Deliver; c.Calls != 4 || c.Errors != 3 {
		t.Fatalf("deliver counters: %+v", c)
	}
	// DeliverWith hands over the target's config and reports the whole
	// answer: status, response, disable.
	r := h.p.DeliverWith(ctx, ev, "gone", 1, []byte(`{"url":"x"}`))
	if r.OK || !r.Permanent || !r.DisableTarget || r.Status != 410 || r.Response != "goodbye" || r.Err == nil || !strings.Contains(r.Err.Error(), `gone: {"url":"x"}`) {
		t.Fatalf("DeliverWith gone: %+v", r)
	}
	if r := h.p.DeliverWith(ctx, ev, "fail", 1, nil); !r.Permanent || r.DisableTarget {
		t.Fatalf("DeliverWith fail: %+v", r)
	}
}

func TestPanicInHandlerIsAnErrorAndThePluginLives(t *testing.T) {
	h := start(t, Config{})
	_, err := h.p.Handle(context.Background(), msg("panic"))
	if !errors.Is(err, sdk.ErrPanicked) || !strings.Contains(err.Error(), "handler exploded") || !strings.Contains(err.Error(), `plugin "tp"`) {
		t.Fatalf("got %v", err)
	}
	if _, err := h.p.Handle(context.Background(), msg("ping")); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
	// The stack is in the daemon's log, under the plugin's name, at error level.
	poll.Until(t, 10*time.Second, func() error {
		for _, line := range strings.Split(h.log.String(), "\n") {
			if strings.Contains(line, `"plugin":"tp"`) && strings.Contains(line, "Handle panicked") &&
				strings.Contains(line, `"level":"ERROR"`) && strings.Contains(line, "goroutine") {
				return nil
			}
		}
		return errors.New("no panic line with stack in the daemon log")
	})
	// Ordinary plugin log lines arrive too, with their fields (through the
	// plugin's stderr, so a moment after its answer).
	poll.Until(t, 10*time.Second, func() error {
		if !strings.Contains(h.log.String(), `"msg":"handling"`) || !strings.Contains(h.log.String(), `"text":"ping"`) {
			return fmt.Errorf("plugin log lines missing:\n%s", h.log.String())
		}
		return nil
	})
	if st := h.p.Status(); st.Restarts != 0 || st.Calls.Handle.Errors != 1 || !strings.Contains(st.LastError, "handler exploded") {
		t.Fatalf("status: %+v", st)
	}
}

func TestCrashMidCallRestartsThePlugin(t *testing.T) {
	h := start(t, Config{})
	ctx := context.Background()
	pid := h.p.Status().PID
	if _, err := h.p.Handle(ctx, msg("crash")); err == nil {
		t.Fatal("a call whose process exited must fail")
	}
	poll.Until(t, 30*time.Second, func() error {
		if st := h.p.Status(); st.State != StateRunning || st.Restarts != 1 {
			return fmt.Errorf("state %s, restarts %d", st.State, st.Restarts)
		}
		return nil
	})
	if st := h.p.Status(); st.PID == pid || st.LastError == "" {
		t.Fatalf("after restart: %+v", st)
	}
	acts, err := h.p.Handle(ctx, msg("ping"))
	if err != nil || len(acts) != 1 || acts[0].Send.Text != "pong" {
		t.Fatalf("after restart: %+v %v", acts, err)
	}

	// A sink job whose process dies is a retryable failure; the retry succeeds.
	ev := msg("job")
	ok, _, permanent, err := h.p.Deliver(ctx, ev, "crash", 1)
	if ok || permanent || err == nil {
		t.Fatalf("crashing delivery: ok=%v permanent=%v err=%v", ok, permanent, err)
	}
	poll.Until(t, 30*time.Second, func() error {
		if st := h.p.Status(); st.State != StateRunning || st.Restarts != 2 {
			return fmt.Errorf("state %s, restarts %d", st.State, st.Restarts)
		}
		return nil
	})
	if ok, _, _, err := h.p.Deliver(ctx, ev, "ok", 2); !ok || err != nil {
		t.Fatalf("retried delivery: ok=%v err=%v", ok, err)
	}
}

// A handler that ignores its deadline: the call returns promptly with a
// deadline error, and the same process stays in use (no restart) — its
// other calls are served concurrently; the stuck goroutine is the plugin's.
func TestHangPastDeadline(t *testing.T) {
	h := start(t, Config{Timeout: 300 * time.Millisecond})
	begin := time.Now()
	_, err := h.p.Handle(context.Background(), msg("hang"))
	took := time.Since(begin)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if took > 2*time.Second {
		t.Fatalf("the call took %s past a 300ms deadline", took)
	}
	pid := h.p.Status().PID
	if _, err := h.p.Handle(context.Background(), msg("ping")); err != nil {
		t.Fatalf("after the hang: %v", err)
	}
	st := h.p.Status()
	if st.PID != pid || st.Restarts != 0 || st.Calls.Handle.Timeouts != 1 {
		t.Fatalf("status: %+v", st)
	}
	// A caller's earlier deadline wins over the plugin's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.p.Handle(ctx, msg("hang")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller deadline: %v", err)
	}
}

func startErr(t *testing.T, name string, cfg Config) error {
	t.Helper()
	m, err := New(Options{Plugins: map[string]Config{name: cfg}, StartTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background())
	err = m.Start(context.Background())
	if err == nil {
		t.Fatal("start succeeded")
	}
	if st := m.Status()[0]; st.State == StateRunning {
		t.Fatalf("status after failed start: %+v", st)
	}
	return err
}

func TestProtocolVersionMismatch(t *testing.T) {
	err := startErr(t, "future", Config{Path: bin("v3plugin")})
	for _, want := range []string{`plugin "future"`, "incompatible plugin protocol version", "versions 1 to 2", "Plugin version: 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestNotAPlugin(t *testing.T) {
	err := startErr(t, "imposter", Config{Path: bin("notaplugin")})
	if !strings.Contains(err.Error(), `plugin "imposter"`) || !strings.Contains(err.Error(), "is not a Wildcat plugin") {
		t.Errorf("got %v", err)
	}
	err = startErr(t, "ghost", Config{Path: bin("does-not-exist")})
	if !strings.Contains(err.Error(), `plugin "ghost": plugins.ghost.path`) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("got %v", err)
	}
	err = startErr(t, "tampered", Config{Path: bin("testplugin"), SHA256: strings.Repeat("ab", 32)})
	if !strings.Contains(err.Error(), "does not match plugins.tampered.sha256") {
		t.Errorf("got %v", err)
	}
}

func TestStopIsGracefulAndIdempotent(t *testing.T) {
	h := start(t, Config{})
	ctx := context.Background()
	if err := h.m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.p.Handle(ctx, msg("ping")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after stop: %v", err)
	}
	st := h.m.Status()
	if len(st) != 1 || st[0].State != StateStopped || st[0].Restarts != 0 {
		t.Fatalf("status after stop: %+v", st)
	}
	b, err := json.Marshal(st)
	if err != nil || !strings.Contains(string(b), `"state":"stopped"`) || !strings.Contains(string(b), `"calls":{"handle":{"calls":1`) {
		t.Fatalf("status JSON: %s %v", b, err)
	}
}

// The SDK's example plugin builds and runs under the real host.
func TestEchoExampleUnderTheHost(t *testing.T) {
	h := start(t, Config{Path: bin("echo")})
	acts, err := h.p.Handle(context.Background(), msg("ping"))
	if err != nil || len(acts) != 2 || acts[0].Send.Text != "pong" || acts[0].Send.ReplyTo == nil || acts[1].Tags[0] != "ping" {
		t.Fatalf("got %+v %v", acts, err)
	}
	if st := h.p.Status(); st.Plugin != "echo" || fmt.Sprint(st.EventKinds) != "[message.received]" {
		t.Fatalf("status: %+v", st)
	}
}
