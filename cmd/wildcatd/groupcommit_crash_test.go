package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/poll"
)

// TestSIGKILLDuringGroupCommits kills the real daemon with SIGKILL while 64
// clients post sim messages as fast as it takes them, so the kill lands in
// the middle of group commits on the embedded SQLite engine (sync full).
// After a restart every message that was answered 201 must be stored
// exactly once — counted by its text, which a duplicate row would repeat —
// and must have gone through the pipeline: its tag is there and nothing is
// left unprocessed.
func TestSIGKILLDuringGroupCommits(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wildcatd")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	cfg := writeConfig(t, fmt.Sprintf(`data_dir: %s
http: {addr: "127.0.0.1:0"}
mongodb: {embedded_sync: full}
accounts: [{id: gc, driver: sim}]
pipeline:
  - {name: seen, builtin: tag, config: {tag: seen}, match: {kinds: [message.received]}}
`, t.TempDir()))

	p := startDaemonBin(t, bin, cfg)
	base := p.waitReady(t)
	waitConnected(t, base, "gc")

	const clients = 64
	hc := &http.Client{Transport: apikeystest.Wrap(&http.Transport{MaxIdleConnsPerHost: clients}), Timeout: 30 * time.Second}
	var (
		mu       sync.Mutex
		accepted = map[string]bool{} // message ids answered 201
		next     atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := next.Add(1)
				id := fmt.Sprintf("G%07d", i)
				body := fmt.Sprintf(`{"from":"+1555%07d","id":%q,"text":"group commit %s"}`, i%300, id, id)
				resp, err := hc.Post(base+"/v1/accounts/gc/sim/inbound", "application/json", bytes.NewBufferString(body))
				if err != nil {
					return // the daemon is gone
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					mu.Lock()
					accepted[id] = true
					mu.Unlock()
				}
			}
		})
	}
	// Kill it once it is well into its stride.
	poll.Until(t, 5*time.Minute, func() error {
		mu.Lock()
		n := len(accepted)
		mu.Unlock()
		if n < 3000 {
			return fmt.Errorf("%d messages accepted so far", n)
		}
		return nil
	})
	p.kill(t)
	close(stop)
	wg.Wait()
	t.Logf("killed after %d messages answered 201 (%d posted)", len(accepted), next.Load())

	p = startDaemonBin(t, bin, cfg)
	base = p.waitReady(t)
	// Recovery runs what the kill left unprocessed; wait until the
	// pipeline is idle and every accepted message carries its tag.
	stored := map[string]int{} // text → rows
	tagged := map[string]bool{}
	poll.Until(t, 5*time.Minute, func() error {
		clear(stored)
		clear(tagged)
		cursor := ""
		for {
			var page struct {
				Messages []struct {
					MessageID string   `json:"messageId"`
					Text      string   `json:"text"`
					Tags      []string `json:"tags"`
				} `json:"messages"`
				NextCursor *string `json:"nextCursor"`
			}
			url := base + "/v1/accounts/gc/messages?limit=500"
			if cursor != "" {
				url += "&cursor=" + cursor
			}
			if err := getJSON(url, &page); err != nil {
				return err
			}
			for _, m := range page.Messages {
				stored[m.Text]++
				for _, tag := range m.Tags {
					if tag == "seen" {
						tagged[m.MessageID] = true
					}
				}
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		for id := range accepted {
			if stored["group commit "+id] == 0 {
				return fmt.Errorf("message %s was answered 201 but is not stored", id)
			}
			if !tagged[id] {
				return fmt.Errorf("message %s is stored but has not been through the pipeline", id)
			}
		}
		var pl struct {
			Queued int `json:"queued"`
		}
		if err := getJSON(base+"/v1/pipeline", &pl); err != nil {
			return err
		}
		if pl.Queued != 0 {
			return fmt.Errorf("%d events still queued", pl.Queued)
		}
		return nil
	})
	for text, n := range stored {
		if n != 1 && strings.HasPrefix(text, "group commit ") {
			t.Errorf("%q stored %d times", text, n)
		}
	}
	t.Logf("%d stored after the restart (%d answered 201 before the kill; the rest were stored but their answer was lost)", len(stored), len(accepted))
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
