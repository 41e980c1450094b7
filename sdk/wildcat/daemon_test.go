package wildcat_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/sdk/wildcat"
)

// The daemon the tests and examples talk to: a real daemon core in this
// process, on the embedded SQLite store and the sim driver, with the
// account demo connected and an in-process sink "crm" whose deliveries fail
// while sinkFailing is set.
var (
	daemonURL   string
	adminKey    = apikeystest.AdminToken
	sinkFailing atomic.Bool
)

type flakySink struct{}

func (flakySink) Deliver(ctx context.Context, job *outbox.Job) outbox.Result {
	if sinkFailing.Load() {
		r := outbox.Fail(errors.New("crm answered 500"))
		r.Status = http.StatusInternalServerError
		return r
	}
	return outbox.OK()
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wildcat-client-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	// The webhook plugin, built as `make build` does: webhooks are
	// delivered (and tested) by it.
	webhookBin := filepath.Join(dir, "webhook")
	if out, err := exec.Command("go", "build", "-o", webhookBin, "github.com/wildcathub/wildcat/plugins/webhook").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the webhook plugin: %v\n%s", err, out)
		return 1
	}
	cfg := config.Defaults()
	cfg.Plugins = map[string]config.Plugin{"webhook": {Path: webhookBin}}
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.HTTP.AdminKey = adminKey
	cfg.Webhooks.AllowPrivateTargets = true
	cfg.Accounts = []config.Account{{ID: "demo", Driver: "sim", Name: "Demo"}}
	cfg.Pipeline = append(cfg.Pipeline, pipeline.StageConfig{Name: "crm", Sink: "crm", Match: pipeline.Match{Kinds: []string{"message.received"}}})
	d, err := daemon.New(cfg, daemon.Options{NoSignals: true, Sinks: map[string]outbox.Sink{"crm": flakySink{}},
		Sim: sim.Options{PairDelay: 10 * time.Millisecond, DeliveredDelay: time.Millisecond, ReadDelay: time.Millisecond}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := d.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = d.Shutdown(context.Background()) }()
	daemonURL = "http://" + d.Addr()
	if err := waitState("demo", "connected"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// waitState polls an account until it reaches state.
func waitState(id, state string) error {
	c, err := wildcat.New(daemonURL, wildcat.WithKey(adminKey))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last string
	for ctx.Err() == nil {
		if a, err := c.Account(ctx, id); err == nil {
			if a.State == state {
				return nil
			}
			last = a.State
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not synchronising
	}
	return fmt.Errorf("account %s is %q, not %s, after a minute", id, last, state)
}
