package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// ChannelSource hands out an account's channel calls; the session Manager
// implements it.
type ChannelSource interface {
	Channels(ctx context.Context, accountID string) (session.ChannelSession, error)
}

type channelRoutes struct {
	source ChannelSource
}

// Channel messages per page: WhatsApp serves at most 100 at a time.
const (
	defaultChannelPage = 20
	maxChannelPage     = 100
)

type channelList struct {
	Channels []*session.Channel `json:"channels"`
}

// channelPage is a page of a channel's posts, newest first. NextBefore is
// the before of the next (older) page; null on the last.
type channelPage struct {
	Messages   []*event.Message `json:"messages"`
	NextBefore *int             `json:"nextBefore"`
}

// session returns the account's channel calls, or the problem that says
// why there are none.
func (h *channelRoutes) session(ctx context.Context, id string) (session.ChannelSession, error) {
	cs, err := h.source.Channels(ctx, id)
	if errors.Is(err, session.ErrChannelsUnsupported) {
		return nil, &Error{Status: http.StatusNotImplemented, Slug: "channels-unsupported", Title: "Channels not supported",
			Detail: errDetail(err), Err: err}
	}
	if err != nil {
		return nil, accountError(err)
	}
	return cs, nil
}

// list answers GET /v1/accounts/{id}/channels: the channels the account
// follows.
func (h *channelRoutes) list(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	cs, err := h.session(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	chans, err := cs.Channels(r.Context())
	if err != nil {
		return accountError(err)
	}
	if chans == nil {
		chans = []*session.Channel{}
	}
	return WriteJSON(w, http.StatusOK, channelList{Channels: chans})
}

// messages answers GET /v1/accounts/{id}/channels/{jid}/messages: a page
// of the channel's posts, newest first; before (a post's server ID, its
// messageId) pages back.
func (h *channelRoutes) messages(w http.ResponseWriter, r *http.Request) error {
	vars := mux.Vars(r)
	jid := vars["jid"]
	if !strings.HasSuffix(jid, "@newsletter") || len(jid) == len("@newsletter") {
		return Invalid("jid", "%q is not a channel JID (…@newsletter)", jid)
	}
	qs := r.URL.Query()
	if err := onlyParams(qs, "limit", "before"); err != nil {
		return err
	}
	limit := defaultChannelPage
	if v := qs.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxChannelPage {
			return Invalid("limit", "must be a whole number from 1 to %d, got %q", maxChannelPage, v)
		}
		limit = n
	}
	before := 0
	if v := qs.Get("before"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Invalid("before", "must be a post's server ID (a whole number above 0), got %q", v)
		}
		before = n
	}
	cs, err := h.session(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	// One more than the page tells whether there is an older page.
	msgs, err := cs.ChannelMessages(r.Context(), jid, limit+1, before)
	if errors.Is(err, session.ErrChannelNotFound) {
		return &Error{Status: http.StatusNotFound, Slug: "not-found", Title: "Not found", Field: "jid", Detail: errDetail(err), Err: err}
	}
	if err != nil {
		return accountError(err)
	}
	page := channelPage{Messages: msgs}
	if page.Messages == nil {
		page.Messages = []*event.Message{}
	}
	if len(msgs) > limit {
		page.Messages = msgs[:limit]
		if next, err := strconv.Atoi(page.Messages[limit-1].MessageID); err == nil {
			page.NextBefore = &next
		}
	}
	return WriteJSON(w, http.StatusOK, page)
}
