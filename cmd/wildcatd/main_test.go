package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

var binary string

// TestMain builds the real binary once: exit codes, signals and stderr are
// what operators see, so they are tested on the process itself.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wildcatd-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "wildcatd")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build wildcatd: %v\n%s", err, out)
		os.Exit(1)
	}
	apikeystest.Install() // requests to the daemons carry the admin key cleanEnv provisions
	code := storetest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func wildcatd(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// cleanEnv drops WILDCAT_* so the developer's shell cannot change results,
// and provisions the test admin key (apikeystest): daemons create it at
// their first start, client subcommands send it.
func cleanEnv() []string {
	env := []string{"WILDCAT_HTTP_ADMIN_KEY=" + apikeystest.AdminToken, "WILDCAT_API_KEY=" + apikeystest.AdminToken}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WILDCAT_") {
			env = append(env, kv)
		}
	}
	return env
}

// firstStartEnv is cleanEnv without the provisioned admin key: the daemon
// makes a random one at its first start, as for a user.
func firstStartEnv() []string {
	var env []string
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "WILDCAT_HTTP_ADMIN_KEY=") && !strings.HasPrefix(kv, "WILDCAT_API_KEY=") {
			env = append(env, kv)
		}
	}
	return env
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVersion(t *testing.T) {
	r := wildcatd(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "wildcatd ") || !strings.Contains(r.stdout, runtime.Version()) {
		t.Fatalf("version: %+v", r)
	}
}

// TestOpenAPICommand: wildcatd openapi prints the document the API serves,
// which CI lints (.ci/run).
func TestOpenAPICommand(t *testing.T) {
	r := wildcatd(t, nil, "openapi")
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &doc) != nil || doc.OpenAPI != "3.1.0" || len(doc.Paths) != len(pathsOf(api.Operations())) {
		t.Fatalf("openapi: exit %d, stderr %q, document %.200s", r.code, r.stderr, r.stdout)
	}
	if r := wildcatd(t, nil, "openapi", "extra"); r.code != 2 {
		t.Errorf("openapi extra: exit %d, want 2", r.code)
	}
}

func pathsOf(ops []api.Operation) map[string]bool {
	out := map[string]bool{}
	for _, o := range ops {
		out[o.Path] = true
	}
	return out
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"config"}, {"store", "eat"}, {"run", "--no-such-flag"}, {"run", "extra-arg"}} {
		r := wildcatd(t, nil, args...)
		if r.code != 2 || r.stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, r.code, r.stderr)
		}
	}
	if r := wildcatd(t, nil, "--help"); r.code != 0 || !strings.Contains(r.stdout, "config check") {
		t.Errorf("--help: %+v", r)
	}
	if r := wildcatd(t, nil, "help", "run"); r.code != 0 || !strings.Contains(r.stdout, "--http-addr") {
		t.Errorf("help run: %+v", r)
	}
	if r := wildcatd(t, nil, "--help"); !strings.Contains(r.stdout, "accounts pair ID") {
		t.Errorf("--help does not document accounts pair: %s", r.stdout)
	}
	if r := wildcatd(t, nil, "help", "accounts"); r.code != 0 || !strings.Contains(r.stdout, "--api") {
		t.Errorf("help accounts: %+v", r)
	}
	for _, args := range [][]string{{"accounts"}, {"accounts", "pair"}, {"accounts", "pair", "a", "b"}, {"accounts", "pair", "a", "--api", "ftp://x"}} {
		if r := wildcatd(t, nil, args...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, r.code, r.stderr)
		}
	}
}

// TestBadConfigExits2 checks `config check` and `run` alike: exit code 2 and
// exactly one line naming the key.
func TestBadConfigExits2(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		key  string
	}{
		{"unknown key", "http:\n  addr: 127.0.0.1:0\n  color: blue\n", nil, "http.color"},
		{"port out of range", "http:\n  addr: 127.0.0.1:99999\n", nil, "http.addr"},
		{"wrong type", "log: [1, 2]\n", nil, "log"},
		{"bad env value", "", []string{"WILDCAT_LOG_FORMAT=xml"}, "log.format"},
		{"bad pipeline stage", "pipeline:\n  - {name: ok, builtin: log}\n  - {name: x, builtin: nope}\n", nil, `pipeline[1] "x"`},
		// Found by package configcheck, not by config.Load.
		{"bad mongodb uri", "mongodb:\n  uri: postgres://x\n", nil, "mongodb.uri"},
		{"bad mongodb uri from env", "", []string{"WILDCAT_MONGODB_URI=mongodb://"}, "mongodb.uri"},
		{"bad webhook endpoint", "webhooks:\n  endpoints:\n    - {id: crm, url: \"ftp://example.com/h\"}\n", nil, "webhooks.endpoints[0].url"},
		{"bad plugin", "plugins:\n  echo: {args: [-v]}\n", nil, "plugins.echo.path"},
		{"stage naming an undeclared plugin", "pipeline:\n  - {name: e, plugin: echo}\n", nil, `pipeline[0] "e"`},
		{"media archive s3 target without bucket", "plugins:\n  mediaarchive:\n    path: bin/plugins/mediaarchive\n    config: {targets: [s3], s3: {region: eu-west-1}}\n", nil, "plugins.mediaarchive.config.s3.bucket"},
		{"media archive s3 bad encryption", "plugins:\n  mediaarchive:\n    path: bin/plugins/mediaarchive\n    config: {targets: [s3], s3: {bucket: media, sse: aws:kms, sse_kms_key: k1}}\n", nil, "plugins.mediaarchive.config.s3.sse_kms_key"},
		// Keys off beyond loopback: refused, saying why.
		{"non-loopback without keys", "http:\n  addr: 0.0.0.0:0\n  auth: false\n", nil, "http.auth"},
		{"every interface without keys", "", []string{"WILDCAT_HTTP_ADDR=:0", "WILDCAT_HTTP_AUTH=false"}, "http.auth"},
		{"bad trusted proxy", "http:\n  trusted_proxies: [10.0.0.0/8, proxy.example]\n", nil, "http.trusted_proxies[1]"},
		{"tls key without cert", "http:\n  tls_key_file: key.pem\n", nil, "http.tls_cert_file"},
		{"tls files that do not load", "http:\n  tls_cert_file: /nonexistent/c.pem\n  tls_key_file: /nonexistent/k.pem\n", nil, "http.tls_cert_file"},
		{"bad admin key", "", []string{"WILDCAT_HTTP_ADMIN_KEY=hunter2"}, "http.admin_key"},
		// Encryption at rest: the keys are checked before anything runs.
		{"short encryption key", "", []string{"WILDCAT_ENCRYPTION_KEYS=k1:c2hvcnQ="}, "encryption.keys"},
		{"encryption key not base64", "encryption:\n  keys: \"k1:***\"\n", nil, "encryption.keys"},
		{"unknown active key", "encryption:\n  keys: k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n  active_key: k9\n", nil, "encryption.active_key"},
		{"missing key file", "encryption:\n  key_file: /nonexistent/wildcat.keys\n", nil, "encryption.key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.yaml)
			for _, args := range [][]string{{"config", "check", "--config", path}, {"run", "--config", path}} {
				r := wildcatd(t, tt.env, args...)
				if r.code != 2 {
					t.Fatalf("%v: exit %d, want 2 (stderr %q)", args, r.code, r.stderr)
				}
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				if len(lines) != 1 || !strings.Contains(lines[0], "config: "+tt.key+":") {
					t.Fatalf("%v: stderr %q, want one line naming %s", args, r.stderr, tt.key)
				}
			}
		})
	}
	r := wildcatd(t, []string{"WILDCAT_CONFIG=/nonexistent/wildcat.yaml"}, "config", "check")
	if r.code != 2 || !strings.Contains(r.stderr, "/nonexistent/wildcat.yaml") {
		t.Fatalf("missing file named by WILDCAT_CONFIG: %+v", r)
	}
}

func TestConfigCheckOK(t *testing.T) {
	r := wildcatd(t, nil, "config", "check", "--config", filepath.Join("..", "..", "config.yaml"))
	if abs, _ := filepath.Abs(filepath.Join("..", "..", "config.yaml")); r.code != 0 {
		r = wildcatd(t, nil, "config", "check", "--config", abs)
	}
	if r.code != 0 || !strings.Contains(r.stdout, "configuration OK") {
		t.Fatalf("shipped config: %+v", r)
	}
}

// daemonProcess is a running wildcatd whose JSON log is read for its address.
type daemonProcess struct {
	cmd  *exec.Cmd
	addr chan string
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

func startDaemon(t *testing.T, configPath string) *daemonProcess {
	t.Helper()
	return startDaemonBin(t, binary, configPath)
}

func startDaemonBin(t *testing.T, bin, configPath string) *daemonProcess {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", configPath, "--log-format", "json")
	cmd.Env = cleanEnv()
	return startDaemonCmd(t, cmd)
}

// startDaemonCmd starts a prepared `wildcatd run … --log-format json`.
func startDaemonCmd(t testing.TB, cmd *exec.Cmd) *daemonProcess {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &daemonProcess{cmd: cmd, addr: make(chan string, 1), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.log.Write(line)
			p.log.WriteByte('\n')
			p.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "http listening" {
				p.addr <- rec.Addr
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done; _ = cmd.Wait() })
	return p
}

func (p *daemonProcess) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *daemonProcess) waitReady(t testing.TB) string {
	t.Helper()
	var base string
	select {
	case a := <-p.addr:
		base = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon never listened; log:\n%s", p.logText())
	}
	poll.Until(t, 60*time.Second, func() error {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	return base
}

func (p *daemonProcess) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	err := p.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestRunServesAndKeepsDataAcrossRestart is the first-run path: the binary
// starts on the embedded SQLite store, answers /readyz, stops cleanly on
// SIGTERM, and what was stored is there after a restart.
func TestRunServesAndKeepsDataAcrossRestart(t *testing.T) {
	dataDir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf("data_dir: %s\nhttp:\n  addr: 127.0.0.1:0\n", dataDir))

	p := startDaemon(t, cfg)
	base := p.waitReady(t)
	resp, err := http.Post(base+"/v1/accounts", "application/json", strings.NewReader(`{"id":"survivor","driver":"sim"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create account: %d", resp.StatusCode)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM; log:\n%s", code, p.logText())
	}
	for _, msg := range []string{`"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(p.logText(), msg) {
			t.Errorf("log lacks %s:\n%s", msg, p.logText())
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "wildcat.db")); err != nil {
		t.Fatalf("no database file in the data dir: %v", err)
	}

	p = startDaemon(t, cfg)
	base = p.waitReady(t)
	var a struct {
		ID string `json:"id"`
	}
	if err := getJSON(base+"/v1/accounts/survivor", &a); err != nil || a.ID != "survivor" {
		t.Fatalf("account lost across restart: %+v %v", a, err)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("second run exit %d", code)
	}
}

// TestOldEmbeddedStoreStopsTheStart: a data_dir that still holds the
// FerretDB files of an earlier Wildcat must not be silently ignored (the
// daemon would start empty beside them): one line says what to do.
func TestOldEmbeddedStoreStopsTheStart(t *testing.T) {
	dataDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dataDir, "store"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "store", "wildcat.sqlite"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf("data_dir: %s\nhttp:\n  addr: 127.0.0.1:0\n", dataDir))
	out, err := exec.Command(binary, "run", "--config", cfg).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("started on a data dir with the old store: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "store copy") || !strings.Contains(string(out), filepath.Join(dataDir, "store")) {
		t.Fatalf("the refusal does not say what to do:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "wildcat.db")); err == nil {
		t.Fatal("a new database was created beside the old store")
	}
}
