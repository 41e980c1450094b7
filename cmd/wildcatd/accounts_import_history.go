package main

import (
	"context"
	"fmt"

	"github.com/wildcathub/wildcat/core/accountimport"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/storecopy"
)

// importHistory runs --history after the accounts came in: what it
// imported per account, and what it skipped.
func (c *cli) importHistory(ctx context.Context, src *authstore.Source, t *storecopy.Target, res *accountimport.Result, opts accountimport.HistoryOptions) bool {
	hist, err := accountimport.History(ctx, src, t, res, opts)
	if err != nil {
		fmt.Fprintf(c.stderr, "wildcatd: accounts import: --history: %v (the accounts were imported)\n", err)
		return false
	}
	if hist.Layout == "" {
		fmt.Fprintf(c.stdout, "history: no known history layout in %s; no messages imported\n", hist.Where)
		return true
	}
	for _, a := range hist.Accounts {
		fmt.Fprintf(c.stdout, "history of %s from %s (%s): %d messages in %d chats imported, %d already in Wildcat\n",
			a.AccountID, hist.Where, hist.Layout, a.Messages, a.Chats, a.Present)
		for _, line := range a.SkippedLines() {
			fmt.Fprintf(c.stdout, "  skipped %s\n", line)
		}
	}
	return true
}
