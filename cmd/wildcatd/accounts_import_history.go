package main

import (
	"context"
	"fmt"

	"github.com/wildcathub/wildcat/core/accountimport"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/storecopy"
)

// importHistory runs --history after the accounts came in: what it
// imported per account, and what it skipped.
func (c *cli) importHistory(ctx context.Context, src *authstore.Source, t *storecopy.Target, res *accountimport.Result, keys *sealing.Keyring) {
	hist, err := accountimport.History(ctx, src, t, res, keys)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: accounts import: --history: %v (the accounts were imported)\n", err)
		return
	}
	if hist.Layout == "" {
		fmt.Fprintln(c.stdout, "history: no known history layout in the store; no messages imported")
		return
	}
	for _, a := range hist.Accounts {
		fmt.Fprintf(c.stdout, "history of %s (%s): %d messages and %d chats imported, %d skipped\n", a.AccountID, hist.Layout, a.Messages, a.Chats, a.Skipped)
		for _, why := range a.SkippedWhy {
			fmt.Fprintf(c.stdout, "  skipped: %s\n", why)
		}
	}
}
