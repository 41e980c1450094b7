package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func parsedFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestDefaultsAreValid(t *testing.T) {
	// Run from an empty directory so no config.yaml is picked up.
	t.Chdir(t.TempDir())
	got, err := Load(Source{})
	if err != nil {
		t.Fatalf("defaults do not load: %v", err)
	}
	if !reflect.DeepEqual(got.Config, Defaults()) {
		t.Fatalf("loaded %+v, want defaults %+v", got.Config, Defaults())
	}
	if got.Path != "" {
		t.Fatalf("Path = %q with no file present", got.Path)
	}
}

// TestPrecedence checks file < environment < flag for every layer boundary.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
http:
  addr: 127.0.0.1:1111
  hosts: [file.example]
data_dir: /from/file
log:
  level: warn
  format: json
mongodb:
  database: filedb
`)
	tests := []struct {
		name    string
		environ []string
		flags   []string
		check   func(c Config) string
	}{
		{"file over default", nil, nil, func(c Config) string {
			if c.HTTP.Addr != "127.0.0.1:1111" || c.DataDir != "/from/file" || c.Log.Level != "warn" {
				return "file values not applied"
			}
			if c.ShutdownTimeout != Defaults().ShutdownTimeout {
				return "default lost for a key the file does not set"
			}
			return ""
		}},
		{"env over file", []string{"WILDCAT_HTTP_ADDR=127.0.0.1:2222", "WILDCAT_DATA_DIR=/from/env", "WILDCAT_LOG_LEVEL=debug", "WILDCAT_LOG_FORMAT=text", "WILDCAT_MONGODB_URI=mongodb://db.example:27017"}, nil, func(c Config) string {
			if c.HTTP.Addr != "127.0.0.1:2222" || c.DataDir != "/from/env" || c.Log.Level != "debug" || c.Log.Format != "text" || c.MongoDB.URI != "mongodb://db.example:27017" {
				return "env values not applied"
			}
			if c.MongoDB.Database != "filedb" {
				return "file value lost for a key env does not set"
			}
			return ""
		}},
		{"flag over env", []string{"WILDCAT_HTTP_ADDR=127.0.0.1:2222", "WILDCAT_LOG_LEVEL=debug"}, []string{"--http-addr=127.0.0.1:3333"}, func(c Config) string {
			if c.HTTP.Addr != "127.0.0.1:3333" {
				return "flag did not win over env"
			}
			if c.Log.Level != "debug" {
				return "env value lost for a key no flag sets"
			}
			return ""
		}},
		{"unset flag keeps lower layers", nil, []string{"--log-format=text"}, func(c Config) string {
			if c.HTTP.Addr != "127.0.0.1:1111" {
				return "an unset flag's default overrode the file"
			}
			if c.Log.Format != "text" {
				return "flag not applied"
			}
			return ""
		}},
		{"typed env values", []string{"WILDCAT_SHUTDOWN_TIMEOUT=3s", "WILDCAT_HTTP_MAX_BODY_BYTES=2048"}, nil, func(c Config) string {
			if c.ShutdownTimeout != 3*time.Second || c.HTTP.MaxBodyBytes != 2048 {
				return "typed env values not converted"
			}
			return ""
		}},
		{"lists from env and flags", []string{"WILDCAT_HTTP_HOSTS= a.example, b.example ,", "WILDCAT_RULE_DIRS=/etc/wildcat/rules"},
			[]string{"--http-allowed-origins=https://crm.example,https://ops.example"}, func(c Config) string {
				if !reflect.DeepEqual(c.HTTP.Hosts, []string{"a.example", "b.example"}) || !reflect.DeepEqual(c.RuleDirs, []string{"/etc/wildcat/rules"}) {
					return "comma-separated env lists not applied"
				}
				if !reflect.DeepEqual(c.HTTP.AllowedOrigins, []string{"https://crm.example", "https://ops.example"}) {
					return "comma-separated flag list not applied"
				}
				return ""
			}},
		{"file list kept without env or flag", nil, []string{"--log-format=text"}, func(c Config) string {
			if !reflect.DeepEqual(c.HTTP.Hosts, []string{"file.example"}) {
				return "the file's list was lost"
			}
			return ""
		}},
		{"nested key from env", []string{"WILDCAT_DRIVERS_WHATSAPP_PROXY=socks5://u:p@10.0.0.5:1080"}, nil, func(c Config) string {
			if c.Drivers.WhatsApp.Proxy != "socks5://u:p@10.0.0.5:1080" {
				return "drivers.whatsapp.proxy not set from the environment"
			}
			return ""
		}},
		{"typed flag values", nil, []string{"--shutdown-timeout=4s", "--http-max-body-bytes=4096"}, func(c Config) string {
			if c.ShutdownTimeout != 4*time.Second || c.HTTP.MaxBodyBytes != 4096 {
				return "typed flag values not converted"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(Source{Path: file, Environ: tt.environ, Flags: parsedFlags(t, tt.flags...)})
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(got.Config); msg != "" {
				t.Fatalf("%s: got %+v", msg, got.Config)
			}
		})
	}
}

func TestResolvePath(t *testing.T) {
	env := []string{"HOME=/root", "WILDCAT_CONFIG=/etc/wildcat.yaml"}
	if got := ResolvePath("", env); got != "/etc/wildcat.yaml" {
		t.Fatalf("env path: got %q", got)
	}
	if got := ResolvePath("/flag.yaml", env); got != "/flag.yaml" {
		t.Fatalf("flag must win over env: got %q", got)
	}
	if got := ResolvePath("", nil); got != "" {
		t.Fatalf("no source: got %q", got)
	}
}

// TestValidationErrors covers every path of Load that stops the daemon with
// exit 2: each must name the key and say what is wrong. The checks that
// need other packages are tested in package configcheck.
func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		environ []string
		flags   []string
		key     string
		problem string // substring of the problem
	}{
		{"unknown top-level key", "htp:\n  addr: 1\n", nil, nil, "htp", "unknown key"},
		{"unknown nested key with suggestion", "http:\n  adr: 127.0.0.1:1\n", nil, nil, "http.adr", "did you mean http.addr"},
		{"port out of range", "http:\n  addr: 127.0.0.1:99999\n", nil, nil, "http.addr", "99999"},
		{"bare port number", "http:\n  addr: 99999\n", nil, nil, "http.addr", "host:port"},
		{"port not numeric", "http:\n  addr: localhost:http\n", nil, nil, "http.addr", "not a number"},
		{"empty addr", "http:\n  addr: \"\"\n", nil, nil, "http.addr", "must not be empty"},
		{"list for string", "http:\n  addr: [a, b]\n", nil, nil, "http.addr", "expected a string, got a list"},
		{"scalar for section", "http: 5\n", nil, nil, "http", "expected a mapping"},
		{"duration without unit", "shutdown_timeout: 15\n", nil, nil, "shutdown_timeout", "needs a unit"},
		{"bad duration", "shutdown_timeout: soon\n", nil, nil, "shutdown_timeout", "duration"},
		{"negative duration", "shutdown_timeout: -1s\n", nil, nil, "shutdown_timeout", "greater than zero"},
		{"body limit zero", "http:\n  max_body_bytes: 0\n", nil, nil, "http.max_body_bytes", "greater than zero"},
		{"body limit not a number", "http:\n  max_body_bytes: lots\n", nil, nil, "http.max_body_bytes", "expected a number"},
		{"bad log level", "log:\n  level: loud\n", nil, nil, "log.level", "debug, info, warn, error"},
		{"bad log format", "log:\n  format: xml\n", nil, nil, "log.format", "auto, text, json"},
		{"bad database name", "mongodb:\n  database: a.b\n", nil, nil, "mongodb.database", "must not contain"},
		{"empty database name", "mongodb:\n  database: \"\"\n", nil, nil, "mongodb.database", "must not be empty"},
		{"removed key", "mongodb:\n  embedded_listen: 127.0.0.1:27017\n", nil, nil, "mongodb.embedded_listen", "was removed: the embedded engine is SQLite now"},
		{"media limit zero", "media:\n  max_bytes: 0\n", nil, nil, "media.max_bytes", "greater than zero"},
		{"rules memory limit too small", "rules:\n  memory_limit: 1000\n", nil, nil, "rules.memory_limit", "at least 16777216 bytes"},
		{"media fetch timeout without unit", "media:\n  fetch_timeout: 30\n", nil, nil, "media.fetch_timeout", "needs a unit"},
		{"fetch private not a boolean", "media:\n  fetch_allow_private: maybe\n", nil, nil, "media.fetch_allow_private", "true or false"},
		{"no send workers", "send:\n  workers: 0\n", nil, nil, "send.workers", "from 1 to 256"},
		{"lease too short", "cluster:\n  lease_ttl: 1s\n", nil, nil, "cluster.lease_ttl", "at least 2s"},
		{"renewal too slow for the lease", "cluster:\n  lease_ttl: 10s\n  renew_interval: 5s\n", nil, nil, "cluster.renew_interval", "below half of cluster.lease_ttl"},
		{"no moves", "cluster:\n  max_moves: 0\n", nil, nil, "cluster.max_moves", "from 1 to 10000"},
		{"advertise URL not a URL", "cluster:\n  advertise_url: host:8080\n", nil, nil, "cluster.advertise_url", "base URL"},
		{"send queue from env", "", []string{"WILDCAT_SEND_QUEUE_SIZE=-5"}, nil, "send.queue_size", "from 1"},
		{"idempotency ttl zero", "http:\n  idempotency_ttl: 0s\n", nil, nil, "http.idempotency_ttl", "greater than zero"},
		{"empty data dir", "data_dir: \"\"\n", nil, nil, "data_dir", "must not be empty"},
		{"sim network not a URL", "drivers:\n  sim:\n    network_url: tcp://127.0.0.1:7000\n", nil, nil, "drivers.sim.network_url", "scheme must be http"},
		{"sim network without host", "", []string{"WILDCAT_DRIVERS_SIM_NETWORK_URL=http://"}, nil, "drivers.sim.network_url", "names no host"},
		{"bad value from env", "", []string{"WILDCAT_HTTP_ADDR=127.0.0.1:70000"}, nil, "http.addr", "70000"},
		{"bad type from env", "", []string{"WILDCAT_SHUTDOWN_TIMEOUT=later"}, nil, "shutdown_timeout", "duration"},
		{"bad value from flag", "", nil, []string{"--log-level=verbose"}, "log.level", "verbose"},
		{"account id with capitals", "accounts:\n  - {id: Acme, driver: sim}\n", nil, nil, "accounts[0].id", "not a valid account id"},
		{"account id missing", "accounts:\n  - {driver: sim}\n", nil, nil, "accounts[0].id", "must not be empty"},
		{"account id too long", "accounts:\n  - {id: " + strings.Repeat("a", 64) + ", driver: sim}\n", nil, nil, "accounts[0].id", "not a valid account id"},
		{"account id with colon", "accounts:\n  - {id: \"a:b\", driver: sim}\n", nil, nil, "accounts[0].id", "not a valid account id"},
		{"reserved account id", "accounts:\n  - {id: lid_map, driver: whatsapp}\n", nil, nil, "accounts[0].id", "reserved"},
		{"duplicate account id", "accounts:\n  - {id: a, driver: sim}\n  - {id: a, driver: whatsapp}\n", nil, nil, "accounts[1].id", "already declared by accounts[0]"},
		{"unknown driver", "accounts:\n  - {id: a, driver: sim}\n  - {id: b, driver: telegram}\n", nil, nil, "accounts[1].driver", "whatsapp, sim"},
		{"missing driver", "accounts:\n  - {id: a}\n", nil, nil, "accounts[0].driver", "must not be empty"},
		{"unknown account key", "accounts:\n  - {id: a, driver: sim, colour: red}\n", nil, nil, "accounts[0].colour", "unknown key"},
		{"account not a mapping", "accounts: demo\n", nil, nil, "accounts[0]", "expected a mapping"},
		{"webhooks timeout zero", "webhooks:\n  timeout: 0s\n", nil, nil, "webhooks.timeout", ""},
		{"pipeline timeout without unit", "pipeline:\n  - {name: l, builtin: log, timeout: 5}\n", nil, nil, "pipeline[0].timeout", "needs a unit"},
		{"pipeline unknown stage key", "pipeline:\n  - {name: l, builtin: log, colour: red}\n", nil, nil, "pipeline[0].colour", "unknown key"},
		{"plugin timeout without unit", "plugins:\n  echo: {path: bin/plugins/echo, timeout: 5}\n", nil, nil, "plugins.echo.timeout", "needs a unit"},
		{"plugin unknown key", "plugins:\n  echo: {path: bin/plugins/echo, pth: x}\n", nil, nil, "plugins.echo.pth", "unknown key"},
		{"plugins not a mapping", "plugins: [echo]\n", nil, nil, "plugins[0]", "expected a mapping"},
		{"negative rate", "http:\n  rate_limits:\n    reads_per_minute: -1\n", nil, nil, "http.rate_limits.reads_per_minute", "must not be negative"},
		{"rate without burst", "http:\n  rate_limits:\n    sends_burst: 0\n", nil, nil, "http.rate_limits.sends_burst", "at least 1 while sends_per_minute is 120"},
		{"failed auth burst from env", "", []string{"WILDCAT_HTTP_RATE_LIMITS_FAILED_AUTH_BURST=0"}, nil, "http.rate_limits.failed_auth_burst", "at least 1"},
		{"unknown rate limit key", "http:\n  rate_limits:\n    reads: 5\n", nil, nil, "http.rate_limits.reads", "unknown key"},
		{"negative pace", "send:\n  pacing:\n    whatsapp:\n      interval: -1s\n", nil, nil, "send.pacing.whatsapp.interval", "must not be negative"},
		{"negative jitter", "send:\n  pacing:\n    sim:\n      jitter: -2s\n", nil, nil, "send.pacing.sim.jitter", "must not be negative"},
		{"negative daily cap", "", nil, []string{"--send-pacing-whatsapp-daily-cap=-3"}, "send.pacing.whatsapp.daily_cap", "must not be negative"},
		{"zero warm-up day", "send:\n  pacing:\n    whatsapp:\n      warmup: [10, 0]\n", nil, nil, "send.pacing.whatsapp.warmup[1]", "at least 1"},
		{"negative account pace", "send:\n  pacing:\n    accounts:\n      shop: {interval: -1s}\n", nil, nil, "send.pacing.accounts.shop.interval", "must not be negative"},
		{"paced account id", "send:\n  pacing:\n    accounts:\n      \"../x\": {daily_cap: 1}\n", nil, nil, "send.pacing.accounts.../x", "account id"},
		{"pace without unit", "send:\n  pacing:\n    whatsapp:\n      interval: 3\n", nil, nil, "send.pacing.whatsapp.interval", "needs a unit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Source{Path: writeFile(t, tt.yaml), Environ: tt.environ, Flags: parsedFlags(t, tt.flags...)})
			var ce *Error
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
		})
	}
}

func TestFileErrors(t *testing.T) {
	t.Run("explicit missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yaml")
		_, err := Load(Source{Path: path})
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != path || !strings.Contains(ce.Problem, "no such file") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("broken yaml", func(t *testing.T) {
		path := writeFile(t, "http:\n  addr: [\n")
		_, err := Load(Source{Path: path})
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != path || !strings.Contains(ce.Problem, "invalid YAML") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestUnknownEnvironmentVariableWarns(t *testing.T) {
	got, err := Load(Source{Path: writeFile(t, ""), Environ: []string{"WILDCAT_HTTP_ADRR=x", "WILDCAT_CONFIG=y", "WILDCAT_TEST_MONGODB_URI=z", "PATH=/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "WILDCAT_HTTP_ADRR") {
		t.Fatalf("warnings = %q, want exactly one about WILDCAT_HTTP_ADRR", got.Warnings)
	}
}

func TestAccountsDecode(t *testing.T) {
	got, err := Load(Source{Path: writeFile(t, "accounts:\n  - id: demo\n    driver: sim\n    name: Demo\n  - {id: shop_1, driver: whatsapp}\n")})
	if err != nil {
		t.Fatal(err)
	}
	want := []Account{{ID: "demo", Driver: "sim", Name: "Demo"}, {ID: "shop_1", Driver: "whatsapp"}}
	if !reflect.DeepEqual(got.Accounts, want) {
		t.Fatalf("accounts = %+v, want %+v", got.Accounts, want)
	}
}

// TestAccountPacingDecode: an account's pacing sets only the fields it
// names; the rest stay its driver's.
func TestAccountPacingDecode(t *testing.T) {
	got, err := Load(Source{Path: writeFile(t, "send:\n  pacing:\n    accounts:\n      shop_1: {interval: 500ms, warmup: []}\n      demo: {daily_cap: 5}\n")})
	if err != nil {
		t.Fatal(err)
	}
	driver := Defaults().Send.Pacing.WhatsApp
	shop := got.Send.Pacing.Accounts["shop_1"].Over(driver)
	if shop.Interval != 500*time.Millisecond || shop.Jitter != driver.Jitter || shop.DailyCap != driver.DailyCap || len(shop.WarmUp) != 0 {
		t.Fatalf("shop_1 pacing over the driver's = %+v", shop)
	}
	demo := got.Send.Pacing.Accounts["demo"].Over(driver)
	if demo.Interval != driver.Interval || demo.DailyCap != 5 || !reflect.DeepEqual(demo.WarmUp, driver.WarmUp) {
		t.Fatalf("demo pacing over the driver's = %+v", demo)
	}
}

func TestPipelineDecode(t *testing.T) {
	got, err := Load(Source{Path: writeFile(t, "pipeline:\n  - name: vip\n    builtin: tag\n    config: {tag: vip}\n    timeout: 2s\n    match: {kinds: [message.received], accounts: [demo]}\n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Pipeline) != 1 {
		t.Fatalf("pipeline = %+v", got.Pipeline)
	}
	st := got.Pipeline[0]
	if st.Name != "vip" || st.Builtin != "tag" || st.Config["tag"] != "vip" || st.Timeout != 2*time.Second ||
		!reflect.DeepEqual(st.Match.Kinds, []string{"message.received"}) || !reflect.DeepEqual(st.Match.Accounts, []string{"demo"}) {
		t.Fatalf("stage = %+v", st)
	}
}

// TestPluginsDecode reads a plugins block.
func TestPluginsDecode(t *testing.T) {
	got, err := Load(Source{Path: writeFile(t, `plugins:
  echo:
    path: bin/plugins/echo
    args: ["--verbose"]
    timeout: 2s
    concurrency: 8
    config: {greeting: hello, limits: {max: 3}}
  archive: {path: /opt/archive}
`)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Plugin{
		"echo": {Path: "bin/plugins/echo", Args: []string{"--verbose"}, Timeout: 2 * time.Second, Concurrency: 8,
			Config: map[string]any{"greeting": "hello", "limits": map[string]any{"max": 3}}},
		"archive": {Path: "/opt/archive"},
	}
	if !reflect.DeepEqual(got.Plugins, want) {
		t.Fatalf("plugins = %#v, want %#v", got.Plugins, want)
	}
}

// TestShippedConfigIsValid keeps the repository's config.yaml loadable.
func TestShippedConfigIsValid(t *testing.T) {
	if _, err := Load(Source{Path: filepath.Join("..", "..", "config.yaml")}); err != nil {
		t.Fatal(err)
	}
}

// TestREADMETableInSync fails when a key is added, renamed or re-documented
// without regenerating the README's configuration reference.
func TestREADMETableInSync(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- config-table:start -->\n", "<!-- config-table:end -->"
	s := string(readme)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q … %q markers", strings.TrimSpace(start), end)
	}
	if got, want := s[i+len(start):j], MarkdownTable(); got != want {
		t.Fatalf("README configuration table is stale; replace it with:\n%s", want)
	}
}
