package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/poll"
)

// BenchmarkFootprint measures memory the way an operator sees it: the
// resident set (VmRSS) of the wildcatd process started as `make run` starts
// it (the shipped config.yaml, its three plugins, the embedded store),
// once idle, and of each plugin process — beside the floors, Go programs
// that only listen for HTTP (idlehttp) or serve gRPC over mutual TLS as a
// plugin does (idlegrpc), measured in the same run. Then 200 sim
// accounts are created and connected over REST and the daemon's growth
// per connected account is reported.
//
//	make bench   (or: go test -run '^$' -bench Footprint ./cmd/wildcatd/)
func BenchmarkFootprint(b *testing.B) {
	if raceEnabled {
		b.Skip("the race detector multiplies memory; run without -race")
	}
	// One run: it takes longer than the bench time, so b.N stays 1 (the
	// figures are sizes, not costs per iteration).
	dir := b.TempDir()
	plugins := filepath.Join(dir, "bin", "plugins")
	build := exec.Command("go", "build", "-o", plugins+string(filepath.Separator),
		"../../sdk/examples/echo", "../../plugins/webhook", "../../plugins/mediaarchive")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build plugins: %v\n%s", err, out)
	}
	floorBin := filepath.Join(dir, "idlehttp")
	if out, err := exec.Command("go", "build", "-o", floorBin, "./testdata/idlehttp").CombinedOutput(); err != nil {
		b.Fatalf("build idlehttp: %v\n%s", err, out)
	}
	grpcFloorBin := filepath.Join(dir, "idlegrpc")
	if out, err := exec.Command("go", "build", "-o", grpcFloorBin, "./testdata/idlegrpc").CombinedOutput(); err != nil {
		b.Fatalf("build idlegrpc: %v\n%s", err, out)
	}
	// The shipped config, run from a directory laid out like the
	// repository's after `make build`.
	shipped, err := os.ReadFile("../../config.yaml")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), shipped, 0o600); err != nil {
		b.Fatal(err)
	}
	scripts, _ := filepath.Abs("../../scripts")
	if err := os.Symlink(scripts, filepath.Join(dir, "scripts")); err != nil {
		b.Fatal(err)
	}

	floor := startFloor(b, floorBin)
	grpcFloor := startFloor(b, grpcFloorBin)

	cmd := exec.Command(binary, "run", "--log-format", "json", "--http-addr", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	p := startDaemonCmd(b, cmd)
	base := p.waitReady(b)

	daemonIdle := settledRSS(b, cmd.Process.Pid)
	floorIdle := settledRSS(b, floor.Process.Pid)
	grpcFloorIdle := settledRSS(b, grpcFloor.Process.Pid)
	b.ReportMetric(grpcFloorIdle/1024, "floor-grpc-idle-MB")
	b.ReportMetric(daemonIdle/1024, "daemon-idle-MB")
	// The resident set is mostly pages of the binary, file-backed and
	// shared, whose count also depends on how the page cache holds the file
	// (a just-linked binary maps several MB more than one read back from
	// disk). The anonymous part — heap, stacks, runtime — is the process's
	// own and steadier between runs.
	daemonAnon := statusKB(b, cmd.Process.Pid, "RssAnon")
	b.ReportMetric(daemonAnon/1024, "daemon-idle-anon-MB")
	b.ReportMetric(floorIdle/1024, "floor-http-idle-MB")
	var list struct {
		Plugins []struct {
			Name string `json:"name"`
			PID  int    `json:"pid"`
		} `json:"plugins"`
	}
	if err := getJSON(base+"/v1/plugins", &list); err != nil {
		b.Fatal(err)
	}
	var pluginsKB, pluginsAnonKB float64
	for _, pl := range list.Plugins {
		kb := settledRSS(b, pl.PID)
		pluginsKB += kb
		pluginsAnonKB += statusKB(b, pl.PID, "RssAnon")
		b.ReportMetric(kb/1024, "plugin-"+pl.Name+"-idle-MB")
	}

	const accounts = 200
	before := daemonIdle
	for i := range accounts {
		id := fmt.Sprintf("fp%03d", i)
		post(b, base+"/v1/accounts", fmt.Sprintf(`{"id":%q,"driver":"sim"}`, id), http.StatusCreated)
		post(b, base+"/v1/accounts/"+id+"/connect", "", http.StatusAccepted)
	}
	for i := range accounts {
		waitConnected(b, base, fmt.Sprintf("fp%03d", i))
	}
	after := settledRSS(b, cmd.Process.Pid)
	perAccount := (after - before) / accounts
	b.ReportMetric(perAccount, "per-sim-account-KB")
	b.Logf("idle: wildcatd %.1f MB (%.1f MB anonymous), its %d plugin processes %.1f MB together (%.1f MB anonymous); the floors (Go programs that only serve HTTP, or gRPC over mutual TLS) %.1f MB and %.1f MB; %d connected sim accounts add %.0f KB each",
		daemonIdle/1024, daemonAnon/1024, len(list.Plugins), pluginsKB/1024, pluginsAnonKB/1024, floorIdle/1024, grpcFloorIdle/1024, accounts, perAccount)
}

// startFloor starts a floor program and waits for the line it prints once
// it listens.
func startFloor(b *testing.B, bin string) *exec.Cmd {
	cmd := exec.Command(bin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		b.Fatalf("%s: %v", bin, err)
	}
	return cmd
}

// settledRSS is pid's resident set in KB once it has stopped changing:
// three readings a second apart within 1% of each other.
func settledRSS(b *testing.B, pid int) float64 {
	var last []float64
	var kb float64
	poll.Until(b, 60*time.Second, func() error {
		v, err := rssKB(pid)
		if err != nil {
			return err
		}
		last = append(last, v)
		if len(last) > 3 {
			last = last[1:]
		}
		if len(last) < 3 {
			time.Sleep(time.Second)
			return fmt.Errorf("%d readings", len(last))
		}
		lo, hi := min(last[0], last[1], last[2]), max(last[0], last[1], last[2])
		if hi-lo > hi/100 {
			time.Sleep(time.Second)
			return fmt.Errorf("rss still moving: %v", last)
		}
		kb = v
		return nil
	})
	return kb
}

// rssKB reads VmRSS from /proc/PID/status.
func rssKB(pid int) (float64, error) { return statusField(pid, "VmRSS") }

// statusKB is a field of /proc/PID/status, in KB.
func statusKB(b *testing.B, pid int, field string) float64 {
	kb, err := statusField(pid, field)
	if err != nil {
		b.Fatal(err)
	}
	return kb
}

func statusField(pid int, field string) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	return 0, fmt.Errorf("no %s for pid %d", field, pid)
}

func post(b *testing.B, url, body string, want int) {
	b.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apikeystest.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("POST %s: %d, want %d", url, resp.StatusCode, want)
	}
}
