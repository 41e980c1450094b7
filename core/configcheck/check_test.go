package configcheck

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/pipeline"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestValidationErrors covers the paths that stop the daemon with exit 2
// found by the packages that use a value (config.Load's own are tested in
// package config): each must name the key and say what is wrong, on one
// line, as a *config.Error.
func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		key     string
		problem string // substring of the problem
	}{
		{"bad mongodb uri", "mongodb:\n  uri: postgres://x\n", "mongodb.uri", "not a valid MongoDB connection string"},
		{"pipeline unknown builtin", "pipeline:\n  - {name: a, builtin: log}\n  - {name: x, builtin: nope}\n", `pipeline[1] "x"`, `unknown builtin "nope"`},
		{"pipeline duplicate stage", "pipeline:\n  - {name: a, builtin: log}\n  - {name: a, builtin: drop}\n", `pipeline[1] "a"`, "duplicate name"},
		{"pipeline sink not wired", "pipeline:\n  - {name: hooks, sink: nowhere}\n", `pipeline[0] "hooks"`, `unknown sink "nowhere"`},
		{"webhook endpoint without id", "webhooks:\n  endpoints:\n    - {url: \"https://example.com/h\"}\n", "webhooks.endpoints[0].id", "not 1-63 characters"},
		{"webhook endpoint bad url", "webhooks:\n  endpoints:\n    - {id: crm, url: \"ftp://example.com/h\"}\n", "webhooks.endpoints[0].url", "only http and https"},
		{"webhook endpoint bad event", "webhooks:\n  endpoints:\n    - {id: crm, url: \"https://example.com/h\", events: [mesage.received]}\n", "webhooks.endpoints[0].events[0]", "unknown event kind"},
		{"webhook endpoint bad secret", "webhooks:\n  endpoints:\n    - {id: crm, url: \"https://example.com/h\", secret: hunter2}\n", "webhooks.endpoints[0].secret", "whsec_"},
		{"webhook endpoint declared twice", "webhooks:\n  endpoints:\n    - {id: crm, url: \"https://example.com/h\"}\n    - {id: crm, url: \"https://example.com/i\"}\n", "webhooks.endpoints[1].id", "declared twice"},
		{"pipeline rules as a sink", "pipeline:\n  - {name: r, rules: [\"scripts/*.js\"], mode: sink}\n", `pipeline[0] "r"`, "rules run inline"},
		{"pipeline bad rules glob", "pipeline:\n  - {name: r, rules: [\"scripts/[.js\"]}\n", `pipeline[0] "r"`, "bad rules glob"},
		{"pipeline builtin without its config", "pipeline:\n  - {name: vip, builtin: tag}\n", `pipeline[0] "vip"`, "config.tag"},
		{"pipeline bad onError", "pipeline:\n  - {name: l, builtin: log, onError: explode}\n", `pipeline[0] "l"`, "unknown onError"},
		{"plugin without path", "plugins:\n  echo: {args: [-v]}\n", "plugins.echo.path", "must not be empty"},
		{"plugin bad name", "plugins:\n  Echo: {path: bin/plugins/echo}\n", "plugins.Echo", "plugin names"},
		{"plugin negative timeout", "plugins:\n  echo: {path: bin/plugins/echo, timeout: -1s}\n", "plugins.echo.timeout", "negative"},
		{"plugin bad sha256", "plugins:\n  echo: {path: bin/plugins/echo, sha256: abc}\n", "plugins.echo.sha256", "64 hex digits"},
		{"pipeline plugin not declared", "plugins:\n  echo: {path: bin/plugins/echo}\npipeline:\n  - {name: hooks, plugin: webhook, mode: sink}\n", `pipeline[0] "hooks"`, `unknown plugin "webhook"`},
		{"whatsapp proxy bad scheme", "drivers:\n  whatsapp:\n    proxy: \"ftp://u:hunter2@proxy.example.com:21\"\n", "drivers.whatsapp.proxy", `scheme "ftp"`},
		{"whatsapp proxy without port", "drivers:\n  whatsapp:\n    proxy: \"socks5://u:hunter2@proxy.example.com\"\n", "drivers.whatsapp.proxy", "no port"},
		{"account proxy bad scheme", "accounts:\n  - {id: shop, driver: whatsapp, proxy: \"ftp://u:hunter2@proxy.example.com:21\"}\n", "accounts[0].proxy", `scheme "ftp"`},
		{"account proxy without port", "accounts:\n  - {id: demo, driver: sim, proxy: \"socks5://u:hunter2@proxy.example.com\"}\n", "accounts[0].proxy", "no port"},
		{"pipeline plugin without plugins", "pipeline:\n  - {name: e, plugin: echo}\n", `pipeline[0] "e"`, `unknown plugin "echo"`},
		{"media archive s3 without bucket", "plugins:\n  mediaarchive:\n    path: bin/plugins/mediaarchive\n    config: {targets: [s3], s3: {region: eu-west-1}}\n", "plugins.mediaarchive.config.s3.bucket", "is required"},
		{"media archive s3 bad sse", "plugins:\n  mediaarchive:\n    path: bin/plugins/mediaarchive\n    config: {targets: [s3], s3: {bucket: media, sse: aes}}\n", "plugins.mediaarchive.config.s3.sse", "AES256 or aws:kms"},
		{"media archive s3 presign_ttl", "plugins:\n  mediaarchive:\n    path: bin/plugins/mediaarchive\n    config: {targets: [s3], s3: {bucket: media, presign_ttl: 30d}}\n", "plugins.mediaarchive.config.s3.presign_ttl", "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.yaml)
			// config.Load alone cannot tell: the check is this package's.
			if _, err := config.Load(config.Source{Path: path}); err != nil {
				t.Fatalf("config.Load already refuses it: %v", err)
			}
			_, err := Load(config.Source{Path: path})
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *config.Error", err)
			}
			if ce.Key != tt.key {
				t.Errorf("key = %q, want %q (%v)", ce.Key, tt.key, err)
			}
			if !strings.Contains(ce.Problem, tt.problem) {
				t.Errorf("problem = %q, want it to mention %q", ce.Problem, tt.problem)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows a password: %q", err)
			}
		})
	}
}

// TestConfigErrorsComeFirst: a problem config.Load finds is reported as it
// is, before any check of this package runs.
func TestConfigErrorsComeFirst(t *testing.T) {
	_, err := Load(config.Source{Path: writeFile(t, "log:\n  level: loud\npipeline:\n  - {name: x, builtin: nope}\n")})
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != "log.level" {
		t.Fatalf("got %v, want the log.level error", err)
	}
}

// TestDeclaredPluginServesEitherMode: a declared plugin may be used inline
// and as a sink at check time (its capabilities are known only once it
// runs; the daemon checks again then).
func TestDeclaredPluginServesEitherMode(t *testing.T) {
	got, err := Load(config.Source{Path: writeFile(t, `plugins:
  echo: {path: bin/plugins/echo}
  archive: {path: /opt/archive}
pipeline:
  - {name: echo, plugin: echo}
  - {name: archive, plugin: archive, mode: sink}
  - {name: echo-sink, plugin: echo, mode: sink}
  - {name: hooks, sink: webhooks}
`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Pipeline) != 4 {
		t.Fatalf("pipeline = %+v", got.Pipeline)
	}
}

// TestPipelineAgainstRegistry checks the stages against the registry given
// (the daemon's), not the static catalog.
func TestPipelineAgainstRegistry(t *testing.T) {
	cfg := config.Defaults()
	cfg.Pipeline = []config.StageConfig{{Name: "out", Sink: "crm"}}
	if err := Check(&cfg); err == nil || !strings.Contains(err.Error(), `pipeline[0] "out": unknown sink "crm"`) {
		t.Fatalf("static catalog: got %v", err)
	}
	reg := pipeline.NewRegistry()
	reg.RegisterSink("crm")
	if err := Pipeline(&cfg, reg); err != nil {
		t.Fatalf("registry with the sink: %v", err)
	}
}

func TestMultipleStageProblemsAreCounted(t *testing.T) {
	cfg := config.Defaults()
	cfg.Pipeline = []config.StageConfig{{Name: "a", Builtin: "nope"}, {Name: "b", Builtin: "nope"}}
	err := Check(&cfg)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != `pipeline[0] "a"` || !strings.Contains(ce.Problem, "(and 1 more problems)") {
		t.Fatalf("got %v", err)
	}
}

// TestShippedConfigIsValid keeps the repository's config.yaml loadable and
// every check passing.
func TestShippedConfigIsValid(t *testing.T) {
	if _, err := Load(config.Source{Path: filepath.Join("..", "..", "config.yaml")}); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultsAreValid(t *testing.T) {
	cfg := config.Defaults()
	if err := Check(&cfg); err != nil {
		t.Fatal(err)
	}
}
