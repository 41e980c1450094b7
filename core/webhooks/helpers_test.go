package webhooks_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// pluginBin is the real webhook plugin, built once by TestMain.
var pluginBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "wildcat-webhook-plugin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		pluginBin = filepath.Join(dir, "webhook")
		cmd := exec.Command("go", "build", "-o", pluginBin, "../../plugins/webhook")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build the webhook plugin: %v\n%s", err, out)
			return 1
		}
		return storetest.Main(m)
	}())
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testSchedule retries hourly without jitter, so due times are exact
// under the fake clock and nothing is retried until the test advances it.
func testSchedule(maxAge time.Duration) *outbox.Schedule {
	return &outbox.Schedule{Delays: []time.Duration{time.Hour}, Every: time.Hour, MaxAge: maxAge, Jitter: 0,
		MinRetryAfter: time.Second, MaxRetryAfter: 6 * time.Hour}
}

type harness struct {
	t     testing.TB
	store webhooks.EndpointStore
	reg   *webhooks.Registry
	ob    *outbox.Outbox
	disp  *outbox.Dispatcher
	clock *fakeClock
}

type harnessOpts struct {
	// engine keeps the endpoints; "" is SQLite. The outbox is on MongoDB
	// either way (another package's store).
	engine      storetest.Engine
	maxAge      time.Duration
	concurrency int
	mutate      func(*webhooks.Options)
}

// plugin starts the real webhook plugin binary under the plugin host.
func plugin(t testing.TB) *pluginhost.Plugin {
	t.Helper()
	m, err := pluginhost.New(pluginhost.Options{Plugins: map[string]pluginhost.Config{"webhook": {Path: pluginBin, Timeout: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	p, _ := m.Get("webhook")
	return p
}

// newHarness wires a registry, the real outbox (on SQLite, the daemon's
// default, unless the harness's engine is MongoDB), a dispatcher and the real
// plugin as the daemon does: every endpoint is its own dispatcher target.
func newHarness(t testing.TB, ho harnessOpts) *harness {
	t.Helper()
	if ho.maxAge == 0 {
		ho.maxAge = 1000 * time.Hour
	}
	if ho.concurrency == 0 {
		ho.concurrency = 2
	}
	clock := &fakeClock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	obOpts := outbox.Options{Clock: clock, Schedule: testSchedule(ho.maxAge), ResponseLimit: 4096}
	var (
		ob  *outbox.Outbox
		err error
	)
	if ho.engine == storetest.MongoDB {
		obOpts.Exclusive = true // FerretDB cannot index the shared claim
		ob, err = outbox.Open(ctx, storetest.NewDatabase(t), obOpts)
	} else {
		ob, err = outbox.OpenSQLite(storetest.NewSQLite(t, outbox.SQLiteSchema), obOpts)
	}
	if err != nil {
		t.Fatal(err)
	}
	disp := outbox.NewDispatcher(ob, outbox.DispatcherOptions{PollInterval: 10 * time.Millisecond, Timeout: 2 * time.Minute})
	h := &harness{t: t, store: endpointStore(t, ho.engine), ob: ob, disp: disp, clock: clock}
	var mu sync.Mutex
	handled := map[string]bool{}
	opts := webhooks.Options{
		Store: h.store, Deliverer: plugin(t), Enqueuer: ob, AllowPrivate: true, Clock: clock, Timeout: 10 * time.Second,
		OnChange: func(ep *webhooks.Endpoint, deleted bool) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case deleted:
				disp.Remove(ep.Target())
				delete(handled, ep.ID)
			case !handled[ep.ID]:
				disp.Handle(ep.Target(), h.reg.Sink(), ho.concurrency)
				handled[ep.ID] = true
			}
		},
	}
	if ho.mutate != nil {
		ho.mutate(&opts)
	}
	h.reg = webhooks.New(opts)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = disp.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// endpointStore is a fresh endpoint store on the engine ("" is SQLite).
func endpointStore(t testing.TB, e storetest.Engine) webhooks.EndpointStore {
	t.Helper()
	if e == storetest.MongoDB {
		return webhooks.NewMongoEndpoints(storetest.NewDatabase(t), "")
	}
	return webhooks.NewSQLiteEndpoints(storetest.NewSQLite(t, webhooks.SQLiteSchema))
}

func (h *harness) create(url string, mutate func(in *webhooks.Input)) *webhooks.Endpoint {
	h.t.Helper()
	in := webhooks.Input{URL: &url}
	if mutate != nil {
		mutate(&in)
	}
	ep, err := h.reg.Create(context.Background(), in)
	if err != nil {
		h.t.Fatal(err)
	}
	return ep
}

// emit queues ev for every matching endpoint, as the pipeline's
// "sink: webhooks" stage does.
func (h *harness) emit(ev *event.Event) {
	h.t.Helper()
	targets := h.reg.Targets(ev)
	if len(targets) == 0 {
		return
	}
	if err := h.ob.Enqueue(context.Background(), ev, targets...); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) job(ev *event.Event, ep *webhooks.Endpoint) *outbox.Job {
	h.t.Helper()
	j, err := h.ob.Get(context.Background(), outbox.JobID(ev.ID, ep.Target()))
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

// waitJob polls until the job satisfies ok.
func (h *harness) waitJob(ev *event.Event, ep *webhooks.Endpoint, what string, ok func(j *outbox.Job) bool) *outbox.Job {
	h.t.Helper()
	var j *outbox.Job
	pollUntil(h.t, func() error {
		j = h.job(ev, ep)
		if !ok(j) {
			return fmt.Errorf("job %s: want %s, got state=%s attempts=%d log=%+v", j.ID, what, j.State, j.Attempts, j.Log)
		}
		return nil
	})
	return j
}

var seq int

func message(acct, text string) *event.Event {
	seq++
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	id := fmt.Sprintf("3EB0%06d", seq)
	chat := "15550001111@s.whatsapp.net"
	return &event.Event{ID: acct + ":" + id, Kind: event.KindMessageReceived, AccountID: acct, Timestamp: now, ChatID: chat, Source: event.SourcePhone,
		Message: &event.Message{AccountID: acct, MessageID: id, ChatID: chat, From: chat, Timestamp: now.Unix(), Type: "text", Text: text}}
}

// request is one request a receiver saw.
type request struct {
	header http.Header
	body   []byte
}

// receiver is a test webhook receiver on port 0 answering with answer.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []request
	answer func(w http.ResponseWriter, r *http.Request)
}

func newReceiver(t testing.TB, answer func(w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, request{header: r.Header.Clone(), body: b})
		answer := rc.answer
		rc.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setAnswer(f func(w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = f
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}

func status(code int) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
}

// specVerify checks a request's signature the way the specification
// describes it, independently of sdk/webhooks: HMAC-SHA256 keyed with the
// base64-decoded secret over "id.timestamp.body", base64, "v1," prefix.
func specVerify(secret string, r request) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(r.header.Get("webhook-id") + "." + r.header.Get("webhook-timestamp") + "."))
	m.Write(r.body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, s := range strings.Fields(r.header.Get("webhook-signature")) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no signature in %q matches %s", r.header.Get("webhook-signature"), want)
}

type envelope struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

func decode(t *testing.T, r request) (envelope, event.Event) {
	t.Helper()
	var env envelope
	var ev event.Event
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatalf("body is not an envelope: %s", r.body)
	}
	if err := json.Unmarshal(env.Data, &ev); err != nil {
		t.Fatalf("data is not an event: %s", env.Data)
	}
	return env, ev
}

// pollUntil waits with core/poll's semantics (a generous ceiling, no
// timing assertion).
func pollUntil(t testing.TB, check func() error) {
	t.Helper()
	pollUntilFn(t, 60*time.Second, check)
}

var pollUntilFn = poll.Until
