package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// MediaArchiver queues media archiving for stored messages (POST
// /v1/media/archive); the daemon implements it.
type MediaArchiver interface {
	BackfillMediaArchive(ctx context.Context, accountID string, since time.Time) (MediaBackfill, error)
}

// ErrMediaArchiveOff is what a MediaArchiver's error wraps (errors.Is)
// when no media archive is configured: answered 409.
var ErrMediaArchiveOff = errors.New("media archive not enabled")

// MediaBackfill is the answer of POST /v1/media/archive.
type MediaBackfill struct {
	// Target is the outbox target the jobs went to.
	Target string `json:"target"`
	// Matched counts the media messages the filter selected; Queued those
	// of them not archived yet, now queued (or already queued: job ids are
	// the pipeline's, so nothing is queued twice).
	Matched int `json:"matched"`
	Queued  int `json:"queued"`
}

type mediaArchiveRoutes struct {
	archiver MediaArchiver
	accounts Accounts
}

type backfillRequest struct {
	Account string     `json:"account"`
	Since   *time.Time `json:"since"`
}

// backfill answers POST /v1/media/archive {account, since}: archiving is
// queued for the account's media messages stored before the archive was
// enabled (or that it missed).
func (h *mediaArchiveRoutes) backfill(w http.ResponseWriter, r *http.Request) error {
	var req backfillRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Account) == "" {
		return Invalid("account", "is required: the account whose media messages to archive")
	}
	if h.accounts != nil {
		if _, err := h.accounts.GetAccount(r.Context(), req.Account); err != nil {
			return accountError(err)
		}
	}
	var since time.Time
	if req.Since != nil {
		since = *req.Since
	}
	res, err := h.archiver.BackfillMediaArchive(r.Context(), req.Account, since)
	if errors.Is(err, ErrMediaArchiveOff) {
		return Conflict("%v", err)
	}
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusAccepted, res)
}
