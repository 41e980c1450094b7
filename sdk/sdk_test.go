package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/sdk"
	"github.com/wildcathub/wildcat/sdk/plugintest"
)

// kitchenSink exercises every part of the SDK from inside a plugin.
type kitchenSink struct{ greeting string }

func (k *kitchenSink) Describe() sdk.Description {
	return sdk.Description{Name: "kitchen", Version: "0.1.0", EventKinds: []string{"message.*"}}
}

func (k *kitchenSink) Configure(ctx context.Context, cfg map[string]any) error {
	g, ok := cfg["greeting"].(string)
	if !ok {
		return errors.New(`config: "greeting" must be a string`)
	}
	k.greeting = g
	return nil
}

func (k *kitchenSink) Handle(ctx context.Context, ev *sdk.Event) ([]sdk.Action, error) {
	host := sdk.HostFrom(ctx)
	switch ev.Message.Text {
	case "hi":
		return []sdk.Action{sdk.Reply(k.greeting)}, nil
	case "all":
		return []sdk.Action{
			sdk.QuoteReply("q"), sdk.SendText("1@s.whatsapp.net", "s"), sdk.Drop(),
			sdk.Tag("a", "b"), sdk.Annotate("k", "v"), sdk.Route("x", "y"),
		}, nil
	case "panic":
		panic("boom")
	case "fail":
		return nil, errors.New("handler failed")
	case "host":
		id, err := host.SendMessage(ctx, ev.AccountID, &sdk.SendRequest{To: ev.ChatID, Text: "via host"})
		if err != nil {
			return nil, err
		}
		rc, err := host.FetchMedia(ctx, ev.AccountID, "MEDIA1")
		if err != nil {
			return nil, err
		}
		media, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		info, err := host.PutBlob(ctx, sdk.BlobInfo{Filename: "f.bin", ContentType: "application/octet-stream"}, bytes.NewReader(media))
		if err != nil {
			return nil, err
		}
		rc, got, err := host.GetBlob(ctx, info.ID)
		if err != nil {
			return nil, err
		}
		back, _ := io.ReadAll(rc)
		rc.Close()
		if err := host.KVSet(ctx, "seen", []byte("yes"), 0); err != nil {
			return nil, err
		}
		v, found, err := host.KVGet(ctx, "seen")
		if err != nil || !found {
			return nil, fmt.Errorf("kv get: %v %v", found, err)
		}
		m, err := host.GetMessage(ctx, ev.AccountID, "MSG1")
		if err != nil {
			return nil, err
		}
		_, err = host.GetMessage(ctx, ev.AccountID, "missing")
		return []sdk.Action{
			sdk.Annotate("sent", id),
			sdk.Annotate("blob", fmt.Sprintf("%s %s %d %v", got.Filename, got.ContentType, got.Size, bytes.Equal(back, media))),
			sdk.Annotate("kv", string(v)),
			sdk.Annotate("message", m.Text),
			sdk.Annotate("missing", fmt.Sprint(errors.Is(err, sdk.ErrNotFound))),
		}, nil
	}
	return nil, nil
}

func (k *kitchenSink) Deliver(ctx context.Context, job *sdk.Job) sdk.Result {
	switch job.Target {
	case "retry":
		return sdk.RetryAfter(42*time.Second, errors.New("busy"))
	case "fail":
		return sdk.Fail(errors.New("gone"))
	case "panic":
		panic("sink boom")
	case "gone":
		r := sdk.Disable(errors.New("410 from " + string(job.TargetConfig)))
		r.Status, r.Response = 410, "bye"
		return r
	}
	return sdk.OK()
}

func start(t *testing.T) *plugintest.Harness {
	return plugintest.Start(t, &kitchenSink{}, plugintest.WithName("kitchen"), plugintest.WithConfig(map[string]any{"greeting": "hello!"}))
}

func TestDescribeAndConfigure(t *testing.T) {
	h := start(t)
	info := h.Info()
	if info.Name != "kitchen" || info.Version != "0.1.0" || len(info.Capabilities) != 2 || info.EventKinds[0] != "message.*" {
		t.Fatalf("info: %+v", info)
	}
	actions, err := h.Handle(context.Background(), plugintest.TextMessage("hi"))
	if err != nil || len(actions) != 1 || actions[0].Message.Text != "hello!" {
		t.Fatalf("config did not arrive: %+v %v", actions, err)
	}
	err = h.Configure(context.Background(), map[string]any{"greeting": 3})
	if err == nil || !strings.Contains(err.Error(), `"greeting" must be a string`) {
		t.Fatalf("bad config: %v", err)
	}
}

func TestActionsCrossTheWire(t *testing.T) {
	h := start(t)
	actions, err := h.Handle(context.Background(), plugintest.TextMessage("all"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"reply q true", "send 1@s.whatsapp.net s", "drop", "tag [a b]", "annotate k=v", "route [x y]"}
	var got []string
	for _, a := range actions {
		switch a.Kind {
		case sdk.ActionReply:
			got = append(got, fmt.Sprintf("reply %s %v", a.Message.Text, a.Quote))
		case sdk.ActionSend:
			got = append(got, fmt.Sprintf("send %s %s", a.Message.To, a.Message.Text))
		case sdk.ActionDrop:
			got = append(got, "drop")
		case sdk.ActionTag:
			got = append(got, fmt.Sprintf("tag %v", a.Tags))
		case sdk.ActionAnnotate:
			got = append(got, fmt.Sprintf("annotate %s=%s", a.Key, a.Value))
		case sdk.ActionRoute:
			got = append(got, fmt.Sprintf("route %v", a.Sinks))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestHandlerErrorsAndPanics(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	if _, err := h.Handle(ctx, plugintest.TextMessage("fail")); err == nil || !strings.Contains(err.Error(), "handler failed") {
		t.Fatalf("error: %v", err)
	}
	_, err := h.Handle(ctx, plugintest.TextMessage("panic"))
	if !errors.Is(err, sdk.ErrPanicked) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panic: %v", err)
	}
	if _, err := h.Deliver(ctx, &sdk.Job{ID: "j", Event: plugintest.TextMessage("x"), Target: "panic"}); !errors.Is(err, sdk.ErrPanicked) {
		t.Fatalf("sink panic: %v", err)
	}
	// still serving
	if _, err := h.Handle(ctx, plugintest.TextMessage("hi")); err != nil {
		t.Fatalf("after panic: %v", err)
	}
}

func TestDeliverOutcomes(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	for target, want := range map[string]string{"ok": "ok 0s <nil>", "retry": "retry 42s busy", "fail": "fail 0s gone"} {
		r, err := h.Deliver(ctx, &sdk.Job{ID: "j1", Event: plugintest.TextMessage("x"), Target: target})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%s %s %v", r.Outcome, r.RetryAfter, r.Err); got != want {
			t.Errorf("%s: got %q want %q", target, got, want)
		}
		if r.DisableTarget || r.Status != 0 || r.Response != "" {
			t.Errorf("%s: unexpected disable/status/response %+v", target, r)
		}
	}
	// The target's config travels to the plugin; status, response and the
	// disable flag travel back.
	r, err := h.Deliver(ctx, &sdk.Job{ID: "j2", Event: plugintest.TextMessage("x"), Target: "gone", TargetConfig: []byte(`{"url":"u"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != sdk.OutcomeFail || !r.DisableTarget || r.Status != 410 || r.Response != "bye" || r.Err.Error() != `410 from {"url":"u"}` {
		t.Fatalf("gone: %+v", r)
	}
}

func TestHostServices(t *testing.T) {
	h := start(t)
	media := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 KB: several chunks
	h.Host.AddMedia("test", "MEDIA1", media)
	h.Host.AddMessage(&sdk.Message{AccountID: "test", MessageID: "MSG1", Text: "stored text"})
	ev := plugintest.TextMessage("host")
	actions, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range actions {
		got[a.Key] = a.Value
	}
	want := map[string]string{"sent": "SENT0001", "blob": "f.bin application/octet-stream 320000 true", "kv": "yes", "message": "stored text", "missing": "true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	sent := h.Host.Sent()
	if len(sent) != 1 || sent[0].AccountID != "test" || sent[0].Request.To != ev.ChatID || sent[0].Request.Text != "via host" {
		t.Fatalf("sent: %+v", sent)
	}
	if v, ok := h.Host.KV("seen"); !ok || string(v) != "yes" {
		t.Fatalf("kv: %q %v", v, ok)
	}
}

func TestHostFromOutsideACall(t *testing.T) {
	_, _, err := sdk.HostFrom(context.Background()).KVGet(context.Background(), "k")
	if !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
}
