package pluginhost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// binDir holds the plugin binaries TestMain builds.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wildcat-pluginhost-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	if err := buildPlugins(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return storetest.Main(m)
}

// buildPlugins builds the test plugins and the SDK's example with one go
// build (race-enabled when this test binary is).
func buildPlugins(dir string) error {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./testdata/testplugin", "./testdata/v3plugin", "./testdata/v1plugin", "./testdata/notaplugin", "../../sdk/examples/echo")
	cmd := exec.Command(goBin, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build test plugins: %v\n%s", err, out)
	}
	return nil
}

func bin(name string) string { return filepath.Join(binDir, name) }

// logBuffer collects the daemon log of a test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fakeSender struct {
	mu   sync.Mutex
	reqs []sentReq
}

type sentReq struct {
	account string
	req     *session.SendRequest
}

func (f *fakeSender) Send(_ context.Context, accountID string, req *session.SendRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, sentReq{accountID, req})
	return fmt.Sprintf("SENT%d", len(f.reqs)), nil
}

func (f *fakeSender) sent() []sentReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentReq(nil), f.reqs...)
}

type fakeMedia map[string][]byte

func (f fakeMedia) FetchMedia(_ context.Context, accountID, messageID string) (io.ReadCloser, error) {
	b, ok := f[accountID+"/"+messageID]
	if !ok {
		return nil, fmt.Errorf("media of %s: %w", messageID, session.ErrNoMedia)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

type fakeMessages map[string]*event.Message

func (f fakeMessages) GetMessage(_ context.Context, accountID, messageID string) (*event.Message, error) {
	m, ok := f[accountID+"/"+messageID]
	if !ok {
		return nil, fmt.Errorf("message %s: %w", messageID, ErrNotFound)
	}
	return m, nil
}

type harness struct {
	m      *Manager
	p      *Plugin
	log    *logBuffer
	sender *fakeSender
}

// start runs the test plugin under the name "tp" (and any extra plugins),
// with fast health checks and restarts.
func start(t testing.TB, cfg Config, mod ...func(*Options)) *harness {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = bin("testplugin")
	}
	h := &harness{log: &logBuffer{}, sender: &fakeSender{}}
	opts := Options{
		Plugins: map[string]Config{"tp": cfg},
		Services: Services{
			Sender:   h.sender,
			Media:    fakeMedia{"acme/MEDIA1": bytes.Repeat([]byte{1, 2, 3, 4, 5}, 50_000)},
			Messages: fakeMessages{"acme/STORED1": {AccountID: "acme", MessageID: "STORED1", From: "15550003333@s.whatsapp.net", Text: "stored text"}},
		},
		Logger:         slog.New(slog.NewJSONHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HealthInterval: 50 * time.Millisecond,
		RestartBackoff: Backoff{Min: 10 * time.Millisecond, Max: time.Second},
	}
	for _, f := range mod {
		f(&opts)
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", h.log.String())
		}
	})
	h.m = m
	h.p, _ = m.Get("tp")
	return h
}

var at = time.Date(2025, 3, 1, 12, 30, 45, 0, time.UTC)

// msg is a message.received event on account acme with text.
func msg(text string) *event.Event {
	return &event.Event{
		ID: event.MessageEventID("acme", "3EB0"+strings.ToUpper(strings.ReplaceAll(text, ":", ""))), Kind: event.KindMessageReceived,
		AccountID: "acme", Timestamp: at, ChatID: "15550001111@s.whatsapp.net", Source: event.SourcePhone,
		Message: &event.Message{AccountID: "acme", MessageID: "MEDIA1", ChatID: "15550001111@s.whatsapp.net",
			From: "15550001111@s.whatsapp.net", Timestamp: at.Unix(), Type: event.TypeText, Text: text},
	}
}
