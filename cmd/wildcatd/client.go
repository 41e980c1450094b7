package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/pflag"

	"github.com/wildcathub/wildcat/core/apikeys"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/sdk/wildcat"
)

// Exit codes of the client commands, beyond exitOK, exitFailure (the
// daemon failed or could not be reached) and exitUsage (a bad command line,
// or input the API refused as invalid): scripts can tell what went wrong.
const (
	exitNotFound = 3 // the account, message, webhook, key … does not exist
	exitAuth     = 4 // no key, a key the daemon does not know, or one without the scope
	exitConflict = 5 // the resource's state forbids it (already connected, exists, …)
)

const clientExitCodes = `Exit status: 0 done; 1 the daemon failed or cannot be reached; 2 a bad
command line or input the API refused; 3 not found; 4 not authorized (no
key, an unknown key, or a key without the scope); 5 a conflict with the
resource's state (e.g. it already exists).
`

// clientCommand is one `wildcatd NOUN VERB` talking to a running daemon
// through the REST API (package sdk/wildcat).
type clientCommand struct {
	group, name string
	args        string // the positional arguments, for the usage line
	minArgs     int
	maxArgs     int // -1: any number
	summary     string
	help        string // more, after the summary
	// setup registers the command's own flags and returns what runs it.
	setup func(fs *pflag.FlagSet) func(ctx context.Context, e *clientEnv, args []string) error
}

// clientGroups lists the client commands by noun, in the order help shows them.
var clientGroups = []struct{ name, summary string }{
	{"accounts", "WhatsApp accounts: list, create, connect, pair, logout, delete"},
	{"send", "send a message"},
	{"messages", "an account's history, and a live tail"},
	{"deliveries", "outbox jobs: list, retry, replay dead letters"},
	{"webhooks", "webhook endpoints: list, create, rotate the secret, test, delete"},
	{"keys", "API keys: list, create, rotate, revoke"},
	{"rules", "loaded JavaScript rules and their counters"},
	{"plugins", "plugin processes and their health"},
}

// clientEnv is what a running client command uses.
type clientEnv struct {
	c      *wildcat.Client
	api    string
	out    io.Writer
	errOut io.Writer
	json   bool
}

// usageErr is a bad command line found by a command itself.
type usageErr struct{ msg string }

func (e usageErr) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageErr{fmt.Sprintf(format, args...)} }

func findCommand(group, name string) *clientCommand {
	for i := range clientCommands {
		if clientCommands[i].group == group && clientCommands[i].name == name {
			return &clientCommands[i]
		}
	}
	return nil
}

func isClientGroup(name string) bool {
	for _, g := range clientGroups {
		if g.name == name {
			return true
		}
	}
	return false
}

// groupUsage lists a group's commands and the common flags.
func groupUsage(group string) string {
	var b strings.Builder
	if cmd := findCommand(group, ""); cmd != nil {
		fs, _, _ := commandFlags(cmd, &b)
		fs.Usage()
		return b.String()
	}
	fmt.Fprintf(&b, "Usage: wildcatd %s COMMAND [flags]\n\nCommands:\n", group)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, cmd := range clientCommands {
		if cmd.group == group {
			fmt.Fprintf(tw, "  wildcatd %s\t%s\n", strings.TrimSpace(cmd.group+" "+cmd.name+" "+cmd.args), cmd.summary)
		}
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nRun wildcatd %s COMMAND --help for a command's flags.\n\nFlags of every command:\n%s\n%s", group, commonFlags().FlagUsages(), clientExitCodes)
	return b.String()
}

// commonFlagValues are the flags every client command has.
type commonFlagValues struct {
	api, key, keyFile, configPath, output *string
	timeout                               *time.Duration
}

func addCommonFlags(fs *pflag.FlagSet) *commonFlagValues {
	f := &commonFlagValues{}
	f.api = fs.String("api", "", "base URL of the daemon's REST API; default $WILDCAT_API, else http.addr of the configuration, else http://127.0.0.1:8080")
	f.key = fs.String("key", "", "API key (wck_…); default $WILDCAT_API_KEY, else the file --key-file")
	f.keyFile = fs.String("key-file", "", "file holding the API key; default the admin key the daemon wrote, admin.key in its data_dir")
	f.configPath = fs.String("config", "", "the daemon's config.yaml, read for http.addr and data_dir; default $WILDCAT_CONFIG, else ./config.yaml if present")
	f.output = fs.StringP("output", "o", "", "json or table; default table on a terminal, json otherwise")
	f.timeout = fs.Duration("request-timeout", 30*time.Second, "give up on one API request after this long")
	return f
}

func commonFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("common", pflag.ContinueOnError)
	fs.SortFlags = false
	addCommonFlags(fs)
	return fs
}

// runClient runs `wildcatd GROUP VERB args…` (or `wildcatd send args…`).
func (c *cli) runClient(group string, args []string) int {
	if cmd := findCommand(group, ""); cmd != nil {
		return c.runCommand(cmd, args)
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") || args[0] == "help" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(c.stdout, groupUsage(group))
			return exitOK
		}
		fmt.Fprintf(c.stderr, "wildcatd: %s: expected a command\n\n%s", group, groupUsage(group))
		return exitUsage
	}
	cmd := findCommand(group, args[0])
	if cmd == nil {
		fmt.Fprintf(c.stderr, "wildcatd: %s: unknown command %q\n\n%s", group, args[0], groupUsage(group))
		return exitUsage
	}
	return c.runCommand(cmd, args[1:])
}

// commandFlags is a command's flag set: its own flags, then the common ones.
func commandFlags(cmd *clientCommand, out io.Writer) (*pflag.FlagSet, func(context.Context, *clientEnv, []string) error, *commonFlagValues) {
	name := strings.TrimSpace("wildcatd " + cmd.group + " " + cmd.name)
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	runFn := cmd.setup(fs)
	common := addCommonFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\n%s\n", strings.TrimSpace(name+" "+cmd.args), cmd.summary)
		if cmd.help != "" {
			fmt.Fprintf(fs.Output(), "\n%s", cmd.help)
		}
		fmt.Fprintf(fs.Output(), "\nFlags:\n%s\n%s", fs.FlagUsages(), clientExitCodes)
	}
	return fs, runFn, common
}

func (c *cli) runCommand(cmd *clientCommand, args []string) int {
	fs, runFn, common := commandFlags(cmd, c.stderr)
	name := strings.TrimPrefix(fs.Name(), "wildcatd ")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fs.SetOutput(c.stdout)
			fs.Usage()
			return exitOK
		}
		fmt.Fprintf(c.stderr, "wildcatd: %s: %v (see wildcatd %s --help)\n", name, err, name)
		return exitUsage
	}
	pos := fs.Args()
	if len(pos) < cmd.minArgs || (cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs) {
		fmt.Fprintf(c.stderr, "wildcatd: %s: %s\n\n", name, argsProblem(cmd, pos))
		fs.Usage()
		return exitUsage
	}
	env, err := c.clientEnv(common)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: %s: %v\n", name, err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runFn(ctx, env, pos); err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return exitOK // interrupted, e.g. Ctrl-C on --follow
		}
		fmt.Fprintf(c.stderr, "wildcatd: %s: %s\n", name, describe(err, env.api))
		return exitCode(err)
	}
	return exitOK
}

func argsProblem(cmd *clientCommand, pos []string) string {
	want := cmd.args
	if want == "" {
		return fmt.Sprintf("unexpected argument %q", pos[0])
	}
	if len(pos) < cmd.minArgs {
		return "expected " + want
	}
	return fmt.Sprintf("expected %s, got the extra argument %q", want, pos[len(pos)-1])
}

// describe words an error for the terminal.
func describe(err error, api string) string {
	var te *wildcat.TransportError
	if errors.As(err, &te) {
		return fmt.Sprintf("cannot reach the daemon at %s (is wildcatd running? see --api): %v", api, te.Err)
	}
	var ae *wildcat.Error
	if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
		return ae.Error() + " (see --key)"
	}
	return err.Error()
}

func exitCode(err error) int {
	var ue usageErr
	switch {
	case errors.As(err, &ue), errors.Is(err, wildcat.ErrInvalid):
		return exitUsage
	case errors.Is(err, wildcat.ErrNotFound):
		return exitNotFound
	case errors.Is(err, wildcat.ErrUnauthorized), errors.Is(err, wildcat.ErrForbidden):
		return exitAuth
	case errors.Is(err, wildcat.ErrConflict):
		return exitConflict
	}
	return exitFailure
}

// clientEnv resolves the common flags: the API's URL, the key, the output.
func (c *cli) clientEnv(f *commonFlagValues) (*clientEnv, error) {
	var loaded *config.Loaded
	path := config.ResolvePath(*f.configPath, c.environ)
	if l, err := config.Load(config.Source{Path: path, Environ: c.environ}); err == nil {
		loaded = l
	} else if *f.configPath != "" || c.getenv(config.PathEnv) != "" {
		// Only a configuration asked for is worth an error.
		return nil, err
	}
	api := *f.api
	if api == "" {
		api = c.getenv("WILDCAT_API")
	}
	if api == "" {
		api = "http://127.0.0.1:8080"
		if loaded != nil {
			api = apiURL(loaded.HTTP.Addr, loaded.HTTP.TLSCertFile != "")
		}
	}
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api %q is not an http(s) URL", api)
	}
	dataDir := c.getenv("WILDCAT_DATA_DIR")
	if dataDir == "" && loaded != nil {
		dataDir = loaded.DataDir
	}
	key, err := c.apiKey(*f.key, *f.keyFile, dataDir)
	if err != nil {
		return nil, err
	}
	env := &clientEnv{api: strings.TrimRight(api, "/"), out: c.stdout, errOut: c.stderr}
	switch *f.output {
	case "json":
		env.json = true
	case "table":
	case "":
		file, ok := c.stdout.(*os.File)
		env.json = !ok || !isatty.IsTerminal(file.Fd())
	default:
		return nil, fmt.Errorf("--output %q: expected json or table", *f.output)
	}
	// The timeout waits for an answer's headers only: the event stream of
	// --follow stays open.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = *f.timeout
	env.c, err = wildcat.New(env.api, wildcat.WithKey(key), wildcat.WithUserAgent("wildcatd/"+buildVersion()),
		wildcat.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		return nil, err
	}
	return env, nil
}

// apiURL is the URL a client on this machine reaches a listen address at.
func apiURL(addr string, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + "://" + addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// apiKey finds the key a client command sends: --key, $WILDCAT_API_KEY,
// else the file (--key-file, or the admin key in the data directory). ""
// when there is none: the daemon may run with http.auth off.
func (c *cli) apiKey(key, keyFile, dataDir string) (string, error) {
	if key != "" {
		return key, nil
	}
	if k := c.getenv("WILDCAT_API_KEY"); k != "" {
		return k, nil
	}
	explicit := keyFile != ""
	if !explicit {
		if dataDir == "" {
			dataDir = config.Defaults().DataDir
		}
		keyFile = filepath.Join(dataDir, apikeys.AdminKeyFile)
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("read the API key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (c *cli) getenv(name string) string {
	for _, kv := range c.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// emit prints v as indented JSON, or as a table drawn by table.
func (e *clientEnv) emit(v any, table func(tw *tabwriter.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// row writes one tab-separated table row; empty cells show as "-".
func row(tw io.Writer, cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		s := fmt.Sprint(c)
		switch v := c.(type) {
		case time.Time:
			s = "-"
			if !v.IsZero() {
				s = v.Local().Format("2006-01-02 15:04:05")
			}
		case *time.Time:
			s = "-"
			if v != nil && !v.IsZero() {
				s = v.Local().Format("2006-01-02 15:04:05")
			}
		case []string:
			s = strings.Join(v, ",")
		}
		if s == "" {
			s = "-"
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "\t", " "), "\n", " ")
	}
	fmt.Fprintln(tw, strings.Join(parts, "\t"))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
