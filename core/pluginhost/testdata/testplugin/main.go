// Command testplugin is the pluginhost tests' plugin: inline and sink, with a
// behaviour per message text (Handle) or target (Deliver).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wildcathub/wildcat/sdk"
)

type testPlugin struct{ cfg map[string]any }

func (p *testPlugin) Describe() sdk.Description {
	return sdk.Description{Name: "testplugin", Version: "1.2.3", Description: "pluginhost test double", EventKinds: []string{"message.*"}}
}

func (p *testPlugin) Configure(ctx context.Context, cfg map[string]any) error {
	if cfg["reject"] == true {
		return errors.New("reject: true is not allowed")
	}
	p.cfg = cfg
	return nil
}

// blobData is what "blobmedia" and "host:blob" store: 300 KB, several chunks.
var blobData = bytes.Repeat([]byte("wildcat-"), 300_000/8)

func (p *testPlugin) Handle(ctx context.Context, ev *sdk.Event) ([]sdk.Action, error) {
	host := sdk.HostFrom(ctx)
	text := ev.Message.Text
	sdk.Logger(ctx).Debug("handling", "text", text)
	switch text {
	case "ping":
		return []sdk.Action{sdk.Reply("pong")}, nil
	case "config":
		b, _ := json.Marshal(p.cfg)
		return []sdk.Action{sdk.Annotate("config", string(b))}, nil
	case "actions":
		return []sdk.Action{
			sdk.QuoteReply("quoted"),
			sdk.Send(&sdk.SendRequest{To: "15550002222@s.whatsapp.net", Text: "hi", Mentions: []string{"1@s.whatsapp.net"},
				Location: &sdk.Location{Latitude: 1.5, Longitude: 2.5, Name: "here"}}),
			sdk.Drop(), sdk.Tag("a", "b"), sdk.Annotate("k", "v"), sdk.Route("hooks", "archive"),
		}, nil
	case "blobmedia":
		info, err := host.PutBlob(ctx, sdk.BlobInfo{Filename: "w.bin", ContentType: "image/png"}, bytes.NewReader(blobData))
		if err != nil {
			return nil, err
		}
		return []sdk.Action{sdk.ReplyWith(&sdk.SendRequest{Media: &sdk.MediaSend{Kind: "image", BlobID: info.ID, Mimetype: "image/png", Caption: "c"}})}, nil
	case "poll":
		return []sdk.Action{sdk.ReplyWith(&sdk.SendRequest{Poll: &sdk.PollSend{Name: "Lunch?", Options: []string{"Pizza", "Sushi"}, SelectableCount: 1}})}, nil
	case "error":
		return nil, errors.New("handler says no")
	case "panic":
		panic("handler exploded")
	case "crash":
		os.Exit(3)
	case "hang":
		select {} // ignores its deadline on purpose
	case "host:send":
		id, err := host.SendMessage(ctx, ev.AccountID, &sdk.SendRequest{To: ev.ChatID, Text: "from plugin", ReplyTo: &sdk.QuoteRef{MessageID: ev.Message.MessageID}})
		if err != nil {
			return nil, err
		}
		return []sdk.Action{sdk.Annotate("messageId", id)}, nil
	case "host:media":
		rc, err := host.FetchMedia(ctx, ev.AccountID, ev.Message.MessageID)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		h := sha256.New()
		n, err := io.Copy(h, rc)
		if err != nil {
			return nil, err
		}
		_, missing := host.FetchMedia(ctx, ev.AccountID, "nope")
		return []sdk.Action{sdk.Annotate("sha256", hex.EncodeToString(h.Sum(nil))), sdk.Annotate("size", fmt.Sprint(n)),
			sdk.Annotate("missing", fmt.Sprint(errors.Is(missing, sdk.ErrNotFound)))}, nil
	case "host:blob":
		info, err := host.PutBlob(ctx, sdk.BlobInfo{Filename: "w.bin", ContentType: "application/x-test"}, bytes.NewReader(blobData))
		if err != nil {
			return nil, err
		}
		rc, got, err := host.GetBlob(ctx, info.ID)
		if err != nil {
			return nil, err
		}
		back, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		_, _, missing := host.GetBlob(ctx, "000000000000000000000000")
		return []sdk.Action{sdk.Annotate("id", info.ID),
			sdk.Annotate("info", fmt.Sprintf("%s %s %d", got.Filename, got.ContentType, got.Size)),
			sdk.Annotate("equal", fmt.Sprint(bytes.Equal(back, blobData))),
			sdk.Annotate("missing", fmt.Sprint(errors.Is(missing, sdk.ErrNotFound))), sdk.Annotate("missingErr", fmt.Sprint(missing))}, nil
	case "host:kv":
		if err := host.KVSet(ctx, "keep", []byte("kept"), 0); err != nil {
			return nil, err
		}
		if err := host.KVSet(ctx, "temp", []byte("gone soon"), 0); err != nil {
			return nil, err
		}
		v, found, err := host.KVGet(ctx, "temp")
		if err != nil {
			return nil, err
		}
		if err := host.KVDelete(ctx, "temp"); err != nil {
			return nil, err
		}
		_, foundAfter, err := host.KVGet(ctx, "temp")
		if err != nil {
			return nil, err
		}
		if err := host.KVSet(ctx, "short", []byte("x"), time.Millisecond); err != nil {
			return nil, err
		}
		return []sdk.Action{sdk.Annotate("get", fmt.Sprintf("%s %v", v, found)), sdk.Annotate("afterDelete", fmt.Sprint(foundAfter))}, nil
	case "host:message":
		m, err := host.GetMessage(ctx, ev.AccountID, "STORED1")
		if err != nil {
			return nil, err
		}
		_, missing := host.GetMessage(ctx, ev.AccountID, "nope")
		return []sdk.Action{sdk.Annotate("text", m.Text), sdk.Annotate("from", m.From), sdk.Annotate("missing", fmt.Sprint(errors.Is(missing, sdk.ErrNotFound)))}, nil
	}
	return nil, nil
}

func (p *testPlugin) Deliver(ctx context.Context, job *sdk.Job) sdk.Result {
	switch job.Target {
	case "ok":
		return sdk.OK()
	case "retry":
		return sdk.Retry(fmt.Errorf("busy (job %s attempt %d)", job.ID, job.Attempt))
	case "retry-after":
		return sdk.RetryAfter(42*time.Second, errors.New("429"))
	case "fail":
		return sdk.Fail(errors.New("410 gone"))
	case "crash":
		os.Exit(4)
	case "gone":
		r := sdk.Disable(fmt.Errorf("gone: %s", job.TargetConfig))
		r.Status, r.Response = 410, "goodbye"
		return r
	}
	return sdk.Fail(fmt.Errorf("unknown target %q", job.Target))
}

// DeliverBatch answers each job as Deliver does, noting in the response of
// each how many jobs its call carried.
func (p *testPlugin) DeliverBatch(ctx context.Context, jobs []*sdk.Job) []sdk.Result {
	out := make([]sdk.Result, len(jobs))
	for i, job := range jobs {
		out[i] = p.Deliver(ctx, job)
		if out[i].Response == "" {
			out[i].Response = fmt.Sprintf("batch of %d", len(jobs))
		}
	}
	return out
}

func main() { sdk.Serve(&testPlugin{}) }
