// Package plugintest runs a Wildcat plugin in-process for its author's unit
// tests. The plugin is served over the real protocol — gRPC, the protobuf
// contract and go-plugin's broker, all in memory — against Host, an
// in-memory implementation of the daemon's services, so a test exercises
// exactly the code paths the daemon will:
//
//	func TestPing(t *testing.T) {
//		h := plugintest.Start(t, &Echo{})
//		actions, err := h.Handle(context.Background(), plugintest.TextMessage("ping"))
//		if err != nil || len(actions) != 1 || actions[0].Message.Text != "pong" {
//			t.Fatalf("got %+v, %v", actions, err)
//		}
//	}
package plugintest

import (
	"context"
	"fmt"
	"testing"
	"time"

	plugin "github.com/hashicorp/go-plugin"

	"github.com/wildcathub/wildcat/sdk"
)

// Harness is one plugin served in-process. Its methods are what the daemon
// calls on a plugin.
type Harness struct {
	// Host is the in-memory host the plugin's calls reach. Seed it (AddMedia,
	// AddMessage) and inspect it (Sent, KV) from the test.
	Host *Host

	t      testing.TB
	name   string
	client *sdk.PluginClient
	info   *sdk.PluginInfo
}

// Option changes how Start runs the plugin.
type Option func(*options)

type options struct {
	name   string
	config map[string]any
	host   *Host
}

// WithConfig hands cfg to the plugin's Configure, as the plugin's block of
// config.yaml would be.
func WithConfig(cfg map[string]any) Option { return func(o *options) { o.config = cfg } }

// WithName sets the name the plugin is declared under (default "test").
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithHost uses h instead of a fresh NewHost().
func WithHost(h *Host) Option { return func(o *options) { o.host = h } }

// Start serves p, asks it to Describe itself and Configures it; any failure
// fails the test. Everything is torn down when the test ends.
func Start(t testing.TB, p any, opts ...Option) *Harness {
	t.Helper()
	o := options{name: "test"}
	for _, opt := range opts {
		opt(&o)
	}
	if o.host == nil {
		o.host = NewHost()
	}
	client, _ := plugin.TestPluginGRPCConn(t, false, sdk.VersionedPlugins(p)[sdk.ProtocolVersion])
	// Close asks the server to shut down (go-plugin's controller stops it);
	// stopping the server here as well would race with that.
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(sdk.PluginKey)
	if err != nil {
		t.Fatalf("plugintest: dispense: %v", err)
	}
	h := &Harness{Host: o.host, t: t, name: o.name, client: raw.(*sdk.PluginClient)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if h.info, err = h.client.Describe(ctx); err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	if err := h.Configure(ctx, o.config); err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	return h
}

// Info is what the plugin reported from Describe, with its capabilities.
func (h *Harness) Info() *sdk.PluginInfo { return h.info }

// Configure hands the plugin a (new) config block, as a daemon start does;
// use it to test that a bad config is rejected.
func (h *Harness) Configure(ctx context.Context, cfg map[string]any) error {
	return h.client.Configure(ctx, h.name, cfg, h.Host)
}

// Handle makes an inline call with ev.
func (h *Harness) Handle(ctx context.Context, ev *sdk.Event) ([]sdk.Action, error) {
	return h.client.Handle(ctx, ev)
}

// Deliver makes one sink attempt of job. A zero Attempt is sent as 1.
func (h *Harness) Deliver(ctx context.Context, job *sdk.Job) (sdk.Result, error) {
	if job.Attempt == 0 {
		job.Attempt = 1
	}
	return h.client.Deliver(ctx, job)
}

// DeliverBatch makes one attempt of each job in one call, as a daemon
// speaking protocol version 2 does: through the plugin's sdk.BatchSink, or
// its Deliver for each job. Zero Attempts are sent as 1.
func (h *Harness) DeliverBatch(ctx context.Context, jobs []*sdk.Job) ([]sdk.Result, error) {
	for _, job := range jobs {
		if job.Attempt == 0 {
			job.Attempt = 1
		}
	}
	return h.client.DeliverBatch(ctx, jobs)
}

// TextMessage is a message.received event with text from
// 15550001111@s.whatsapp.net on account "test", for handler tests. Adjust
// its fields as needed.
func TextMessage(text string) *sdk.Event {
	now := time.Now().UTC().Truncate(time.Millisecond)
	id := fmt.Sprintf("3EB0%X", now.UnixNano())
	const chat = "15550001111@s.whatsapp.net"
	return &sdk.Event{
		ID:        "test:" + id,
		Kind:      sdk.KindMessageReceived,
		AccountID: "test",
		Timestamp: now,
		ChatID:    chat,
		Source:    "phone",
		Message: &sdk.Message{
			AccountID: "test", MessageID: id, ChatID: chat, From: chat,
			Timestamp: now.Unix(), Type: "text", Text: text,
		},
	}
}
