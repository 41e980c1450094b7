package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/pflag"

	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/storecopy"
)

const storeCopyUsage = `Usage: wildcatd store copy --from LOCATION --to LOCATION [flags]

Copies everything an installation keeps from one storage engine to another:
accounts, the WhatsApp auth state of every linked phone, messages, chats,
idempotency keys, media files, media retry answers, webhook endpoints (with
their secrets), the plugins' and rules' key-value stores and the outbox jobs.
Every id, timestamp and state is kept, so a daemon started on the target
carries on where the source left off: linked phones reconnect without
pairing again. An installation that outgrows one machine moves to MongoDB
this way (or back).

A LOCATION is a data directory (its wildcat.db and media/), the path of a
SQLite database file (media/ beside it), or a MongoDB URI (mongodb://… or
mongodb+srv://…). Stop wildcatd first when a side is SQLite: the database
is locked while it runs. The target must hold nothing unless --force is
given; then items with the same id are replaced and others are kept.

Progress goes to stderr (a bar per kind on a terminal, lines otherwise); the
counts per kind to stdout. Exit status: 0 when everything was copied, 1 on a
failure (run it again: a copy is idempotent), 2 on a bad command line or a
target that is not empty.

Flags:
`

func storeCopyFlags(out io.Writer) (fs *pflag.FlagSet, from, to, database *string, force *bool) {
	fs = pflag.NewFlagSet("wildcatd store copy", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	from = fs.String("from", "", "the source: a data directory, a SQLite database file or a mongodb:// URI")
	to = fs.String("to", "", "the target: a data directory, a SQLite database file or a mongodb:// URI")
	database = fs.String("database", "wildcat", "the MongoDB database on a mongodb:// side")
	force = fs.Bool("force", false, "copy into a target that already holds data (items with the same id are replaced)")
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "%s%s", storeCopyUsage, fs.FlagUsages()) }
	return fs, from, to, database, force
}

func (c *cli) storeCopy(args []string) int {
	fs, from, to, database, force := storeCopyFlags(c.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
		return exitUsage
	}
	bad := func(msg string) int {
		fmt.Fprintf(c.stderr, "wildcatd: store copy: %s\n", msg)
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return bad(fmt.Sprintf("unexpected argument %q (locations go in --from and --to)", fs.Arg(0)))
	case strings.TrimSpace(*from) == "":
		return bad("--from is required: a data directory, a SQLite database file or a mongodb:// URI")
	case strings.TrimSpace(*to) == "":
		return bad("--to is required: a data directory, a SQLite database file or a mongodb:// URI")
	case strings.TrimSpace(*database) == "":
		return bad("--database must not be empty")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var progress storecopy.Progress
	if f, ok := c.stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		progress = storecopy.NewBars(c.stderr)
	} else {
		progress = storecopy.NewLines(c.stderr, 5*time.Second)
	}
	start := time.Now()
	res, err := storecopy.Copy(ctx, *from, *to, storecopy.OpenOptions{Database: *database}, *force, progress)
	if res != nil {
		printCounts(c.stdout, res)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: store copy: %v\n", redactErr(err, *from, *to))
		switch {
		case errors.Is(err, storecopy.ErrTargetNotEmpty):
			fmt.Fprintf(c.stderr, "wildcatd: nothing was copied; use --force to copy into it anyway, or choose an empty target\n")
			return exitUsage
		case errors.Is(err, storecopy.ErrBadLocation):
			return exitUsage
		}
		return exitFailure
	}
	fmt.Fprintf(c.stdout, "copied %s to %s in %s\n", store.Redact(*from), store.Redact(*to), time.Since(start).Round(time.Millisecond))
	return exitOK
}

// printCounts prints, per kind, how many items the source had and how many
// were copied.
func printCounts(w io.Writer, res *storecopy.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tsource\tcopied\t")
	for _, k := range res.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", k.Name, k.Source, k.Copied)
	}
	_ = tw.Flush()
}

// redactErr hides the passwords of the URIs in an error message.
func redactErr(err error, uris ...string) string {
	msg := err.Error()
	for _, u := range uris {
		if r := store.Redact(u); r != u {
			msg = strings.ReplaceAll(msg, u, r)
		}
	}
	return msg
}
