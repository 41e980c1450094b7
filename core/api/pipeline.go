package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
)

// Pipeline is the running pipeline engine.
type Pipeline interface {
	Snapshot() pipeline.Snapshot
	// Reload swaps in new stages; a bad list changes nothing and returns
	// errors naming the stages (*pipeline.StageError).
	Reload(stages []pipeline.StageConfig) error
}

// Deliveries reads and re-queues outbox jobs; the outbox implements it.
type Deliveries interface {
	List(ctx context.Context, f outbox.Filter, cursor string, limit int) (*outbox.Page, error)
	Get(ctx context.Context, id string) (*outbox.Job, error)
	Retry(ctx context.Context, id string) (*outbox.Job, error)
	Replay(ctx context.Context, f outbox.Filter) (int64, error)
}

// ConfigReloader re-reads the daemon's configuration and applies its
// pipeline; a bad file returns a *config.Error naming the key and changes
// nothing.
type ConfigReloader interface {
	ReloadConfig(ctx context.Context) error
}

type pipelineRoutes struct {
	engine   Pipeline
	reloader ConfigReloader
	ruleDirs []string // absolute
}

// checkRuleGlobs refuses rules globs that reach outside the configured rule
// directories: a reload over REST must not make the daemon run (or
// reveal, through load errors) .js files from anywhere on the disk.
func (h *pipelineRoutes) checkRuleGlobs(stages []pipeline.StageConfig) error {
	for i, st := range stages {
		for j, g := range st.Rules {
			field := fmt.Sprintf("stages[%d].rules[%d]", i, j)
			base, err := filepath.Abs(config.GlobBase(g))
			if err != nil {
				return Invalid(field, "cannot resolve %q: %v", g, err)
			}
			inside := false
			for _, d := range h.ruleDirs {
				if rel, err := filepath.Rel(d, base); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
					inside = true
					break
				}
			}
			if !inside {
				if len(h.ruleDirs) == 0 {
					return Invalid(field, "%q: no rule directories are configured; list them in rule_dirs", g)
				}
				return Invalid(field, "%q is outside the rule directories (%s); list its directory in rule_dirs", g, strings.Join(h.ruleDirs, ", "))
			}
		}
	}
	return nil
}

// snapshot renders the engine's state; stages is [] rather than null for
// an empty pipeline.
func (h *pipelineRoutes) snapshot() pipeline.Snapshot {
	s := h.engine.Snapshot()
	if s.Stages == nil {
		s.Stages = []pipeline.StageStats{}
	}
	return s
}

// get answers GET /v1/pipeline.
func (h *pipelineRoutes) get(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, h.snapshot())
}

// reloadRequest is the body of POST /v1/pipeline/reload: the complete new
// stage list, in config.yaml's shape; what runs is exactly what the caller
// sent. Without a body the daemon re-reads its configuration instead.
type reloadRequest struct {
	Stages *[]pipeline.StageConfig `json:"stages"`
}

// reload answers POST /v1/pipeline/reload. A bad list is refused with 400
// naming the first bad stage (field "stages[i]"), and the running stages
// stay as they were; 409 if a concurrent reload got in first.
func (h *pipelineRoutes) reload(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength == 0 && h.reloader != nil {
		if err := h.reloader.ReloadConfig(r.Context()); err != nil {
			var ce *config.Error
			if errors.As(err, &ce) {
				// The file is at fault, not the request; the running
				// stages stay as they were.
				return &Error{Status: http.StatusUnprocessableEntity, Slug: "bad-config", Title: "Configuration file refused",
					Field: ce.Key, Detail: ce.Error()}
			}
			return err
		}
		return WriteJSON(w, http.StatusOK, h.snapshot())
	}
	var req reloadRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Stages == nil {
		return Invalid("stages", "is required: the complete new stage list ([] for none)")
	}
	if err := h.checkRuleGlobs(*req.Stages); err != nil {
		return err
	}
	if err := h.engine.Reload(*req.Stages); err != nil {
		var se *pipeline.StageError
		if errors.As(err, &se) {
			return Invalid(fmt.Sprintf("stages[%d]", se.Index), "%s", se.Error())
		}
		// Not a stage problem: another reload won the race.
		return Conflict("%s", err.Error())
	}
	return WriteJSON(w, http.StatusOK, h.snapshot())
}

type deliveryRoutes struct {
	outbox Deliveries
}

// deliveryPage is the wire form of a page of jobs; nextCursor is null on
// the last.
type deliveryPage struct {
	Deliveries []*outbox.Job `json:"deliveries"`
	NextCursor *string       `json:"nextCursor"`
}

// list answers GET /v1/deliveries, newest first.
func (h *deliveryRoutes) list(w http.ResponseWriter, r *http.Request) error {
	qs := r.URL.Query()
	if err := onlyParams(qs, "state", "sink", "eventId", "accountId", "since", "cursor", "limit"); err != nil {
		return err
	}
	f := outbox.Filter{State: outbox.State(qs.Get("state")), Target: qs.Get("sink"), EventID: qs.Get("eventId"), AccountID: qs.Get("accountId")}
	if f.State != "" && !f.State.Valid() {
		return Invalid("state", "%q is not one of pending, processing, done, deadletter", f.State)
	}
	var err error
	if f.Since, err = timeParam(qs, "since"); err != nil {
		return err
	}
	limit := 50
	if v := qs.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > outbox.MaxPage {
			return Invalid("limit", "must be a whole number from 1 to %d, got %q", outbox.MaxPage, v)
		}
		limit = n
	}
	page, err := h.outbox.List(r.Context(), f, qs.Get("cursor"), limit)
	if errors.Is(err, outbox.ErrBadCursor) {
		return Invalid("cursor", "not a cursor returned by this API")
	}
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, deliveryPage{Deliveries: page.Jobs, NextCursor: optCursor(page.Next)})
}

// get answers GET /v1/deliveries/{id}.
func (h *deliveryRoutes) get(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	j, err := h.outbox.Get(r.Context(), id)
	if err != nil {
		return deliveryError(err, id)
	}
	return WriteJSON(w, http.StatusOK, j)
}

// retry answers POST /v1/deliveries/{id}/retry: a done or dead-lettered
// job is queued again, due now (409 while it is still pending or
// processing).
func (h *deliveryRoutes) retry(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	j, err := h.outbox.Retry(r.Context(), id)
	if err != nil {
		return deliveryError(err, id)
	}
	return WriteJSON(w, http.StatusOK, j)
}

// replayRequest selects the jobs POST /v1/deliveries/replay queues again.
type replayRequest struct {
	// State is deadletter (default) or done.
	State     outbox.State `json:"state"`
	Sink      string       `json:"sink"`
	EventID   string       `json:"eventId"`
	AccountID string       `json:"accountId"`
	Since     *time.Time   `json:"since"`
}

// replay answers POST /v1/deliveries/replay with how many jobs it queued.
func (h *deliveryRoutes) replay(w http.ResponseWriter, r *http.Request) error {
	var req replayRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	switch req.State {
	case "", outbox.StateDeadLetter, outbox.StateDone:
	default:
		return Invalid("state", "%q cannot be replayed: use deadletter (the default) or done", req.State)
	}
	f := outbox.Filter{State: req.State, Target: req.Sink, EventID: req.EventID, AccountID: req.AccountID}
	if req.Since != nil {
		f.Since = *req.Since
	}
	n, err := h.outbox.Replay(r.Context(), f)
	if err != nil {
		return deliveryError(err, "")
	}
	return WriteJSON(w, http.StatusOK, map[string]int64{"count": n})
}

func deliveryError(err error, id string) error {
	switch {
	case errors.Is(err, outbox.ErrNotFound):
		return NotFound("delivery", id)
	case errors.Is(err, outbox.ErrNotRetryable):
		return Conflict("delivery %q is still pending or processing; it will be attempted anyway", id)
	}
	return err
}
