package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
)

// readmeBlock is one ```sh block of README.md.
type readmeBlock struct {
	line   int    // of the opening fence
	text   string // the commands, as a reader pastes them
	skip   string // why it cannot run here; empty: it runs
	needs  string // a command it needs beyond bash and curl, e.g. sqlite3
	header string // its first line, to name it in the log
}

// readmeMarker is the HTML comment right before a block that does not run
// as is: `<!-- readme-test: skip (why) -->` or `<!-- readme-test: needs CMD -->`.
var readmeMarker = regexp.MustCompile(`^<!-- readme-test: (?:skip \((.+)\)|needs ([a-z0-9_-]+)) -->$`)

// readmeShellBlocks parses README.md: every ```sh block with its marker.
// A marker that is not followed by a ```sh block, or one it cannot read,
// is an error: a skip must be deliberate and visible.
func readmeShellBlocks(readme string) ([]readmeBlock, error) {
	var (
		blocks  []readmeBlock
		inBlock bool
		isSh    bool
		cur     readmeBlock
		body    []string
		marker  *readmeBlock // pending marker, from the previous non-blank line
		markerN int
	)
	for i, line := range strings.Split(readme, "\n") {
		n := i + 1
		if inBlock {
			if strings.TrimRight(line, " ") == "```" {
				inBlock = false
				if isSh {
					cur.text = strings.Join(body, "\n") + "\n"
					cur.header = strings.TrimSpace(body[0])
					blocks = append(blocks, cur)
				}
				continue
			}
			body = append(body, line)
			continue
		}
		if strings.HasPrefix(line, "```") {
			inBlock, isSh, body = true, strings.TrimSpace(line[3:]) == "sh", nil
			cur = readmeBlock{line: n}
			if marker != nil {
				if !isSh {
					return nil, fmt.Errorf("README.md:%d: readme-test marker before a %q block; markers belong before ```sh blocks", markerN, line)
				}
				cur.skip, cur.needs = marker.skip, marker.needs
				marker = nil
			}
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if marker != nil {
			return nil, fmt.Errorf("README.md:%d: readme-test marker not directly followed by a ```sh block", markerN)
		}
		if strings.HasPrefix(strings.TrimSpace(line), "<!-- readme-test") {
			m := readmeMarker.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil {
				return nil, fmt.Errorf("README.md:%d: unreadable marker %q; want <!-- readme-test: skip (reason) --> or <!-- readme-test: needs CMD -->", n, line)
			}
			marker, markerN = &readmeBlock{skip: m[1], needs: m[2]}, n
		}
	}
	if inBlock {
		return nil, fmt.Errorf("README.md: code block opened at line %d is never closed", cur.line)
	}
	if marker != nil {
		return nil, fmt.Errorf("README.md:%d: readme-test marker at the end of the file", markerN)
	}
	return blocks, nil
}

// freePort answers want if nothing listens on it, else a port the system
// picks.
func freePort(t *testing.T, want int) int {
	t.Helper()
	for _, addr := range []string{"127.0.0.1:" + strconv.Itoa(want), "127.0.0.1:0"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}

// curlWrapper is put first on the blocks' PATH: every curl call of a block
// fails it on a 4xx or 5xx answer (the README's calls use -s, which alone
// would hide one). A stream (curl -N) never ends by itself; it is cut after
// a few seconds, as a reader would press Ctrl-C, once its 200 has arrived.
const curlWrapper = `#!/usr/bin/env bash
stream=
for a in "$@"; do [ "$a" = -N ] && stream=1; done
if [ -z "$stream" ]; then exec %[1]q --fail-with-body --show-error "$@"; fi
%[1]q --fail-with-body --show-error --max-time 3 "$@"
rc=$?
[ "$rc" = 28 ] && rc=0
exit "$rc"
`

// TestReadmeShellBlocks runs every ```sh block of README.md, in order, as a
// reader pastes them into a shell in the repository after `make run`: the
// real binary with the shipped config.yaml (in a temporary copy of the
// repository, with freshly built plugins and its own data directory), the
// sim account demo connected, and a webhook receiver on localhost:9000 for
// the Webhooks example, whose daemon the README starts with
// WILDCAT_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true. Each block runs under bash
// with `set -eo pipefail`: every command must exit 0 and every curl call
// must get a 2xx or 3xx. Blocks marked `<!-- readme-test: skip (why) -->`
// are counted and logged by reason, and so are blocks marked `needs CMD`
// when CMD is not installed.
func TestReadmeShellBlocks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the README's shell blocks are bash")
	}
	bash, errBash := exec.LookPath("bash")
	curl, errCurl := exec.LookPath("curl")
	if errBash != nil || errCurl != nil {
		t.Skipf("the README's examples need bash and curl: %v %v", errBash, errCurl)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := readmeShellBlocks(string(readme))
	if err != nil {
		t.Fatal(err)
	}

	// The repository as `make build` leaves it: every top-level entry
	// linked, bin/ freshly built, config.yaml copied, no data yet.
	work := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch name := e.Name(); {
		case strings.HasPrefix(name, "."), name == "bin", name == "data", name == "config.yaml":
		default:
			if err := os.Symlink(filepath.Join(root, name), filepath.Join(work, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg, err := os.ReadFile(filepath.Join(root, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "config.yaml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	plugins := filepath.Join(work, "bin", "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(work, "bin", "wildcatd")); err != nil {
		t.Fatal(err)
	}
	// As the Makefile: every plugins/NAME, and the SDK's echo example.
	build := exec.Command("go", "build", "-o", plugins+"/", "./plugins/...", "./sdk/examples/echo")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build plugins: %v\n%s", err, out)
	}

	// The webhook receiver: answers 204 and keeps each body's type.
	var (
		mu       sync.Mutex
		received []string
	)
	recvPort := freePort(t, 9000)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(recvPort))
	if err != nil {
		t.Fatal(err)
	}
	recv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env struct{ Type string }
		_ = json.Unmarshal(body, &env)
		mu.Lock()
		received = append(received, env.Type)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	recv.Listener.Close()
	recv.Listener = l
	recv.Start()
	t.Cleanup(recv.Close)

	port := freePort(t, 8080)
	daemon := exec.Command(filepath.Join(work, "bin", "wildcatd"), "run", "--config", "config.yaml", "--log-format", "json")
	daemon.Dir = work
	// The first start makes the admin key the README's curl calls read
	// from data/admin.key.
	daemon.Env = append(firstStartEnv(),
		"WILDCAT_DATA_DIR="+filepath.Join(work, "data"),
		"WILDCAT_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"WILDCAT_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true")
	p := startDaemonCmd(t, daemon)
	base := p.waitReady(t)
	key, err := os.ReadFile(filepath.Join(work, "data", "admin.key"))
	if err != nil {
		t.Fatalf("the first start wrote no admin key: %v", err)
	}
	apikeystest.UseKey(strings.TrimPrefix(base, "http://"), strings.TrimSpace(string(key)))
	waitConnected(t, base, "demo") // the sim pairs by itself a few seconds after the start

	wrapper := t.TempDir()
	if err := os.WriteFile(filepath.Join(wrapper, "curl"), fmt.Appendf(nil, curlWrapper, curl), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(firstStartEnv(), "PATH="+wrapper+string(os.PathListSeparator)+os.Getenv("PATH"))
	rewrite := strings.NewReplacer("localhost:8080", "localhost:"+strconv.Itoa(port), "localhost:9000", "localhost:"+strconv.Itoa(recvPort))

	ran, skipped := 0, map[string][]int{}
	for _, b := range blocks {
		if b.skip == "" && b.needs != "" {
			if _, err := exec.LookPath(b.needs); err != nil {
				b.skip = b.needs + " is not installed"
			}
		}
		if b.skip != "" {
			skipped[b.skip] = append(skipped[b.skip], b.line)
			continue
		}
		ran++
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, bash, "-c", "set -eo pipefail -x\n"+rewrite.Replace(b.text))
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("README.md:%d (%s): %v\n%s", b.line, b.header, err, out)
		} else if testing.Verbose() {
			t.Logf("README.md:%d ran:\n%s", b.line, out)
		}
	}

	reasons := make([]string, 0, len(skipped))
	for r := range skipped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	nSkipped := 0
	for _, r := range reasons {
		nSkipped += len(skipped[r])
		t.Logf("skipped %d block(s), %s: README.md lines %v", len(skipped[r]), r, skipped[r])
	}
	t.Logf("ran %d of the README's %d shell blocks, skipped %d", ran, len(blocks), nSkipped)
	if ran == 0 {
		t.Fatal("no README shell block ran")
	}
	mu.Lock()
	got := strings.Join(received, " ")
	mu.Unlock()
	if strings.Contains(string(readme), "localhost:9000") && !strings.Contains(got, "webhook.test") {
		t.Errorf("the README's webhook example never reached the receiver on localhost:9000 (it got: %q)", got)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("daemon exit %d after the README's examples; log:\n%s", code, p.logText())
	}
}

// TestReadmeShellBlocksParsing: markers apply to the ```sh block right
// after them, and a marker that applies to nothing, or cannot be read, is
// an error rather than a silent skip.
func TestReadmeShellBlocksParsing(t *testing.T) {
	blocks, err := readmeShellBlocks("text\n\n<!-- readme-test: skip (needs a phone) -->\n\n```sh\na\n```\n" +
		"```go\nx\n```\n<!-- readme-test: needs sqlite3 -->\n```sh\nb\n```\n```sh\nc\n```\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []readmeBlock{{line: 5, text: "a\n", header: "a", skip: "needs a phone"},
		{line: 12, text: "b\n", header: "b", needs: "sqlite3"}, {line: 15, text: "c\n", header: "c"}}
	if fmt.Sprint(blocks) != fmt.Sprint(want) {
		t.Fatalf("blocks %+v, want %+v", blocks, want)
	}
	for name, readme := range map[string]string{
		"before a go block":   "<!-- readme-test: skip (x) -->\n```go\nx\n```\n",
		"before prose":        "<!-- readme-test: skip (x) -->\ntext\n```sh\nx\n```\n",
		"at the end":          "```sh\nx\n```\n<!-- readme-test: skip (x) -->\n",
		"unreadable":          "<!-- readme-test: skipped because -->\n```sh\nx\n```\n",
		"block never closed":  "```sh\nx\n",
		"skip without reason": "<!-- readme-test: skip -->\n```sh\nx\n```\n",
	} {
		if _, err := readmeShellBlocks(readme); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
