package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wildcathub/wildcat/core/configcheck"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/storecopy"
)

// storeReencrypt is `wildcatd store reencrypt`: the configured store
// (mongodb.uri, else data_dir), everything sealed under the configured
// active key (README: Encryption at rest). It takes the daemon's own flags
// and configuration.
func (c *cli) storeReencrypt(args []string) int {
	loaded, code := c.loadConfig("store reencrypt", args)
	if loaded == nil {
		return code
	}
	cfg := loaded.Config
	keys, err := configcheck.Keyring(&cfg)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: %v\n", err)
		return exitUsage
	}
	if !keys.Enabled() {
		fmt.Fprintf(c.stderr, "wildcatd: %s: no encryption key is configured; set it (or %s, or WILDCAT_ENCRYPTION_KEYS) before re-encrypting\n",
			sealing.KeysKey, sealing.KeyFileKey)
		return exitUsage
	}
	loc := cfg.DataDir
	if cfg.MongoDB.URI != "" {
		loc = cfg.MongoDB.URI
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	e, err := storecopy.Open(ctx, loc, storecopy.OpenOptions{Database: cfg.MongoDB.Database})
	if errors.Is(err, storecopy.ErrInUse) {
		fmt.Fprintf(c.stderr, "wildcatd: store reencrypt: %s is in use by a running wildcatd: stop it before re-encrypting\n", loc)
		return exitFailure
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: store reencrypt: %v\n", redactErr(err, loc))
		if errors.Is(err, storecopy.ErrBadLocation) {
			return exitUsage
		}
		return exitFailure
	}
	res, err := storecopy.Reencrypt(ctx, e, keys)
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	if res != nil {
		for _, k := range res.Kinds {
			fmt.Fprintf(c.stdout, "%-18s %d re-encrypted\n", k.Name, k.Copied)
		}
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: store reencrypt: %v\n", redactErr(err, loc))
		return exitFailure
	}
	fmt.Fprintf(c.stdout, "everything in %s is sealed under key %q (%s); keys other than it may now be removed\n",
		store.Redact(loc), keys.ActiveID(), time.Since(start).Round(time.Millisecond))
	return exitOK
}
