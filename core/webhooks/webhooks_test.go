package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/core/webhooks"
	sw "github.com/wildcathub/wildcat/sdk/webhooks"
)

func ptr[T any](v T) *T { return &v }

// One event per matching endpoint, signed per the specification (checked by
// recomputing the HMAC here), webhook-id the event id, the endpoint's own
// headers sent, the attempt logged with status and response.
func TestDeliverySignedPerSpec(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"ok":true}`) })
	ep := h.create(rc.URL+"/hooks", func(in *webhooks.Input) {
		in.Events = &[]string{"message.*"}
		in.Accounts = &[]string{"acme"}
		in.Headers = &map[string]string{"X-Api-Key": "k1"}
	})
	if !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("secret %q", ep.Secret)
	}
	ev := message("acme", "hello")
	h.emit(ev)
	h.emit(message("other", "not for this endpoint"))
	j := h.waitJob(ev, ep, "done", func(j *outbox.Job) bool { return j.State == outbox.StateDone })
	if a := j.Log[len(j.Log)-1]; a.Status != 200 || a.Response != `{"ok":true}` {
		t.Fatalf("attempt log: %+v", a)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1 (the other account's event is filtered out)", len(reqs))
	}
	r := reqs[0]
	if err := specVerify(ep.Secret, r); err != nil {
		t.Fatal(err)
	}
	if r.header.Get("webhook-id") != ev.ID || r.header.Get("X-Api-Key") != "k1" {
		t.Fatalf("headers: %v", r.header)
	}
	env, got := decode(t, r)
	if env.Type != "message.received" || got.ID != ev.ID || got.Message.Text != "hello" {
		t.Fatalf("envelope %+v, event %+v", env, got)
	}
	if err := specVerify(sw.NewSecret(), r); err == nil {
		t.Fatal("a random secret verified the request")
	}
}

// After a rotation both secrets sign for 24 hours, then only the new one.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rc := newReceiver(t, status(204))
	ep := h.create(rc.URL, nil)
	rot, err := h.reg.RotateSecret(context.Background(), ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Secret == ep.Secret || rot.PreviousSecretUntil == nil || !rot.PreviousSecretUntil.Equal(h.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("rotated: %+v", rot)
	}
	ev := message("acme", "during the grace period")
	h.emit(ev)
	h.waitJob(ev, ep, "done", func(j *outbox.Job) bool { return j.State == outbox.StateDone })
	r := rc.requests()[0]
	if n := len(strings.Fields(r.header.Get("webhook-signature"))); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	for _, s := range []string{ep.Secret, rot.Secret} {
		if err := specVerify(s, r); err != nil {
			t.Fatalf("secret %s: %v", s, err)
		}
	}

	h.clock.Add(24*time.Hour + time.Second)
	ev2 := message("acme", "after the grace period")
	h.emit(ev2)
	h.waitJob(ev2, ep, "done", func(j *outbox.Job) bool { return j.State == outbox.StateDone })
	r = rc.requests()[1]
	if err := specVerify(rot.Secret, r); err != nil {
		t.Fatal(err)
	}
	if err := specVerify(ep.Secret, r); err == nil {
		t.Fatal("the old secret still signs after 24 h")
	}
}

// Every outcome class, through the outbox: what the job does next and what
// the attempt log says.
func TestOutcomeClasses(t *testing.T) {
	h := newHarness(t, harnessOpts{mutate: func(o *webhooks.Options) { o.Timeout = 300 * time.Millisecond }})
	watcher := newReceiver(t, status(200))
	h.create(watcher.URL, func(in *webhooks.Input) { in.Events = &[]string{"webhook.disabled"} })
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	closed := newReceiver(t, status(200))
	closed.Close()
	tests := []struct {
		name    string
		url     string
		answer  func(w http.ResponseWriter, r *http.Request)
		state   outbox.State
		status  int
		runAt   time.Duration // after the attempt, for retries
		errText string
	}{
		{"2xx", "", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202); fmt.Fprint(w, "queued") }, outbox.StateDone, 202, 0, ""},
		{"410", "", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(410) }, outbox.StateDeadLetter, 410, 0, "disabled"},
		{"429 Retry-After", "", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Retry-After", "42"); w.WriteHeader(429) },
			outbox.StatePending, 429, 42 * time.Second, "rate limited"},
		{"503 Retry-After", "", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Retry-After", "120"); w.WriteHeader(503) },
			outbox.StatePending, 503, 2 * time.Minute, "receiver error"},
		{"500", "", status(500), outbox.StatePending, 500, time.Hour, "receiver error"},
		{"other 4xx", "", status(422), outbox.StatePending, 422, time.Hour, "mid-deploy"},
		{"network error", closed.URL, nil, outbox.StatePending, 0, time.Hour, "network error"},
		{"timeout", "", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}, outbox.StatePending, 0, time.Hour, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			if url == "" {
				url = newReceiver(t, tt.answer).URL
			}
			ep := h.create(url, nil)
			ev := message("acme", tt.name)
			h.emit(ev)
			j := h.waitJob(ev, ep, "one attempt", func(j *outbox.Job) bool { return len(j.Log) == 1 && j.State != outbox.StateProcessing })
			a := j.Log[0]
			if j.State != tt.state || a.Status != tt.status || !strings.Contains(a.Error, tt.errText) {
				t.Fatalf("state %s, attempt %+v; want %s, status %d, error with %q", j.State, a, tt.state, tt.status, tt.errText)
			}
			if tt.state == outbox.StatePending && !j.RunAt.Equal(h.clock.Now().Add(tt.runAt)) {
				t.Fatalf("next attempt at %s, want %s later", j.RunAt, tt.runAt)
			}
			got, err := h.reg.Get(context.Background(), ep.ID)
			if err != nil {
				t.Fatal(err)
			}
			switch tt.state {
			case outbox.StateDone:
				if a.Response != "queued" || got.FailingSince != nil || !got.Enabled {
					t.Fatalf("ok: attempt %+v endpoint %+v", a, got)
				}
			case outbox.StateDeadLetter: // 410
				if got.Enabled || !strings.Contains(got.DisabledReason, "410") {
					t.Fatalf("410 did not disable the endpoint: %+v", got)
				}
				if targets := h.reg.Targets(message("acme", "after")); contains(targets, ep.Target()) {
					t.Fatalf("a disabled endpoint still gets events: %v", targets)
				}
				pollUntil(t, func() error { return disabledAnnounced(watcher, ep.ID) })
			default:
				if !got.Enabled || got.FailingSince == nil || !got.FailingSince.Equal(h.clock.Now()) {
					t.Fatalf("a failure starts the failing streak: %+v", got)
				}
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// disabledAnnounced checks the watcher got webhook.disabled for id.
func disabledAnnounced(rc *receiver, id string) error {
	for _, r := range rc.requests() {
		if strings.Contains(string(r.body), `"type":"webhook.disabled"`) && strings.Contains(string(r.body), `"endpointId":"`+id+`"`) {
			return nil
		}
	}
	return fmt.Errorf("no webhook.disabled for %s among %d requests", id, len(rc.requests()))
}

// An endpoint failing every attempt for disable_after is disabled (and
// announced); one that succeeded in between is not.
func TestDisableAfterFailingForTheWindow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testDisableAfterFailingForTheWindow(t, e) })
}

func testDisableAfterFailingForTheWindow(t *testing.T, e storetest.Engine) {
	h := newHarness(t, harnessOpts{engine: e, mutate: func(o *webhooks.Options) { o.DisableAfter = 120 * time.Hour }})
	watcher := newReceiver(t, status(200))
	h.create(watcher.URL, func(in *webhooks.Input) { in.Events = &[]string{"webhook.*"} })
	down := newReceiver(t, status(500))
	flaky := newReceiver(t, status(500))
	epDown := h.create(down.URL, func(in *webhooks.Input) { in.Events = &[]string{"message.received"} })
	epFlaky := h.create(flaky.URL, func(in *webhooks.Input) { in.Events = &[]string{"message.received"} })
	ev := message("acme", "x")
	h.emit(ev)
	wait := func(ep *webhooks.Endpoint, ev *event.Event, n int, state outbox.State) {
		t.Helper()
		h.waitJob(ev, ep, fmt.Sprintf("%d attempts, %s", n, state), func(j *outbox.Job) bool { return len(j.Log) == n && j.State == state })
	}
	wait(epDown, ev, 1, outbox.StatePending)
	wait(epFlaky, ev, 1, outbox.StatePending)

	flaky.setAnswer(status(200))
	h.clock.Add(60 * time.Hour) // the retries are due: flaky recovers
	wait(epDown, ev, 2, outbox.StatePending)
	wait(epFlaky, ev, 2, outbox.StateDone)
	if got, _ := h.reg.Get(context.Background(), epDown.ID); !got.Enabled || !got.FailingSince.Equal(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("after 60 h: %+v", got)
	}
	if got, _ := h.reg.Get(context.Background(), epFlaky.ID); got.FailingSince != nil {
		t.Fatalf("a success did not end the failing streak: %+v", got)
	}

	flaky.setAnswer(status(500))
	h.clock.Add(60 * time.Hour) // 120 h after the first failure
	ev3 := message("acme", "z")
	h.emit(ev3)
	wait(epFlaky, ev3, 1, outbox.StatePending)
	pollUntil(t, func() error {
		got, _ := h.reg.Get(context.Background(), epDown.ID)
		if got.Enabled || !strings.Contains(got.DisabledReason, "every attempt failed") {
			return fmt.Errorf("not disabled: %+v", got)
		}
		return disabledAnnounced(watcher, epDown.ID)
	})
	if got, _ := h.reg.Get(context.Background(), epFlaky.ID); !got.Enabled {
		t.Fatalf("the endpoint that succeeded in between was disabled: %+v", got)
	}
	// Its queued jobs are dead-lettered at their next attempt, without a
	// request.
	sent := len(down.requests())
	h.clock.Add(time.Hour)
	for _, e := range []*event.Event{ev, ev3} {
		j := h.waitJob(e, epDown, "dead letter", func(j *outbox.Job) bool { return j.State == outbox.StateDeadLetter })
		if !strings.Contains(j.LastError, "disabled") && !strings.Contains(j.LastError, "500") {
			t.Fatalf("last error %q", j.LastError)
		}
	}
	if n := len(down.requests()); n != sent {
		t.Fatalf("the disabled endpoint got %d more requests", n-sent)
	}
}

// One endpoint hanging for the whole test never delays another: the other
// receives every event while the first still holds its slots.
func TestEndpointsAreIsolated(t *testing.T) {
	h := newHarness(t, harnessOpts{concurrency: 2, mutate: func(o *webhooks.Options) { o.Timeout = time.Hour }})
	hang := make(chan struct{})
	stuck := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(hang) }) // before the receiver closes
	healthy := newReceiver(t, status(200))
	epStuck := h.create(stuck.URL, nil)
	epOK := h.create(healthy.URL, nil)
	const n = 40
	evs := make([]*event.Event, n)
	for i := range evs {
		evs[i] = message("acme", fmt.Sprint(i))
		h.emit(evs[i])
	}
	for _, ev := range evs {
		h.waitJob(ev, epOK, "done", func(j *outbox.Job) bool { return j.State == outbox.StateDone })
	}
	if got := len(stuck.requests()); got > 2 {
		t.Fatalf("the stuck endpoint got %d requests, more than its 2 slots", got)
	}
	for _, ev := range evs {
		if j := h.job(ev, epStuck); j.State == outbox.StateDone {
			t.Fatalf("a job of the stuck endpoint completed: %+v", j)
		}
	}
}

// URLs reaching the daemon's own network are refused at registration, and
// again at delivery time.
func TestSSRFRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testSSRFRefused(t, e) })
}

func testSSRFRefused(t *testing.T, e storetest.Engine) {
	h := newHarness(t, harnessOpts{engine: e, mutate: func(o *webhooks.Options) {
		o.AllowPrivate = false
		o.Resolver = fakeResolver{"internal.example": "10.1.2.3", "hooks.example": "93.184.216.34"}
	}})
	for _, u := range []string{
		"http://127.0.0.1:8080/x", "http://localhost/x", "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/",
		"http://[::1]/", "http://internal.example/hook", "ftp://hooks.example/", "file:///etc/passwd", "hooks.example/x", "http://user:pw@hooks.example/",
	} {
		_, err := h.reg.Create(context.Background(), webhooks.Input{URL: ptr(u)})
		var fe *webhooks.FieldError
		if !errors.As(err, &fe) || fe.Field != "url" {
			t.Errorf("%s: got %v, want a url field error", u, err)
		}
	}
	if _, err := h.reg.Create(context.Background(), webhooks.Input{URL: ptr("https://hooks.example/wildcat")}); err != nil {
		t.Fatalf("a public URL was refused: %v", err)
	}

	// Registered while private targets were allowed, delivered after they
	// no longer are: the dial-time guard refuses it.
	// (Another daemon on the same database registers it; Refresh is how
	// a daemon picks up endpoints created elsewhere.)
	other := webhooks.New(webhooks.Options{Store: h.store, AllowPrivate: true})
	rc := newReceiver(t, status(200))
	ep, err := other.Create(context.Background(), webhooks.Input{URL: ptr(rc.URL)})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.reg.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := message("acme", "x")
	h.emit(ev)
	j := h.waitJob(ev, ep, "dead letter", func(j *outbox.Job) bool { return j.State == outbox.StateDeadLetter })
	if !strings.Contains(j.LastError, "not a public address") {
		t.Fatalf("last error %q", j.LastError)
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
}

type fakeResolver map[string]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// A receiver down for a while, then back, gets every event emitted
// meanwhile — retried and, once dead-lettered, replayed — each at least
// once, repeats carrying the same webhook-id.
func TestDownReceiverGetsEverythingAfterReplay(t *testing.T) {
	h := newHarness(t, harnessOpts{maxAge: 2 * time.Hour})
	rc := newReceiver(t, status(503))
	ep := h.create(rc.URL, nil)
	const n = 10
	evs := make([]*event.Event, n)
	for i := range evs {
		evs[i] = message("acme", fmt.Sprint(i))
		h.emit(evs[i])
	}
	for _, ev := range evs {
		h.waitJob(ev, ep, "1 attempt", func(j *outbox.Job) bool { return len(j.Log) == 1 && j.State == outbox.StatePending })
	}
	for i := 2; i <= 3; i++ {
		h.clock.Add(time.Hour)
		for _, ev := range evs {
			h.waitJob(ev, ep, fmt.Sprintf("%d attempts", i), func(j *outbox.Job) bool { return len(j.Log) == i && j.State != outbox.StateProcessing })
		}
	}
	for _, ev := range evs {
		if j := h.job(ev, ep); j.State != outbox.StateDeadLetter {
			t.Fatalf("after the schedule: %+v", j)
		}
	}
	rc.setAnswer(status(200))
	count, err := h.ob.Replay(context.Background(), outbox.Filter{State: outbox.StateDeadLetter, Target: ep.Target()})
	if err != nil || count != n {
		t.Fatalf("replay: %d, %v", count, err)
	}
	for _, ev := range evs {
		h.waitJob(ev, ep, "done", func(j *outbox.Job) bool { return j.State == outbox.StateDone })
	}
	ids := map[string]int{}
	for _, r := range rc.requests() {
		_, got := decode(t, r)
		if r.header.Get("webhook-id") != got.ID {
			t.Fatalf("webhook-id %q for event %q", r.header.Get("webhook-id"), got.ID)
		}
		if err := specVerify(ep.Secret, r); err != nil {
			t.Fatal(err)
		}
		ids[got.ID]++
	}
	for _, ev := range evs {
		if ids[ev.ID] != 4 { // 3 failed attempts and the replayed one
			t.Fatalf("event %s sent %d times, want 4", ev.ID, ids[ev.ID])
		}
	}
}

// A rate-limited endpoint gets no more than its rate: at 0.001/s the first
// event goes out at once (burst 1) and the second waits in the limiter,
// while an unlimited endpoint gets both.
func TestRateLimitHoldsDeliveriesBack(t *testing.T) {
	// One delivery slot per endpoint: the second event reaches the limiter
	// only after the first (with two, either could take the one token).
	h := newHarness(t, harnessOpts{concurrency: 1})
	slow, fast := newReceiver(t, status(200)), newReceiver(t, status(200))
	epSlow := h.create(slow.URL, func(in *webhooks.Input) { in.RateLimit = ptr(0.001) })
	epFast := h.create(fast.URL, nil)
	if epSlow.RateLimit != 0.001 {
		t.Fatalf("rateLimit %v", epSlow.RateLimit)
	}
	ev1, ev2 := message("acme", "1"), message("acme", "2")
	h.emit(ev1)
	h.emit(ev2)
	for _, ev := range []*event.Event{ev1, ev2} {
		h.waitJob(ev, epFast, "done", func(j *outbox.Job) bool { return j.State == outbox.StateDone })
	}
	h.waitJob(ev1, epSlow, "done", func(j *outbox.Job) bool { return j.State == outbox.StateDone })
	// Its next token is 1000 s away: the job is handed back, due then,
	// without a request and without counting against the endpoint's health.
	j := h.waitJob(ev2, epSlow, "held back", func(j *outbox.Job) bool { return len(j.Log) == 1 && j.State == outbox.StatePending })
	if a := j.Log[0]; a.Status != 0 || !strings.Contains(a.Error, "rate limit") || !j.RunAt.After(h.clock.Now().Add(900*time.Second)) {
		t.Fatalf("held-back job: %+v", j)
	}
	if n := len(slow.requests()); n != 1 {
		t.Fatalf("the limited endpoint got %d requests", n)
	}
	if got, _ := h.reg.Get(context.Background(), epSlow.ID); got.FailingSince != nil {
		t.Fatalf("being rate limited counted as a failure: %+v", got)
	}
	if _, err := h.reg.Update(context.Background(), epSlow.ID, webhooks.Input{RateLimit: ptr(-1.0)}); err == nil {
		t.Fatal("a negative rate limit was accepted")
	}
}

// Declared endpoints keep their id and, unless declared, their secret
// across starts; a declared secret and enabled: false are applied; an
// endpoint deleted by another daemon leaves this one's dispatcher.
func TestDeclaredEndpointsAndRefresh(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testDeclaredEndpointsAndRefresh(t, e) })
}

func testDeclaredEndpointsAndRefresh(t *testing.T, e storetest.Engine) {
	h := newHarness(t, harnessOpts{engine: e})
	ctx := context.Background()
	decl := []webhooks.Declared{{ID: "crm", URL: "https://crm.example.com/h", Events: []string{"message.received"}}}
	if err := h.reg.Upsert(ctx, decl); err != nil {
		t.Fatal(err)
	}
	first, err := h.reg.Get(ctx, "crm")
	if err != nil || first.Source != webhooks.SourceConfig || !first.Enabled || first.Accounts[0] != "*" || !strings.HasPrefix(first.Secret, "whsec_") {
		t.Fatalf("upserted: %+v %v", first, err)
	}
	decl[0].URL = "https://crm.example.com/v2"
	if err := h.reg.Upsert(ctx, decl); err != nil {
		t.Fatal(err)
	}
	again, _ := h.reg.Get(ctx, "crm")
	if again.URL != "https://crm.example.com/v2" || again.Secret != first.Secret || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("second start: %+v", again)
	}
	secret := sw.NewSecret()
	decl[0].Secret, decl[0].Enabled = secret, ptr(false)
	if err := h.reg.Upsert(ctx, decl); err != nil {
		t.Fatal(err)
	}
	third, _ := h.reg.Get(ctx, "crm")
	if third.Secret != secret || third.Enabled || third.DisabledReason == "" {
		t.Fatalf("declared secret and enabled: false: %+v", third)
	}
	decl[0].Enabled = ptr(true) // does not undo a disable
	if err := h.reg.Upsert(ctx, decl); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.reg.Get(ctx, "crm"); got.Enabled {
		t.Fatalf("config re-enabled a disabled endpoint: %+v", got)
	}

	// Deleted elsewhere: gone from the fan-out after a refresh.
	rc := newReceiver(t, status(200))
	ep := h.create(rc.URL, nil)
	if !contains(h.reg.Targets(message("acme", "x")), ep.Target()) {
		t.Fatal("new endpoint not in the fan-out")
	}
	other := webhooks.New(webhooks.Options{Store: h.store})
	if err := other.Delete(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.reg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if contains(h.reg.Targets(message("acme", "x")), ep.Target()) || len(h.reg.Cached()) != 1 {
		t.Fatalf("deleted endpoint still known: %v", h.reg.Cached())
	}
	if _, err := h.reg.Get(ctx, ep.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

// An endpoint gets events of every source unless its sources filter says
// otherwise — rule replies and plugin sends included; the filter is set on
// create, changed by PATCH, declared in config.yaml, validated, and an
// endpoint stored before the field existed gets every source.
func TestSourcesFilter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		st := endpointStore(t, e)
		reg := webhooks.New(webhooks.Options{Store: st, AllowPrivate: true})
		from := func(src event.Source) *event.Event {
			ev := message("acme", "x")
			ev.Source = src
			return ev
		}
		url := "https://crm.example.com/h"
		all, err := reg.Create(ctx, webhooks.Input{ID: ptr("all"), URL: &url})
		if err != nil || !slices.Equal(all.Sources, []string{"*"}) {
			t.Fatalf("default sources: %+v %v", all, err)
		}
		phone, err := reg.Create(ctx, webhooks.Input{ID: ptr("phone"), URL: &url, Sources: &[]string{"phone"}})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := reg.Get(ctx, "phone"); !slices.Equal(got.Sources, []string{"phone"}) {
			t.Fatalf("stored sources: %+v", got)
		}
		for src, want := range map[event.Source][]string{
			event.SourcePhone:  {all.Target(), phone.Target()},
			event.SourceRule:   {all.Target()},
			event.SourcePlugin: {all.Target()},
			event.SourceAPI:    {all.Target()},
		} {
			if got := reg.Targets(from(src)); !slices.Equal(got, want) {
				t.Errorf("source %s: targets %v, want %v", src, got, want)
			}
		}
		// The webhook's own kinds are not filtered by source.
		disabled := &event.Event{ID: "webhook.disabled:x:1", Kind: webhooks.KindDisabled, Source: event.SourceAPI}
		if got := reg.Targets(disabled); !slices.Equal(got, []string{all.Target(), phone.Target()}) {
			t.Errorf("webhook.disabled: targets %v", got)
		}

		if _, err := reg.Update(ctx, "phone", webhooks.Input{Sources: &[]string{"rule", "plugin"}}); err != nil {
			t.Fatal(err)
		}
		if got := reg.Targets(from(event.SourceRule)); !slices.Equal(got, []string{all.Target(), phone.Target()}) {
			t.Errorf("after PATCH: targets %v", got)
		}
		for _, bad := range [][]string{{}, {"robot"}, {"phone", ""}} {
			var fe *webhooks.FieldError
			if _, err := reg.Update(ctx, "phone", webhooks.Input{Sources: &bad}); !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "sources") {
				t.Errorf("sources %q: %v", bad, err)
			}
		}

		decl := []webhooks.Declared{{ID: "decl", URL: url, Sources: []string{"api"}}, {ID: "decl2", URL: url}}
		if err := webhooks.ValidateDeclared([]webhooks.Declared{{ID: "d", URL: url, Sources: []string{"phone", "sms"}}}); err == nil ||
			!strings.Contains(err.Error(), "webhooks.endpoints[0].sources[1]") {
			t.Errorf("declared bad source: %v", err)
		}
		if err := reg.Upsert(ctx, decl); err != nil {
			t.Fatal(err)
		}
		if got, _ := reg.Get(ctx, "decl"); !slices.Equal(got.Sources, []string{"api"}) {
			t.Errorf("declared sources: %+v", got)
		}
		if got, _ := reg.Get(ctx, "decl2"); !slices.Equal(got.Sources, []string{"*"}) {
			t.Errorf("declared default sources: %+v", got)
		}

		// Stored before sources existed: every source.
		t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		if err := st.Insert(ctx, &webhooks.Endpoint{ID: "old", URL: url, Events: []string{"*"}, Accounts: []string{"*"}, Enabled: true,
			Secret: sw.NewSecret(), CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := reg.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := reg.Get(ctx, "old"); !slices.Equal(got.Sources, []string{"*"}) {
			t.Errorf("old endpoint's sources: %+v", got)
		}
		if !slices.Contains(reg.Targets(from(event.SourceRule)), "webhook:old") {
			t.Error("an endpoint without a sources filter misses rule events")
		}
	})
}
