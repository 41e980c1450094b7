package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/wildcathub/wildcat/core/accountimport"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/configcheck"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/storecopy"
)

const accountsImportUsage = `Usage: wildcatd accounts import --from STORE [--all | --jid JID ...] [flags]

Brings the linked phones of another whatsmeow program (wuzapi, GoWA,
mautrix-whatsapp, your own) into Wildcat as whatsapp accounts, with their
whole auth state (identity, Signal sessions, pre-keys, sender keys,
app-state keys and versions, contacts, LID mappings, privacy tokens), so
they connect without pairing again. STORE is that program's whatsmeow
database: a SQLite file or a postgres:// URL. It is only read, never
written.

With --history it also imports the messages the program stored, where
their layout is known: GoWA's chat storage (its chatstorage.db beside the
store, or --history-from). They are stored as the accounts' history and do
not run through the pipeline. Other programs: "no known history layout".

Without --all or --jid it lists the devices it finds (JID, push name,
platform, whether Wildcat has it already) and imports nothing. Each
imported device becomes an account named by --id, or by its phone number.

The accounts go into the store of the configuration (data_dir, or
mongodb.uri), sealed under its encryption key when one is set. Stop
wildcatd first on the embedded engine (the database is locked while it
runs); on MongoDB a running daemon starts an imported account on its next
start or on "wildcatd accounts connect ID" (stop the daemons before
replacing an account one of them runs).

WhatsApp allows one connection per linked device: once imported, the other
program must not run that device any more (stop it, or remove the device
from it without logging it out).

Exit status: 0 when done, 1 on a failure, 2 on a bad command line or a
STORE that is not a whatsmeow database, 5 when a device or account id is
already in Wildcat (nothing is imported; --replace replaces it).

Flags:
`

type accountsImportFlags struct {
	from, id, historyFrom *string
	jids                  *[]string
	all, replace, history *bool
}

func accountsImportFlagSet(c *cli) (*pflag.FlagSet, *accountsImportFlags) {
	fs := c.configFlags("accounts import")
	f := &accountsImportFlags{
		from:    fs.String("from", "", "the other program's whatsmeow store: a SQLite file or a postgres:// URL (read only)"),
		all:     fs.Bool("all", false, "import every device of the store"),
		jids:    fs.StringArray("jid", nil, "import this device (its JID, or its phone number when the store has one device of it); repeatable"),
		id:      fs.String("id", "", "the account id of the one device imported (default: its phone number)"),
		replace: fs.Bool("replace", false, "import devices and account ids Wildcat has already, replacing their auth state"),
		history: fs.Bool("history", false, "also import the program's stored messages where their layout is known (GoWA's chat storage)"),
		historyFrom: fs.String("history-from", "", "the database of those messages when it is not --from (a SQLite file or a postgres:// URL); "+
			"default: --from, then GoWA's "+accountimport.GoWAChatStorage+" beside it; implies --history"),
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s%s", accountsImportUsage, fs.FlagUsages())
	}
	return fs, f
}

// redactSource hides the password of a postgres:// URL.
func redactSource(loc string) string {
	if !authstore.IsPostgresURL(loc) {
		return loc
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "postgres://…"
	}
	return u.Redacted()
}

func (c *cli) accountsImport(args []string) int {
	fs, f := accountsImportFlagSet(c)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(c.stderr, "wildcatd: accounts import: %v\n", err)
		return exitUsage
	}
	bad := func(msg string) int {
		fmt.Fprintf(c.stderr, "wildcatd: accounts import: %s\n", msg)
		return exitUsage
	}
	from := strings.TrimSpace(*f.from)
	switch {
	case fs.NArg() > 0:
		return bad(fmt.Sprintf("unexpected argument %q (the store goes in --from, devices in --jid)", fs.Arg(0)))
	case from == "":
		return bad("--from is required: the whatsmeow store to import from (a SQLite file or a postgres:// URL)")
	case *f.all && len(*f.jids) > 0:
		return bad("--all: give --all or --jid, not both")
	case fs.Changed("id") && strings.TrimSpace(*f.id) == "":
		return bad("--id: must not be empty")
	}
	path, _ := fs.GetString("config")
	loaded, err := configcheck.Load(config.Source{Path: config.ResolvePath(path, c.environ), Environ: c.environ, Flags: fs})
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
		return exitUsage
	}
	cfg := loaded.Config
	keys, err := configcheck.Keyring(&cfg)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
		return exitUsage
	}
	listing := !*f.all && len(*f.jids) == 0

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shown := redactSource(from)
	src, err := authstore.OpenSource(ctx, from)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: accounts import: --from %s: %s\n", shown, strings.ReplaceAll(err.Error(), from, shown))
		if errors.Is(err, authstore.ErrNotSource) {
			return exitUsage
		}
		return exitFailure
	}
	defer src.Close()

	opts := accountimport.Options{
		All: *f.all, JIDs: *f.jids, ID: strings.TrimSpace(*f.id), Replace: *f.replace, Keys: keys, Source: shown,
	}
	if !listing {
		// Bad choices are told before the target is opened (or created).
		if err := accountimport.Check(ctx, src, opts); err != nil {
			var uerr *accountimport.UsageError
			if errors.As(err, &uerr) {
				return bad(uerr.Error())
			}
			fmt.Fprintf(c.stderr, "wildcatd: accounts import: --from %s: %v\n", shown, err)
			return exitFailure
		}
	}

	loc := cfg.DataDir
	if cfg.MongoDB.URI != "" {
		loc = cfg.MongoDB.URI
	}
	target, err := storecopy.Open(ctx, loc, storecopy.OpenOptions{Database: cfg.MongoDB.Database, Target: !listing})
	var t *storecopy.Target
	switch {
	case listing && errors.Is(err, storecopy.ErrBadLocation):
		// Nothing in Wildcat yet: no device is present.
		t = nil
	case errors.Is(err, storecopy.ErrInUse):
		fmt.Fprintf(c.stderr, "wildcatd: accounts import: %s is in use by a running wildcatd: stop it, import, then start it again\n", loc)
		return exitFailure
	case err != nil:
		fmt.Fprintf(c.stderr, "wildcatd: accounts import: %v\n", redactErr(err, loc))
		return exitFailure
	default:
		defer target.Close()
		if t, err = target.Target(); err != nil {
			fmt.Fprintf(c.stderr, "wildcatd: accounts import: %v\n", err)
			return exitFailure
		}
	}

	if listing {
		return c.listImportable(ctx, src, t, shown)
	}
	res, err := accountimport.Import(ctx, src, t, opts)
	if res != nil {
		for _, im := range res.Imported {
			verb := "imported"
			if im.Replaced {
				verb = "replaced"
			}
			fmt.Fprintf(c.stdout, "%s %s as account %s (%s; %d items of auth state)\n", verb, im.Device.JID, im.AccountID, deviceSummary(im.Device), im.Rows)
		}
	}
	if err != nil {
		var uerr *accountimport.UsageError
		switch {
		case errors.As(err, &uerr):
			return bad(uerr.Error())
		case errors.Is(err, accountimport.ErrPresent):
			fmt.Fprintf(c.stderr, "wildcatd: accounts import: %v\n", err)
			return exitConflict
		}
		fmt.Fprintf(c.stderr, "wildcatd: accounts import: %v\n", redactErr(err, loc))
		return exitFailure
	}
	if len(res.Imported) == 0 {
		fmt.Fprintln(c.stdout, "the store has no linked devices: nothing imported")
		return exitOK
	}
	fmt.Fprintf(c.stdout, "%d LID mappings imported\n", res.LIDMappings)
	historyOK := true
	if *f.history || *f.historyFrom != "" {
		historyOK = c.importHistory(ctx, src, t, res, accountimport.HistoryOptions{From: strings.TrimSpace(*f.historyFrom), SourcePath: from, Keys: keys})
	}
	fmt.Fprintf(c.stderr, "wildcatd: warning: the program that used %s must not run the imported devices any more: "+
		"WhatsApp allows one connection per linked device, and two programs on it take the connection from each other. "+
		"Stop it or remove the devices from its configuration (do not log them out: that unlinks them from the phone).\n", shown)
	if target.Engine() == "mongodb" {
		fmt.Fprintf(c.stdout, "a running wildcatd starts the accounts on its next start, or now with: wildcatd accounts connect ID\n")
	} else {
		fmt.Fprintf(c.stdout, "start wildcatd: the accounts connect without pairing again\n")
	}
	if !historyOK {
		return exitFailure
	}
	return exitOK
}

// deviceSummary is a device's push name and platform, for lines about it.
func deviceSummary(d *accountimport.Device) string {
	name := d.PushName
	if name == "" {
		name = "no push name"
	}
	if d.Platform == "" {
		return name
	}
	return name + ", " + d.Platform
}

func (c *cli) listImportable(ctx context.Context, src *authstore.Source, t *storecopy.Target, shown string) int {
	if t == nil {
		// No Wildcat store yet: list against an empty one.
		t = &storecopy.Target{Auth: noDevices{}}
	}
	devs, err := accountimport.List(ctx, src, t)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: accounts import: %v\n", err)
		return exitFailure
	}
	if len(devs) == 0 {
		fmt.Fprintf(c.stdout, "%s holds no linked devices\n", shown)
		return exitOK
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JID\tPUSH NAME\tPLATFORM\tIN WILDCAT")
	for _, d := range devs {
		present := "no"
		if d.Present != "" {
			present = "yes, account " + d.Present
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.JID, orDash(d.PushName), orDash(d.Platform), present)
	}
	_ = tw.Flush()
	fmt.Fprintf(c.stdout, "\nnothing imported: choose devices with --jid JID (repeatable) or --all\n")
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// noDevices is a Wildcat store with nothing in it, for listing before the
// first start.
type noDevices struct {
	storecopy.Importer[*authstore.Account]
}

func (noDevices) Devices(context.Context) (map[string]string, error) { return nil, nil }
