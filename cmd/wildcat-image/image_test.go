//go:build image

// The image test builds the image as `make image` does (the Dockerfile's
// make step, then go-containerregistry), reads the tarball back and runs
// the image's entrypoint and HEALTHCHECK from its unpacked filesystem.
// It compiles static binaries (minutes on a fresh machine), so it has its
// own target: make test-image (.ci/run runs it).
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestMain stops the MongoDB-compatible test server after the tests.
func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func TestImage(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()

	// Build, as make image does.
	out := filepath.Join(t.TempDir(), "wildcat.tar")
	var buildLog bytes.Buffer
	o := options{root: root, dockerfile: filepath.Join(root, "Dockerfile"), out: out, tag: "wildcat:dev", version: "image-test", caCerts: defaultCACerts()}
	if o.caCerts == "" {
		t.Fatal("no CA bundle on this machine (Debian's ca-certificates)")
	}
	digest, err := build(ctx, o, &buildLog, &buildLog)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, buildLog.String())
	}

	// Read it back as docker load would: the tag names it.
	tag, err := name.NewTag("wildcat:dev")
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := img.Digest(); err != nil || d.String() != digest {
		t.Fatalf("digest read back %v (%v), built %s", d, err, digest)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}

	// Its configuration is the Dockerfile's runtime stage's.
	p, err := readPlan(o.dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cf.Config, p.config) {
		t.Fatalf("image config\n%+v\nDockerfile says\n%+v", cf.Config, p.config)
	}
	cfg := cf.Config
	if _, ok := cfg.Volumes["/data"]; !ok || len(cfg.Entrypoint) == 0 || cfg.Healthcheck == nil ||
		len(cfg.Healthcheck.Test) < 2 || cfg.Healthcheck.Test[0] != "CMD" || len(cfg.ExposedPorts) != 1 {
		t.Fatalf("the image lacks a /data volume, an entrypoint, an exec-form HEALTHCHECK or one exposed port: %+v", cfg)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Fatalf("platform %s/%s", cf.OS, cf.Architecture)
	}

	rootfs := t.TempDir()
	headers := unpack(t, img, rootfs)

	// Non-root: USER is a uid other than 0, named in the image's
	// /etc/passwd, and it owns the data volume.
	uidText, gidText, _ := strings.Cut(cfg.User, ":")
	uid, err := strconv.Atoi(uidText)
	if err != nil || uid == 0 {
		t.Fatalf("USER %q: want a numeric non-root uid (Kubernetes' runAsNonRoot checks it without a passwd lookup)", cfg.User)
	}
	passwd, err := os.ReadFile(filepath.Join(rootfs, "etc", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains("\n"+string(passwd), fmt.Sprintf(":x:%d:%s:", uid, gidText)) {
		t.Fatalf("/etc/passwd has no entry for %s:\n%s", cfg.User, passwd)
	}
	if h := headers["data"]; h == nil || h.Typeflag != tar.TypeDir || h.Uid != uid || strconv.Itoa(h.Gid) != gidText {
		t.Fatalf("/data: %+v; want a directory owned by %s", h, cfg.User)
	}
	if h := headers["tmp"]; h == nil || h.Mode&0o1777 != 0o1777 {
		t.Fatalf("/tmp (the plugins' sockets): %+v; want mode 1777", h)
	}
	if h := headers["etc/ssl/certs/ca-certificates.crt"]; h == nil || h.Size == 0 {
		t.Fatal("no CA certificates at /etc/ssl/certs/ca-certificates.crt")
	}

	// Static: no binary of the image asks for an ELF interpreter (the
	// dynamic loader, which scratch lacks) or carries a dynamic section.
	bins := 0
	for n, h := range headers {
		if h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 {
			continue
		}
		bins++
		if err := staticELF(filepath.Join(rootfs, filepath.FromSlash(n))); err != nil {
			t.Error(err)
		}
		// Built by make build-static: no cgo, no build paths, and the time
		// zone database inside (scratch has no /usr/share/zoneinfo; the
		// business-hours rule takes Europe/Berlin).
		bi, err := buildinfo.ReadFile(filepath.Join(rootfs, filepath.FromSlash(n)))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		settings := map[string]string{}
		for _, st := range bi.Settings {
			settings[st.Key] = st.Value
		}
		if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || !slices.Contains(strings.Split(settings["-tags"], ","), "timetzdata") {
			t.Errorf("%s built with %v; want CGO_ENABLED=0, -trimpath and -tags timetzdata", n, settings)
		}
	}
	if bins < 4 {
		t.Fatalf("%d executables in the image; want wildcatd and its three plugins", bins)
	}

	// The entrypoint on the image's own configuration (the embedded
	// store), and as compose.yaml runs it: on MongoDB through
	// WILDCAT_MONGODB_URI (here the tests' MongoDB-compatible server).
	t.Run("embedded store", func(t *testing.T) { runImage(ctx, t, rootfs, cfg, true, nil) })
	t.Run("mongodb", func(t *testing.T) {
		runImage(ctx, t, rootfs, cfg, false, []string{
			"WILDCAT_MONGODB_URI=" + storetest.URI(t), "WILDCAT_MONGODB_DATABASE=" + storetest.DatabaseName(t)})
	})

	// The same inputs make the same image (no timestamps, sorted files).
	again, err := assemble(p, root, o.caCerts)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := again.Digest(); err != nil || d.String() != digest {
		t.Fatalf("rebuilt digest %v (%v), first %s", d, err, digest)
	}
}

// unpack extracts the image's filesystem into dir as a container runtime
// would (modes kept; owners recorded, not applied) and answers each
// entry's header by its path.
func unpack(t *testing.T, img v1.Image, dir string) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	headers := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n := path.Clean(h.Name)
		if strings.HasPrefix(n, "../") || path.IsAbs(n) {
			t.Fatalf("entry %q escapes the root", h.Name)
		}
		headers[n] = h
		target := filepath.Join(dir, filepath.FromSlash(n))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, target); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("%s: unexpected entry type %c", h.Name, h.Typeflag)
		}
	}
	return headers
}

func get(t *testing.T, url, key string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// freePort is a port nothing listens on now: the health check reads the
// port from the configuration, so it cannot be 0.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer the daemon's output goroutines and the test
// share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runImage starts the entrypoint from the unpacked image, in its working
// directory, with its environment; only the data directory and the port
// change, through their WILDCAT_* variables (and extra, the store's). It
// runs the image's HEALTHCHECK, checks the API and stops the daemon.
func runImage(ctx context.Context, t *testing.T, rootfs string, cfg v1.Config, embedded bool, extra []string) {
	entry := filepath.Join(rootfs, filepath.FromSlash(cfg.Entrypoint[0]))
	dataDir := t.TempDir()
	port := freePort(t)
	env := append(append([]string(nil), cfg.Env...),
		"WILDCAT_DATA_DIR="+dataDir,
		"WILDCAT_HTTP_ADDR=0.0.0.0:"+strconv.Itoa(port))
	env = append(env, extra...)
	workDir := filepath.Join(rootfs, filepath.FromSlash(cfg.WorkingDir))
	daemon := exec.Command(entry, append(cfg.Entrypoint[1:], cfg.Cmd...)...)
	daemon.Dir, daemon.Env = workDir, env
	var daemonLog syncBuffer
	daemon.Stdout, daemon.Stderr = &daemonLog, &daemonLog
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			daemon.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", daemonLog.String())
		}
	}()

	// The image's HEALTHCHECK, run from the image: unhealthy (exit 1)
	// until the daemon is ready, then 0.
	healthcheck := func() (int, string) {
		argv := cfg.Healthcheck.Test[1:]
		cmd := exec.CommandContext(ctx, filepath.Join(rootfs, filepath.FromSlash(argv[0])), argv[1:]...)
		cmd.Dir, cmd.Env = workDir, env
		b, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(b)
		}
		if err != nil {
			t.Fatalf("healthcheck: %v", err)
		}
		return 0, string(b)
	}
	poll.Until(t, 2*time.Minute, func() error {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("the daemon exited: %v", err)
		default:
		}
		if code, out := healthcheck(); code != 0 {
			return fmt.Errorf("healthcheck exit %d: %s", code, out)
		}
		return nil
	})

	api := "http://127.0.0.1:" + strconv.Itoa(port)
	if status, body := get(t, api+"/readyz", ""); status != http.StatusOK {
		t.Fatalf("/readyz: %d %s", status, body)
	}
	// The API is keyed (the container listens beyond loopback): the
	// admin key the first start wrote into the data volume opens it.
	key, err := os.ReadFile(filepath.Join(dataDir, "admin.key"))
	if err != nil {
		t.Fatalf("admin key in the data directory: %v", err)
	}
	if status, _ := get(t, api+"/v1/accounts/demo", ""); status != http.StatusUnauthorized {
		t.Fatalf("GET /v1/accounts/demo without a key: %d, want 401", status)
	}
	status, body := get(t, api+"/v1/accounts/demo", strings.TrimSpace(string(key)))
	var acct struct{ ID, Driver string }
	if status != http.StatusOK || json.Unmarshal(body, &acct) != nil || acct.ID != "demo" || acct.Driver != "sim" {
		t.Fatalf("GET /v1/accounts/demo: %d %s; want the shipped sim account", status, body)
	}
	// The plugins the configuration names started from the image.
	status, body = get(t, api+"/v1/plugins", strings.TrimSpace(string(key)))
	for _, pl := range []string{"echo", "webhook", "mediaarchive"} {
		if status != http.StatusOK || !bytes.Contains(body, []byte(`"name":"`+pl+`"`)) {
			t.Fatalf("GET /v1/plugins: %d %s; want %s", status, body, pl)
		}
	}
	if bytes.Contains(body, []byte(`"state":"stopped"`)) || bytes.Contains(body, []byte(`"state":"restarting"`)) {
		t.Fatalf("a plugin is not running: %s", body)
	}

	// The shipped rules loaded from the image's scripts/ (the pipeline's
	// glob is relative to the working directory).
	status, body = get(t, api+"/v1/rules", strings.TrimSpace(string(key)))
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"name":"20-business-hours"`)) || bytes.Contains(body, []byte(`"loadError"`)) {
		t.Fatalf("GET /v1/rules: %d %s; want the shipped rules loaded", status, body)
	}

	// A stop (docker stop's SIGTERM) is clean, and the health check then
	// reports unhealthy.
	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	stopped = true
	if code, out := healthcheck(); code != 1 {
		t.Fatalf("healthcheck with the daemon stopped: exit %d (%s), want 1", code, out)
	}
	// The store was the one configured: the embedded engine's file in
	// the data directory, or none there.
	if _, err := os.Stat(filepath.Join(dataDir, "wildcat.db")); (err == nil) != embedded {
		t.Fatalf("data directory's wildcat.db: %v; embedded store %v", err, embedded)
	}

}
