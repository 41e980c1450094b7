package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/configcheck"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/logging"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes: scripts and service managers can tell a bad configuration
// (fix the file, do not restart in a loop) from a runtime failure.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `wildcatd — the Wildcat WhatsApp integration hub

Usage:
  wildcatd [run] [flags]          start the daemon (the default command)
  wildcatd config check [flags]   validate the configuration and exit
  wildcatd store copy --from LOC --to LOC [--database NAME] [--force]
                                  copy everything between SQLite and MongoDB
  wildcatd store reencrypt [flags] seal everything under the active encryption key
  wildcatd rules test FILE        run a JavaScript rule on an event, print its actions
          --event EVENT.json      (a webhook's body or the bare event; no side effects)
  wildcatd rules test --all       run every scripts/**/*.test.json case
          [--dir scripts]
  wildcatd sim serve [--listen ADDR]
                                  serve a sim network several daemons share
                                  (drivers.sim.network_url)
  wildcatd openapi                print the REST API's OpenAPI 3.1 document (JSON)
  wildcatd healthcheck [--url URL] exit 0 when the running daemon's /readyz answers 200
                                  (the container image's HEALTHCHECK)
  wildcatd version                print the version
  wildcatd help [command]         show help

Client commands (talk to the running daemon's REST API; see wildcatd help NOUN):
  wildcatd accounts list|get|create|connect|pair|logout|delete
  wildcatd accounts pair ID       pair an account: show its QR code in the terminal
  wildcatd accounts import --from STORE [--all | --jid JID ...]
                                  bring linked phones from another whatsmeow
                                  program's store (local: opens the store itself)
  wildcatd send ACCOUNT TO TEXT   send a message (--media FILE, --reply-to ID)
  wildcatd messages list ACCOUNT  an account's history (--limit, --cursor, --all);
                                  --follow tails new messages live
  wildcatd messages get|trace ACCOUNT MESSAGE_ID
                                  one message; what the pipeline did with it
  wildcatd deliveries list|get|retry|replay
  wildcatd webhooks list|get|create|rotate|test|delete
  wildcatd keys list|create|rotate|revoke
  wildcatd rules status           loaded rules, counters, load errors
  wildcatd plugins status         plugin processes and their health
          [--api URL] [--key KEY] [-o json|table]
                                  (the daemon at http.addr of config.yaml, default
                                  http://127.0.0.1:8080, with the key in $WILDCAT_API_KEY
                                  or the admin.key the daemon wrote in its data_dir)

Configuration is read from config.yaml (or --config, or $WILDCAT_CONFIG),
then WILDCAT_* environment variables, then flags; later sources win.
Exit status: 0 on a clean stop, 1 on a runtime failure, 2 on a bad command
line or configuration. Client commands also exit 3 when something is not
found, 4 when the key is missing or not allowed, 5 on a conflict with the
resource's state.
`

type cli struct {
	environ []string
	stdout  io.Writer
	stderr  io.Writer
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	c := &cli{environ: environ, stdout: stdout, stderr: stderr}
	cmd := "run"
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || args[0] == "-h" || args[0] == "--help" || args[0] == "--version") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return c.runDaemon(args)
	case "config":
		if len(args) > 0 && args[0] == "check" {
			return c.configCheck(args[1:])
		}
		return c.usageError("config: expected the subcommand check")
	case "store":
		if len(args) > 0 && args[0] == "copy" {
			return c.storeCopy(args[1:])
		}
		if len(args) > 0 && args[0] == "reencrypt" {
			return c.storeReencrypt(args[1:])
		}
		return c.usageError("store: expected the subcommand copy or reencrypt")
	case "rules":
		if len(args) > 0 && args[0] == "test" {
			return c.rules(args)
		}
		return c.runClient(cmd, args)
	case "accounts":
		// import opens the store itself; the rest talk to the daemon.
		if len(args) > 0 && args[0] == "import" {
			return c.accountsImport(args[1:])
		}
		return c.runClient(cmd, args)
	case "sim":
		if len(args) > 0 && args[0] == "serve" {
			return c.simServe(args[1:])
		}
		return c.usageError("sim: expected the subcommand serve")
	case "send", "messages", "deliveries", "webhooks", "keys", "plugins":
		return c.runClient(cmd, args)
	case "healthcheck":
		return c.healthcheck(args)
	case "openapi":
		if len(args) > 0 {
			return c.usageError("openapi: takes no arguments")
		}
		// The document GET /v1/openapi.json serves, without a daemon:
		// for linters and client generators.
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(api.Document()); err != nil {
			fmt.Fprintf(stderr, "wildcatd: openapi: %v\n", err)
			return exitFailure
		}
		return exitOK
	case "version", "--version":
		fmt.Fprintf(stdout, "wildcatd %s (%s %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "-h", "--help":
		if len(args) > 0 {
			return c.help(args[0])
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		return c.usageError(fmt.Sprintf("unknown command %q", cmd))
	}
}

func (c *cli) usageError(msg string) int {
	fmt.Fprintf(c.stderr, "wildcatd: %s\n\n%s", msg, usage)
	return exitUsage
}

func (c *cli) help(cmd string) int {
	switch cmd {
	case "run", "config":
		fs := c.configFlags(cmd)
		fs.SetOutput(c.stdout)
		fs.Usage()
	case "store":
		fs, _, _, _, _ := storeCopyFlags(c.stdout)
		fs.Usage()
	case "healthcheck":
		fs, _, _, _ := healthcheckFlags(c.stdout)
		fs.Usage()
	case "sim":
		fs, _, _, _ := simServeFlags(c.stdout)
		fs.Usage()
	case "rules":
		fs, _, _, _, _, _ := rulesFlags(c.stdout)
		fs.Usage()
		fmt.Fprintln(c.stdout)
		fmt.Fprint(c.stdout, groupUsage(cmd))
	default:
		if isClientGroup(cmd) {
			fmt.Fprint(c.stdout, groupUsage(cmd))
			if cmd == "accounts" {
				fmt.Fprint(c.stdout, "\nwildcatd accounts import --from STORE opens the store itself, not the daemon: see wildcatd accounts import --help\n")
			}
			return exitOK
		}
		return c.usageError(fmt.Sprintf("no help for %q", cmd))
	}
	return exitOK
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

// configFlags is the flag set shared by run and config check: --config and
// one flag per configuration key.
func (c *cli) configFlags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("wildcatd "+name, pflag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.SortFlags = false
	config.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wildcatd %s [flags]\n\nFlags (each overrides the key of the same name in config.yaml and its WILDCAT_* variable):\n%s", name, fs.FlagUsages())
	}
	return fs
}

// loadConfig parses flags and loads the configuration, checked as far as
// it can be before the daemon runs (configcheck.Load); on failure it has
// already printed one line and returns the exit code.
func (c *cli) loadConfig(name string, args []string) (*config.Loaded, int) {
	loaded, _, code := c.loadConfigSource(name, args)
	return loaded, code
}

// loadConfigSource is loadConfig that also returns where the configuration
// came from, for re-reading it later.
func (c *cli) loadConfigSource(name string, args []string) (*config.Loaded, config.Source, int) {
	fs := c.configFlags(name)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, config.Source{}, exitOK
		}
		fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
		return nil, config.Source{}, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "wildcatd: unexpected argument %q\n", fs.Arg(0))
		return nil, config.Source{}, exitUsage
	}
	path, _ := fs.GetString("config")
	src := config.Source{
		Path:    config.ResolvePath(path, c.environ),
		Environ: c.environ,
		Flags:   fs,
	}
	loaded, err := configcheck.Load(src)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
		return nil, src, exitUsage
	}
	return loaded, src, -1
}

func (c *cli) configCheck(args []string) int {
	loaded, code := c.loadConfig("config check", args)
	if loaded == nil {
		return code
	}
	for _, w := range loaded.Warnings {
		fmt.Fprintf(c.stderr, "wildcatd: warning: %s\n", w)
	}
	src := loaded.Path
	if src == "" {
		src = "defaults (no config file)"
	}
	fmt.Fprintf(c.stdout, "configuration OK: %s\n", src)
	return exitOK
}

func (c *cli) runDaemon(args []string) int {
	loaded, src, code := c.loadConfigSource("run", args)
	if loaded == nil {
		return code
	}
	log := logging.New(c.stderr, loaded.Log.Level, loaded.Log.Format)
	for _, w := range loaded.Warnings {
		log.Warn(w)
	}
	log.Info("starting wildcatd", slog.String("version", buildVersion()), slog.String("config", loaded.Path),
		slog.String("data_dir", loaded.DataDir), slog.Bool("embedded_store", loaded.Embedded()))
	d, err := daemon.New(loaded.Config, daemon.Options{
		Logger:  log,
		Version: buildVersion(),
		// The first start's admin API key is shown here, once.
		Console: c.stderr,
		// The pipeline follows config.yaml: re-read on change and on
		// POST /v1/pipeline/reload, with the same environment and flags.
		ConfigFile: loaded.Path,
		LoadConfig: func() (config.Config, error) {
			l, err := configcheck.Load(src)
			if err != nil {
				return config.Config{}, err
			}
			return l.Config, nil
		},
	})
	if err != nil {
		// A configuration the running components reject (a stage naming a
		// plugin that is not declared, …) is a usage error like any other.
		var cerr *config.Error
		if errors.As(err, &cerr) {
			fmt.Fprintf(c.stderr, "wildcatd: %v\n", cerr)
			return exitUsage
		}
		log.Error("cannot start", slog.Any("error", err))
		return exitFailure
	}
	if err := d.Run(context.Background()); err != nil {
		// Start-up checks that need the running components: a stage asking
		// a plugin for a mode it does not serve is a configuration error;
		// a plugin that does not start is named on a line of its own.
		var cerr *config.Error
		if errors.As(err, &cerr) {
			fmt.Fprintf(c.stderr, "wildcatd: %v\n", cerr)
			return exitUsage
		}
		if errors.Is(err, daemon.ErrPluginStart) {
			fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
			return exitFailure
		}
		log.Error("stopped with an error", slog.Any("error", err))
		return exitFailure
	}
	return exitOK
}
