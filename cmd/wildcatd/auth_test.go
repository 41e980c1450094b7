package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var printedKey = regexp.MustCompile(`wck_[a-z0-9-]+_[0-9a-f]{64}`)

// TestFirstStartAdminKey: the first start prints an admin key once (to
// stderr) and writes it to data_dir/admin.key mode 0600; it works, and
// requests without it get 401; the second start prints none and the key
// still works; the database does not hold it.
func TestFirstStartAdminKey(t *testing.T) {
	dataDir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf("data_dir: %s\nhttp:\n  addr: 127.0.0.1:0\n", dataDir))
	start := func() *daemonProcess {
		cmd := exec.Command(binary, "run", "--config", cfg, "--log-format", "json")
		cmd.Env = firstStartEnv()
		return startDaemonCmd(t, cmd)
	}

	p := start()
	base := p.waitReady(t)
	printed := printedKey.FindAllString(p.logText(), -1)
	if len(printed) != 1 {
		t.Fatalf("first start printed %d keys, want 1:\n%s", len(printed), p.logText())
	}
	tok := printed[0]
	file := filepath.Join(dataDir, "admin.key")
	b, err := os.ReadFile(file)
	if err != nil || strings.TrimSpace(string(b)) != tok {
		t.Fatalf("admin.key %q (%v), printed %q", b, err, tok)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.key mode %v", fi.Mode())
	}
	if got := statusWith(t, base+"/v1/accounts", tok); got != 200 {
		t.Fatalf("the printed key: %d", got)
	}
	if got := statusWith(t, base+"/v1/accounts", ""); got != 401 {
		t.Fatalf("no key: %d", got)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	db, _ := os.ReadFile(filepath.Join(dataDir, "wildcat.db"))
	if strings.Contains(string(db), tok[len(tok)-64:]) {
		t.Fatal("the database holds the key's secret")
	}

	p = start()
	base = p.waitReady(t)
	if again := printedKey.FindAllString(p.logText(), -1); len(again) != 0 {
		t.Fatalf("second start printed a key: %v", again)
	}
	if got := statusWith(t, base+"/v1/accounts", tok); got != 200 {
		t.Fatalf("the key after a restart: %d", got)
	}
	if b2, _ := os.ReadFile(file); string(b2) != string(b) {
		t.Fatalf("admin.key changed: %q", b2)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("second run exit %d", code)
	}
}

// statusWith GETs url with the key ("" : none at all).
func statusWith(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	// A bare transport: not the tests' default client, which adds a key.
	c := &http.Client{Transport: http.DefaultTransport}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestNonLoopbackWithoutKeysRefusesToStart: the real binary exits 2 with
// one line naming http.auth and saying why; with keys on the same address
// starts.
func TestNonLoopbackWithoutKeysRefusesToStart(t *testing.T) {
	cfg := writeConfig(t, fmt.Sprintf("data_dir: %s\nhttp:\n  addr: 0.0.0.0:0\n  auth: false\n", t.TempDir()))
	for _, args := range [][]string{{"run", "--config", cfg}, {"config", "check", "--config", cfg}} {
		r := wildcatd(t, nil, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "http.auth") || !strings.Contains(r.stderr, "loopback") ||
			!strings.Contains(r.stderr, "send as every account") {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	// Loopback without keys is allowed (local development).
	r := wildcatd(t, []string{"WILDCAT_HTTP_ADDR=127.0.0.1:0"}, "config", "check", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("loopback without keys: exit %d %q", r.code, r.stderr)
	}
}

// TestClientKeyLookup: the client subcommands send --key, else
// $WILDCAT_API_KEY, else the key file (--key-file, or admin.key under
// $WILDCAT_DATA_DIR or data/).
func TestClientKeyLookup(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin.key"), []byte("wck_from-file_x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		env        []string
		flag, file string
		want       string
		wantErr    bool
	}{
		{"flag wins", []string{"WILDCAT_API_KEY=env"}, "flag", "", "flag", false},
		{"environment", []string{"WILDCAT_API_KEY=env", "WILDCAT_DATA_DIR=" + dir}, "", "", "env", false},
		{"data dir's admin key", []string{"WILDCAT_DATA_DIR=" + dir}, "", "", "wck_from-file_x", false},
		{"explicit file", nil, "", filepath.Join(dir, "admin.key"), "wck_from-file_x", false},
		{"no key anywhere", []string{"WILDCAT_DATA_DIR=" + t.TempDir()}, "", "", "", false},
		{"explicit file missing", nil, "", filepath.Join(dir, "nope"), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cli{environ: tc.env}
			got, err := c.apiKey(tc.flag, tc.file, c.getenv("WILDCAT_DATA_DIR"))
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("key %q, err %v; want %q (error: %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
