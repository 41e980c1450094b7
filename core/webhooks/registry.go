package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/netguard"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/sdk/webhooks"
)

// Deliverer makes one attempt through the webhook plugin;
// *pluginhost.Plugin is one.
type Deliverer interface {
	DeliverWith(ctx context.Context, ev *event.Event, target string, attempt int, targetConfig []byte) pluginhost.DeliverResult
}

// Enqueuer queues an event for targets; the outbox is one.
type Enqueuer interface {
	Enqueue(ctx context.Context, ev *event.Event, targets ...string) error
}

// Options configures a Registry.
type Options struct {
	// Store keeps the endpoints (NewMongoEndpoints, NewSQLiteEndpoints).
	Store EndpointStore
	// Deliverer is the webhook plugin; nil makes every attempt a retry
	// saying no plugin is configured.
	Deliverer Deliverer
	// Enqueuer receives webhook.disabled events.
	Enqueuer Enqueuer
	// AllowPrivate lets endpoints reach loopback, private and link-local
	// addresses (webhooks.allow_private_targets).
	AllowPrivate bool
	// Timeout of one delivery attempt; default 15 s.
	Timeout time.Duration
	// DisableAfter: an endpoint failing every attempt this long is
	// disabled; default 120 h.
	DisableAfter time.Duration
	// Resolver checks URLs at registration; default net.DefaultResolver.
	Resolver netguard.Resolver
	// Clock reads the time for health and rotation (tests use a fake).
	Clock  outbox.Clock
	Logger *slog.Logger
	// OnChange is called after an endpoint is added or changed (deleted
	// false) or removed (deleted true), by this process or — seen by
	// Refresh — another daemon. The daemon keeps the dispatcher's targets
	// in step with it.
	OnChange func(ep *Endpoint, deleted bool)
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Registry is the set of endpoints: stored in the Store, cached in memory
// for the fan-out (refreshed by Refresh, which the daemon calls
// periodically so endpoints changed by other daemons are picked up).
type Registry struct {
	st   EndpointStore
	opts Options
	log  *slog.Logger

	mu       sync.RWMutex
	cache    map[string]*Endpoint
	limiters map[string]*rate.Limiter
	// seq counts changes made here (not by Refresh); changed is each id's
	// last one. A Refresh leaves alone an id changed after its List began:
	// what it read is older (an endpoint created or deleted meanwhile was
	// otherwise dropped or brought back until the next Refresh).
	seq     uint64
	changed map[string]uint64
}

// New returns a registry; call Refresh to load the stored endpoints.
func New(opts Options) *Registry {
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	if opts.DisableAfter <= 0 {
		opts.DisableAfter = 120 * time.Hour
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{st: opts.Store, opts: opts, log: opts.Logger,
		cache: map[string]*Endpoint{}, limiters: map[string]*rate.Limiter{}, changed: map[string]uint64{},
		seq: 1} // a Refresh's since is then never 0, which means "made here"
}

// SetDeliverer installs the webhook plugin (the daemon knows it once the
// plugin host is built).
func (r *Registry) SetDeliverer(d Deliverer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opts.Deliverer = d
}

func (r *Registry) now() time.Time { return r.opts.Clock.Now().UTC().Truncate(time.Millisecond) }

// Input is what a client sends to create an endpoint (POST /v1/webhooks);
// nil fields take their defaults. For an update (PATCH) nil means
// unchanged.
type Input struct {
	ID          *string            `json:"id"`
	URL         *string            `json:"url"`
	Events      *[]string          `json:"events"`
	Accounts    *[]string          `json:"accounts"`
	Sources     *[]string          `json:"sources"`
	Description *string            `json:"description"`
	Headers     *map[string]string `json:"headers"`
	Enabled     *bool              `json:"enabled"`
	RateLimit   *float64           `json:"rateLimit"`
	Batch       *bool              `json:"batch"`
	Ordered     *bool              `json:"ordered"`
}

// apply validates in and writes it onto e. Field names are the JSON ones.
func (r *Registry) apply(ctx context.Context, e *Endpoint, in Input) error {
	if in.URL != nil {
		if err := ValidateURL(ctx, "url", *in.URL, r.opts.AllowPrivate, r.opts.Resolver); err != nil {
			return err
		}
		e.URL = *in.URL
	}
	if in.Events != nil {
		if err := ValidateEvents("events", *in.Events); err != nil {
			return err
		}
		e.Events = slices.Clone(*in.Events)
	}
	if in.Accounts != nil {
		if err := ValidateAccounts("accounts", *in.Accounts); err != nil {
			return err
		}
		e.Accounts = slices.Clone(*in.Accounts)
	}
	if in.Sources != nil {
		if err := ValidateSources("sources", *in.Sources); err != nil {
			return err
		}
		e.Sources = slices.Clone(*in.Sources)
	}
	if in.Description != nil {
		if len(*in.Description) > 1024 {
			return &FieldError{"description", "at most 1024 characters"}
		}
		e.Description = *in.Description
	}
	if in.Headers != nil {
		if err := ValidateHeaders("headers", *in.Headers); err != nil {
			return err
		}
		e.Headers = map[string]string{}
		for k, v := range *in.Headers {
			e.Headers[k] = v
		}
	}
	if in.RateLimit != nil {
		if err := ValidateRateLimit("rateLimit", *in.RateLimit); err != nil {
			return err
		}
		e.RateLimit = *in.RateLimit
	}
	if in.Batch != nil {
		e.Batch = *in.Batch
	}
	if in.Ordered != nil {
		e.Ordered = *in.Ordered
	}
	if in.Enabled != nil && *in.Enabled != e.Enabled {
		e.Enabled = *in.Enabled
		if e.Enabled {
			// Re-enabled: a fresh health record. Nothing is replayed by
			// itself (POST /v1/deliveries/replay does that).
			e.DisabledReason, e.DisabledAt, e.FailingSince = "", nil, nil
		} else {
			now := r.now()
			e.DisabledReason, e.DisabledAt = "disabled by an operator", &now
		}
	}
	return nil
}

// Create stores a new endpoint with a fresh secret.
func (r *Registry) Create(ctx context.Context, in Input) (*Endpoint, error) {
	now := r.now()
	e := &Endpoint{Events: []string{"*"}, Accounts: []string{"*"}, Sources: []string{"*"}, Headers: map[string]string{}, Enabled: true,
		Source: SourceAPI, Secret: webhooks.NewSecret(), CreatedAt: now, UpdatedAt: now}
	if in.ID != nil {
		if err := validateID("id", *in.ID); err != nil {
			return nil, err
		}
		e.ID = *in.ID
	} else {
		e.ID = newID()
	}
	if in.URL == nil {
		return nil, &FieldError{"url", "is required: the receiver's http or https URL"}
	}
	enabled := in.Enabled
	in.Enabled = nil
	if err := r.apply(ctx, e, in); err != nil {
		return nil, err
	}
	if enabled != nil && !*enabled {
		e.Enabled, e.DisabledReason, e.DisabledAt = false, "created disabled", &now
	}
	if err := r.st.Insert(ctx, e); err != nil {
		return nil, err
	}
	r.remember(e)
	return e, nil
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "wh_" + hex.EncodeToString(b)
}

// Get reads an endpoint from the store.
func (r *Registry) Get(ctx context.Context, id string) (*Endpoint, error) {
	e, err := r.st.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return withDefaults(e), nil
}

// List reads every endpoint, by id.
func (r *Registry) List(ctx context.Context) ([]*Endpoint, error) {
	all, err := r.st.List(ctx)
	for _, e := range all {
		withDefaults(e)
	}
	return all, err
}

// withDefaults fills in what an endpoint stored by an older version lacks:
// a sources filter (all).
func withDefaults(e *Endpoint) *Endpoint {
	if len(e.Sources) == 0 {
		e.Sources = []string{"*"}
	}
	return e
}

// Update applies a PATCH.
func (r *Registry) Update(ctx context.Context, id string, in Input) (*Endpoint, error) {
	if in.ID != nil && *in.ID != id {
		return nil, &FieldError{"id", "cannot be changed"}
	}
	e, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := r.apply(ctx, e, in); err != nil {
		return nil, err
	}
	e.UpdatedAt = r.now()
	if err := r.replace(ctx, e); err != nil {
		return nil, err
	}
	r.remember(e)
	return e, nil
}

func (r *Registry) replace(ctx context.Context, e *Endpoint) error {
	return r.st.Replace(ctx, e)
}

// Delete removes an endpoint. Its queued jobs stay in the outbox,
// undelivered (listable; a new endpoint with the same id would take them).
func (r *Registry) Delete(ctx context.Context, id string) error {
	if err := r.st.Delete(ctx, id); err != nil {
		return err
	}
	r.forget(id)
	return nil
}

// RotateSecret gives the endpoint a new secret; the old one keeps signing
// (alongside) for RotationGrace.
func (r *Registry) RotateSecret(ctx context.Context, id string) (*Endpoint, error) {
	e, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	now := r.now()
	until := now.Add(RotationGrace)
	e.PreviousSecret, e.PreviousSecretUntil, e.Secret = e.Secret, &until, webhooks.NewSecret()
	e.UpdatedAt = now
	if err := r.replace(ctx, e); err != nil {
		return nil, err
	}
	r.remember(e)
	return e, nil
}

// Declared is an endpoint in config.yaml (webhooks.endpoints); see
// config.WebhookEndpoint. It is upserted at every start under its id:
// url, events, accounts, sources, description, headers, rate_limit, batch
// and ordered follow the file. Secret, when set, is the signing secret; otherwise one
// is generated once and kept (rotate it over REST to learn it). enabled:
// false disables the endpoint; true (the default) does not re-enable an
// endpoint its health disabled — an operator does that with PATCH.
type Declared = config.WebhookEndpoint

// ValidateDeclared checks config.yaml's endpoints; errors name the key,
// e.g. webhooks.endpoints[0].url. URLs are checked for their form only
// here; Upsert checks their addresses.
func ValidateDeclared(ds []Declared) error {
	seen := map[string]bool{}
	for i, d := range ds {
		key := fmt.Sprintf("webhooks.endpoints[%d]", i)
		if err := validateID(key+".id", d.ID); err != nil {
			return err
		}
		if seen[d.ID] {
			return &FieldError{key + ".id", fmt.Sprintf("%q is declared twice", d.ID)}
		}
		seen[d.ID] = true
		if err := ValidateURL(context.Background(), key+".url", d.URL, true, nil); err != nil {
			return err
		}
		if len(d.Events) > 0 {
			if err := ValidateEvents(key+".events", d.Events); err != nil {
				return err
			}
		}
		if len(d.Accounts) > 0 {
			if err := ValidateAccounts(key+".accounts", d.Accounts); err != nil {
				return err
			}
		}
		if len(d.Sources) > 0 {
			if err := ValidateSources(key+".sources", d.Sources); err != nil {
				return err
			}
		}
		if err := ValidateHeaders(key+".headers", d.Headers); err != nil {
			return err
		}
		if err := ValidateRateLimit(key+".rate_limit", d.RateLimit); err != nil {
			return err
		}
		if d.Secret != "" {
			if err := ValidateSecret(key+".secret", d.Secret); err != nil {
				return err
			}
		}
	}
	return nil
}

// Upsert stores the declared endpoints (see Declared).
func (r *Registry) Upsert(ctx context.Context, ds []Declared) error {
	for i, d := range ds {
		if err := ValidateURL(ctx, fmt.Sprintf("webhooks.endpoints[%d].url", i), d.URL, r.opts.AllowPrivate, r.opts.Resolver); err != nil {
			return err
		}
		now := r.now()
		e, err := r.Get(ctx, d.ID)
		insert := errors.Is(err, ErrNotFound)
		if err != nil && !insert {
			return err
		}
		if insert {
			e = &Endpoint{ID: d.ID, Enabled: true, Secret: webhooks.NewSecret(), CreatedAt: now}
		}
		e.URL, e.Description, e.RateLimit, e.Batch, e.Ordered, e.Source, e.UpdatedAt = d.URL, d.Description, d.RateLimit, d.Batch, d.Ordered, SourceConfig, now
		e.Events, e.Accounts, e.Sources = orAll(d.Events), orAll(d.Accounts), orAll(d.Sources)
		e.Headers = map[string]string{}
		for k, v := range d.Headers {
			e.Headers[k] = v
		}
		if d.Secret != "" && d.Secret != e.Secret {
			e.Secret, e.PreviousSecret, e.PreviousSecretUntil = d.Secret, "", nil
		}
		if d.Enabled != nil && !*d.Enabled && e.Enabled {
			e.Enabled, e.DisabledReason, e.DisabledAt = false, "disabled in config.yaml", &now
		}
		if insert {
			err = r.st.Insert(ctx, e)
		} else {
			err = r.replace(ctx, e)
		}
		if err != nil && !errors.Is(err, ErrExists) { // another daemon inserted it first: fine
			return fmt.Errorf("store declared webhook endpoint %q: %w", d.ID, err)
		}
		r.remember(e)
	}
	return nil
}

func orAll(s []string) []string {
	if len(s) == 0 {
		return []string{"*"}
	}
	return slices.Clone(s)
}

// Refresh reloads every endpoint into the cache and reports what changed
// through OnChange.
func (r *Registry) Refresh(ctx context.Context) error {
	r.mu.RLock()
	began := r.seq
	r.mu.RUnlock()
	all, err := r.List(ctx)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, e := range all {
		seen[e.ID] = true
		r.set(e, began)
	}
	r.mu.RLock()
	var gone []string
	for id := range r.cache {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	r.mu.RUnlock()
	for _, id := range gone {
		r.unset(id, began)
	}
	return nil
}

// remember caches e, a change made here, and reports it when new or
// changed.
func (r *Registry) remember(e *Endpoint) { r.set(e, 0) }

// set caches e; from a Refresh that began at seq since (> 0), only when the
// id was not changed here after that.
func (r *Registry) set(e *Endpoint, since uint64) {
	r.mu.Lock()
	if !r.mayChange(e.ID, since) {
		r.mu.Unlock()
		return
	}
	old := r.cache[e.ID]
	r.cache[e.ID] = e
	if e.RateLimit > 0 {
		l := r.limiters[e.ID]
		if l == nil || l.Limit() != rate.Limit(e.RateLimit) {
			r.limiters[e.ID] = rate.NewLimiter(rate.Limit(e.RateLimit), max(1, int(e.RateLimit)))
		}
	} else {
		delete(r.limiters, e.ID)
	}
	onChange := r.opts.OnChange
	r.mu.Unlock()
	// Health bookkeeping (failingSince) is no change worth reporting.
	if onChange != nil && (old == nil || old.Enabled != e.Enabled || !old.UpdatedAt.Equal(e.UpdatedAt)) {
		onChange(e, false)
	}
}

func equalPtrTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// mayChange reports whether a change to id may be made (r.mu held):
// always for one made here (since 0), which it records; for a Refresh's
// only when id was not changed here after it began.
func (r *Registry) mayChange(id string, since uint64) bool {
	if since == 0 {
		r.seq++
		r.changed[id] = r.seq
		return true
	}
	return r.changed[id] <= since
}

// forget drops id, a change made here.
func (r *Registry) forget(id string) { r.unset(id, 0) }

// unset drops id; from a Refresh, as set.
func (r *Registry) unset(id string, since uint64) {
	r.mu.Lock()
	if !r.mayChange(id, since) {
		r.mu.Unlock()
		return
	}
	old := r.cache[id]
	delete(r.cache, id)
	delete(r.limiters, id)
	onChange := r.opts.OnChange
	r.mu.Unlock()
	if old != nil && onChange != nil {
		onChange(old, true)
	}
}

// cached returns the cached endpoint.
func (r *Registry) cached(id string) *Endpoint {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cache[id]
}

// Cached lists the cached endpoints, by id.
func (r *Registry) Cached() []*Endpoint {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Endpoint, 0, len(r.cache))
	for _, e := range r.cache {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Targets is the fan-out of "sink: webhooks": the target of every enabled
// endpoint whose filters match ev, in id order. An event without an
// account (webhook.disabled) matches any accounts filter.
func (r *Registry) Targets(ev *event.Event) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for _, e := range r.cache {
		if e.Enabled && e.Matches(ev) {
			out = append(out, e.Target())
		}
	}
	sort.Strings(out)
	return out
}

// EndpointID returns the endpoint id of an outbox target, ok=false if the
// target is not a webhook endpoint's.
func EndpointID(target string) (string, bool) {
	return strings.CutPrefix(target, TargetPrefix)
}
