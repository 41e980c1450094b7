package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
)

// TestSimServeSharesANetwork runs wildcatd sim serve and a daemon whose sim
// account connects to it (drivers.sim.network_url): a message posted to
// the server is stored by the daemon and then acknowledged, as the stats
// show; SIGTERM stops the server cleanly.
func TestSimServeSharesANetwork(t *testing.T) {
	cmd := exec.Command(binary, "sim", "serve", "--listen", "127.0.0.1:0")
	cmd.Env = cleanEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "sim network on ")
	if !ok {
		t.Fatalf("first line %q", line)
	}

	cfg := writeConfig(t, fmt.Sprintf(`data_dir: %s
http: {addr: "127.0.0.1:0"}
accounts: [{id: shared, driver: sim}]
drivers: {sim: {network_url: %q}}
`, t.TempDir(), url))
	d := startDaemon(t, cfg)
	base := d.waitReady(t)

	type stats struct {
		Accounts map[string]struct {
			ConnectedFrom string
			Acked         int
		}
	}
	getStats := func() (stats, error) {
		var st stats
		resp, err := http.Get(url + "/v1/stats")
		if err != nil {
			return st, err
		}
		defer resp.Body.Close()
		return st, json.NewDecoder(resp.Body).Decode(&st)
	}
	poll.Until(t, 60*time.Second, func() error {
		st, err := getStats()
		if err != nil {
			return err
		}
		if st.Accounts["shared"].ConnectedFrom == "" {
			return fmt.Errorf("account not connected to the sim server: %+v", st)
		}
		return nil
	})
	resp, err := http.Post(url+"/v1/accounts/shared/inbound", "application/json", strings.NewReader(`{"from":"15550001111","id":"SHARED1","text":"over the wire"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("inbound: %d", resp.StatusCode)
	}
	poll.Until(t, 30*time.Second, func() error {
		st, err := getStats()
		if err != nil {
			return err
		}
		if st.Accounts["shared"].Acked != 1 {
			return fmt.Errorf("acked %d", st.Accounts["shared"].Acked)
		}
		return nil
	})
	resp, err = http.Get(base + "/v1/accounts/shared/messages/SHARED1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("acked message not in the daemon's store: %d", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sim serve after SIGTERM: %v", err)
	}
}

func TestSimServeUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"sim"}, {"sim", "serve", "extra"}, {"sim", "serve", "--listen", "nowhere"}, {"sim", "serve", "--delivered-delay", "0s"}} {
		if r := wildcatd(t, nil, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d; stderr %s", args, r.code, exitUsage, r.stderr)
		}
	}
}
