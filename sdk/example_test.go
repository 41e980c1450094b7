package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/sdk"
)

// PingPong is a complete inline plugin; its main package adds only
//
//	func main() { sdk.Serve(PingPong{}) }
type PingPong struct{}

func (PingPong) Handle(ctx context.Context, ev *sdk.Event) ([]sdk.Action, error) {
	if ev.Kind != sdk.KindMessageReceived || !strings.EqualFold(ev.Message.Text, "ping") {
		return nil, nil
	}
	sdk.Logger(ctx).Info("ping", "chat", ev.ChatID)
	return []sdk.Action{sdk.Reply("pong")}, nil
}

// A plugin is a type with a Handle method (and/or Deliver), served by
// sdk.Serve from main. Here the handler is called directly.
func Example() {
	ev := &sdk.Event{Kind: sdk.KindMessageReceived, ChatID: "15550001111@s.whatsapp.net",
		Message: &sdk.Message{Text: "ping"}}
	actions, err := PingPong{}.Handle(context.Background(), ev)
	fmt.Println(actions[0].Kind, actions[0].Message.Text, err)
	// Output: reply pong <nil>
}

// Notifier is a sink: the daemon's outbox calls Deliver once per attempt.
type Notifier struct{ status int }

func (n Notifier) Deliver(ctx context.Context, job *sdk.Job) sdk.Result {
	switch {
	case n.status == http.StatusTooManyRequests:
		return sdk.RetryAfter(30*time.Second, errors.New("429 too many requests"))
	case n.status == http.StatusGone:
		return sdk.Fail(errors.New("410 gone: endpoint removed"))
	case n.status >= 500:
		return sdk.Retry(fmt.Errorf("%d from receiver", n.status))
	}
	return sdk.OK()
}

// A sink answers each delivery attempt with OK, Retry, RetryAfter or Fail.
func Example_sink() {
	job := &sdk.Job{ID: "acme:3EB0:webhooks", Event: &sdk.Event{Kind: sdk.KindMessageReceived}, Attempt: 1}
	for _, status := range []int{200, 503, 429, 410} {
		r := Notifier{status: status}.Deliver(context.Background(), job)
		fmt.Println(status, r.Outcome, r.RetryAfter, r.Err)
	}
	// Output:
	// 200 ok 0s <nil>
	// 503 retry 0s 503 from receiver
	// 429 retry 30s 429 too many requests
	// 410 fail 0s 410 gone: endpoint removed
}

// Archiver is a sink that also takes its deliveries in batches: it keeps
// its Deliver (for daemons speaking protocol version 1) and adds
// DeliverBatch, which a version-2 daemon calls with the jobs it claimed
// together. Here "storing" a batch is one bulk write that refuses events
// of a blocked chat; each job is answered for itself.
type Archiver struct{ blocked string }

func (a Archiver) Deliver(ctx context.Context, job *sdk.Job) sdk.Result {
	return a.DeliverBatch(ctx, []*sdk.Job{job})[0]
}

func (a Archiver) DeliverBatch(ctx context.Context, jobs []*sdk.Job) []sdk.Result {
	out := make([]sdk.Result, len(jobs))
	for i, job := range jobs {
		if job.Event.ChatID == a.blocked {
			out[i] = sdk.Retry(fmt.Errorf("chat %s is not accepted yet", a.blocked))
			continue
		}
		out[i] = sdk.OK()
	}
	return out
}

// A BatchSink answers each job of a batch with its own Result: only the
// jobs that failed are retried.
func ExampleBatchSink() {
	jobs := []*sdk.Job{
		{ID: "acme:1:archive", Event: &sdk.Event{ChatID: "a@s.whatsapp.net"}, Attempt: 1},
		{ID: "acme:2:archive", Event: &sdk.Event{ChatID: "b@s.whatsapp.net"}, Attempt: 1},
		{ID: "acme:3:archive", Event: &sdk.Event{ChatID: "a@s.whatsapp.net"}, Attempt: 1},
	}
	var s sdk.BatchSink = Archiver{blocked: "b@s.whatsapp.net"}
	for i, r := range s.DeliverBatch(context.Background(), jobs) {
		fmt.Println(jobs[i].ID, r.Outcome, r.Err)
	}
	// Output:
	// acme:1:archive ok <nil>
	// acme:2:archive retry chat b@s.whatsapp.net is not accepted yet
	// acme:3:archive ok <nil>
}
