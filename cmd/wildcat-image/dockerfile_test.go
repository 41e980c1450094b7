package main

import (
	"debug/elf"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wildcathub/wildcat/core/config"
)

const header = "FROM golang:1.26 AS build\nWORKDIR /src\nFROM scratch\n"

func TestImageConfigFromDockerfile(t *testing.T) {
	for _, tc := range []struct {
		name, runtime string
		want          v1.Config
		err           string
	}{{
		name: "every instruction",
		runtime: `# a comment
ENV PATH=/opt/bin A="b c"
LABEL org.opencontainers.image.title=wildcat
WORKDIR /opt
WORKDIR app
USER 65532:65532
EXPOSE 8080 9090/udp
VOLUME ["/data", "/cache"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --retries=3 \
  CMD ["/bin/x", "healthcheck"]
CMD ["ignored"]
ENTRYPOINT ["/bin/x"]
CMD ["run"]
ENV A=d
`,
		want: v1.Config{
			Env: []string{"PATH=/opt/bin", "A=d"}, Labels: map[string]string{"org.opencontainers.image.title": "wildcat"},
			WorkingDir: "/opt/app", User: "65532:65532",
			ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/udp": {}},
			Volumes:      map[string]struct{}{"/data": {}, "/cache": {}}, StopSignal: "SIGTERM",
			Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "/bin/x", "healthcheck"}, Interval: 30 * time.Second,
				Timeout: 5 * time.Second, StartPeriod: time.Minute, Retries: 3},
			Entrypoint: []string{"/bin/x"}, Cmd: []string{"run"},
		},
	}, {
		name: "no instructions", runtime: "", want: v1.Config{WorkingDir: "/"},
	}, {
		name: "plain volume", runtime: "VOLUME /data /b\n",
		want: v1.Config{WorkingDir: "/", Volumes: map[string]struct{}{"/data": {}, "/b": {}}},
	}, {
		name: "shell-form entrypoint", runtime: "ENTRYPOINT /bin/x run\n", err: "Dockerfile:4: ENTRYPOINT: expected a JSON array",
	}, {
		name: "shell-form healthcheck", runtime: "HEALTHCHECK CMD curl -f localhost\n", err: "HEALTHCHECK: expected a JSON array",
	}, {
		name: "healthcheck without CMD", runtime: "HEALTHCHECK --interval=1s [\"x\"]\n", err: "expected [options] CMD",
	}, {
		name: "bad interval", runtime: "HEALTHCHECK --interval=soon CMD [\"x\"]\n", err: `--interval: "soon" is not a duration`,
	}, {
		name: "bad retries", runtime: "HEALTHCHECK --retries=3x CMD [\"x\"]\n", err: `--retries: "3x" is not a count`,
	}, {
		name: "unknown healthcheck option", runtime: "HEALTHCHECK --every=1s CMD [\"x\"]\n", err: "unknown option --every",
	}, {
		name: "RUN in the runtime stage", runtime: "RUN mkdir /x\n", err: "Dockerfile:4: RUN: not supported in the runtime stage",
	}, {
		name: "a variable in ENV", runtime: "ENV A=$B\n", err: "A: variables are not expanded",
	}, {
		name: "ENV without =", runtime: "ENV A b\n", err: "expected KEY=value pairs",
	}, {
		name: "user name with a variable", runtime: "USER $UID\n", err: "expected USER uid[:gid]",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			stages, err := parseDockerfile(strings.NewReader(header + tc.runtime))
			if err != nil {
				t.Fatal(err)
			}
			got, err := imageConfig(stages[1])
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestParseDockerfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, err string }{
		{"no FROM", "# nothing\n", "no FROM"},
		{"instruction before FROM", "ENV A=b\nFROM scratch\n", "Dockerfile:1: ENV: before the first FROM"},
		{"bad FROM", "FROM a b\n", "expected IMAGE [AS NAME]"},
		{"dangling continuation", "FROM scratch\nCMD [\"x\"] \\\n", "Dockerfile:2: continued past the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDockerfile(strings.NewReader(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func TestMakeSteps(t *testing.T) {
	text := "ARG GLOBAL=1\nFROM golang AS build\nWORKDIR /src\nRUN go mod download\nARG VERSION=dev\n" +
		"ARG V=x\nRUN make build-static VERSION=${VERSION} TAG=$VERSION\nRUN mkdir -p /rootfs/data\nFROM scratch\n"
	stages, err := parseDockerfile(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args map[string]string
		want [][]string
	}{
		{nil, [][]string{{"make", "build-static", "VERSION=dev", "TAG=dev"}}},
		{map[string]string{"VERSION": "v1.2.3"}, [][]string{{"make", "build-static", "VERSION=v1.2.3", "TAG=v1.2.3"}}},
	} {
		got, err := makeSteps(stages[0], tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("args %v: %q, want %q", tc.args, got, tc.want)
		}
	}
	stages, err = parseDockerfile(strings.NewReader("FROM golang AS build\nRUN make a && make b\nFROM scratch\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := makeSteps(stages[0], nil); err == nil || !strings.Contains(err.Error(), "one plain command") {
		t.Fatalf("a compound make step: %v", err)
	}
}

// TestLayoutFollowsCopy: the runtime stage's COPYs decide where files land,
// who owns them and their modes.
func TestLayoutFollowsCopy(t *testing.T) {
	root := t.TempDir()
	write := func(rel string, mode fs.FileMode) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("overlay/etc/passwd", 0o664)
	write("scripts/a.js", 0o600)
	write("scripts/sub/b.js", 0o644)
	write("bin/static/wildcatd", 0o775)
	write("certs.pem", 0o644)
	dockerfile := filepath.Join(root, "Dockerfile")
	text := "FROM golang AS build\nWORKDIR /src\nRUN make build-static\nFROM scratch\n" +
		"COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n" +
		"COPY --from=build /rootfs/tmp /tmp\n" +
		"COPY --from=build --chown=65532:65532 /rootfs/data /data\n" +
		"COPY overlay/ /\n" +
		"COPY scripts/ /opt/w/scripts/\n" +
		"COPY --from=build /src/bin/static/wildcatd /opt/w/bin/\n"
	if err := os.WriteFile(dockerfile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := readPlan(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	files, err := layout(p, root, filepath.Join(root, "certs.pem"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for n, e := range files {
		got[n] = e.mode.String() + " " + strings.TrimPrefix(e.host, root+"/") + " " + strconv.Itoa(e.uid) + ":" + strconv.Itoa(e.gid)
	}
	want := map[string]string{
		"/etc":                               "drwxr-xr-x  0:0",
		"/etc/passwd":                        "-rw-r--r-- overlay/etc/passwd 0:0",
		"/etc/ssl":                           "drwxr-xr-x  0:0",
		"/etc/ssl/certs":                     "drwxr-xr-x  0:0",
		"/etc/ssl/certs/ca-certificates.crt": "-rw-r--r-- certs.pem 0:0",
		"/tmp":                               "dtrwxrwxrwx  0:0",
		"/data":                              "drwxr-xr-x  65532:65532",
		"/opt":                               "drwxr-xr-x  0:0",
		"/opt/w":                             "drwxr-xr-x  0:0",
		"/opt/w/scripts":                     "drwxr-xr-x  0:0",
		"/opt/w/scripts/a.js":                "-rw-r--r-- scripts/a.js 0:0",
		"/opt/w/scripts/sub":                 "drwxr-xr-x  0:0",
		"/opt/w/scripts/sub/b.js":            "-rw-r--r-- scripts/sub/b.js 0:0",
		"/opt/w/bin":                         "drwxr-xr-x  0:0",
		"/opt/w/bin/wildcatd":                "-rwxr-xr-x bin/static/wildcatd 0:0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("layout\n%v\nwant\n%v", got, want)
	}

	// A path of the build stage with no counterpart here is named.
	if err := os.WriteFile(dockerfile, []byte(text+"COPY --from=build /usr/lib/x /x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err = readPlan(dockerfile); err != nil {
		t.Fatal(err)
	}
	if _, err := layout(p, root, ""); err == nil || !strings.Contains(err.Error(), "/usr/lib/x has no counterpart") {
		t.Fatalf("unknown build-stage path: %v", err)
	}
}

// TestRepositoryDockerfile: the repository's Dockerfile reads, and says
// what the image promises (TestImage checks the built image against it).
func TestRepositoryDockerfile(t *testing.T) {
	p, err := readPlan(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	c := p.config
	if c.User != "65532:65532" || c.WorkingDir != "/opt/wildcat" || !reflect.DeepEqual(c.Entrypoint, []string{"/opt/wildcat/bin/wildcatd"}) ||
		!reflect.DeepEqual(c.Cmd, []string{"run"}) || c.Healthcheck == nil ||
		!reflect.DeepEqual(c.Healthcheck.Test, []string{"CMD", "/opt/wildcat/bin/wildcatd", "healthcheck"}) {
		t.Fatalf("runtime configuration %+v", c)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Fatalf("volumes %v, want /data", c.Volumes)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Fatalf("ports %v, want 8080/tcp", c.ExposedPorts)
	}
	steps, err := makeSteps(p.build, nil)
	if err != nil || !reflect.DeepEqual(steps, [][]string{{"make", "build-static", "VERSION=dev"}}) {
		t.Fatalf("make step %q (%v), want make build-static", steps, err)
	}
	// Every COPY resolves on this machine once the make step has run
	// (bin/static is checked by TestImage).
	if _, err := layout(plan{build: p.build, copies: withoutBuildOutput(p.copies)}, filepath.Join("..", ".."), "/dev/null"); err != nil {
		t.Fatal(err)
	}
}

func withoutBuildOutput(cs []copyInstr) []copyInstr {
	var out []copyInstr
	for _, c := range cs {
		if len(c.srcs) == 1 && strings.HasPrefix(c.srcs[0], "/src/bin/") {
			continue
		}
		out = append(out, c)
	}
	return out
}

// TestContainerConfigIsTheShippedOne: the image's config.yaml is the
// repository's with data_dir and http.addr changed, and nothing else.
func TestContainerConfigIsTheShippedOne(t *testing.T) {
	load := func(p string) config.Config {
		l, err := config.Load(config.Source{Path: p})
		if err != nil {
			t.Fatal(err)
		}
		return l.Config
	}
	shipped := load(filepath.Join("..", "..", "config.yaml"))
	container := load(filepath.Join("rootfs", "opt", "wildcat", "config.yaml"))
	if container.DataDir != "/data" || container.HTTP.Addr != "0.0.0.0:8080" {
		t.Fatalf("container data_dir %q, http.addr %q; want /data and 0.0.0.0:8080", container.DataDir, container.HTTP.Addr)
	}
	container.DataDir, container.HTTP.Addr = shipped.DataDir, shipped.HTTP.Addr
	if !reflect.DeepEqual(container, shipped) {
		t.Fatalf("cmd/wildcat-image/rootfs/opt/wildcat/config.yaml differs from config.yaml beyond data_dir and http.addr:\n%+v\n%+v", container, shipped)
	}
}

// TestStaticCheckCatchesDynamicBinaries: the check TestImage applies to the
// image's binaries flags a dynamically linked one.
func TestStaticCheckCatchesDynamicBinaries(t *testing.T) {
	if err := staticELF("/bin/sh"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("/bin/sh: %v; want it reported as dynamically linked", err)
	}
	if err := staticELF(os.Args[0]); err == nil {
		t.Fatalf("%s (the test binary, with symbols): no error", os.Args[0])
	}
}

// staticELF fails for a binary that asks for an ELF interpreter or carries
// a dynamic section (scratch has no loader) or keeps its symbol table.
func staticELF(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			return &elfError{p, "is dynamically linked (" + prog.Type.String() + ")"}
		}
	}
	if f.Section(".symtab") != nil {
		return &elfError{p, "keeps its symbol table (build with -ldflags -s)"}
	}
	return nil
}

type elfError struct{ path, what string }

func (e *elfError) Error() string { return e.path + " " + e.what }
