package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session/sim"
)

// BenchmarkAccounts measures creating and connecting sim accounts over REST
// on the daemon's own SQLite database, at 200 and at 2,000 accounts: the
// cost of one account must not grow with how many there are, so the time
// for 2,000 should be about ten times the time for 200 (the per-account
// figure stays flat). Each size starts on a fresh daemon; 16 clients.
//
//	go test -run '^$' -bench Accounts ./core/daemon/
func BenchmarkAccounts(b *testing.B) {
	perAccount := map[int]float64{}
	for _, n := range []int{200, 2000} {
		b.Run(fmt.Sprintf("create+connect/%d", n), func(b *testing.B) {
			for b.Loop() {
				took := createAndConnect(b, n)
				perAccount[n] = took.Seconds() * 1000 / float64(n)
				b.ReportMetric(took.Seconds(), "s-total")
				b.ReportMetric(perAccount[n], "ms/account")
			}
		})
	}
	if perAccount[200] > 0 && perAccount[2000] > 0 {
		b.Logf("per account: %.2f ms at 200, %.2f ms at 2,000 (ratio %.2f; linear growth is 1.0)",
			perAccount[200], perAccount[2000], perAccount[2000]/perAccount[200])
	}
}

// createAndConnect starts a daemon, then creates and connects n sim accounts
// and returns the time until all are connected.
func createAndConnect(b *testing.B, n int) time.Duration {
	cfg := testConfig(b, "")
	cfg.MongoDB.EmbeddedSync = "full"
	d, err := daemon.New(cfg, daemon.Options{NoSignals: true,
		Sim: sim.Options{PairDelay: time.Millisecond, QRInterval: time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = d.Shutdown(context.Background()) }()
	if err := d.Start(); err != nil {
		b.Fatal(err)
	}
	poll.Until(b, time.Minute, func() error { return d.Ready(context.Background()) })
	base := "http://" + d.Addr()
	hc := &http.Client{Transport: apikeystest.Wrap(&http.Transport{MaxIdleConnsPerHost: 16})}
	post := func(path, body string, want int) error {
		resp, err := hc.Post(base+path, "application/json", bytes.NewBufferString(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != want {
			return fmt.Errorf("POST %s: %d", path, resp.StatusCode)
		}
		return nil
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				id := fmt.Sprintf("acct%05d", i)
				if err := post("/v1/accounts", fmt.Sprintf(`{"id":%q,"driver":"sim"}`, id), http.StatusCreated); err != nil {
					b.Error(err)
					return
				}
				if err := post("/v1/accounts/"+id+"/connect", "", http.StatusAccepted); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	poll.Until(b, 15*time.Minute, func() error {
		resp, err := hc.Get(base + "/v1/accounts")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var page struct {
			Accounts []struct {
				State string `json:"state"`
			} `json:"accounts"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			return err
		}
		connected := 0
		for _, a := range page.Accounts {
			if a.State == "connected" {
				connected++
			}
		}
		if connected < n {
			return fmt.Errorf("%d of %d accounts connected", connected, n)
		}
		return nil
	})
	return time.Since(start)
}
