// Package webhooks is the daemon's webhook registry: the endpoints
// (an EndpointStore, plus those declared in config.yaml), the fan-out
// that turns a pipeline stage "sink: webhooks" into one outbox job per
// matching endpoint (target "webhook:<endpointId>"), the outbox sink that
// hands each job to the webhook plugin with its endpoint's settings, and
// endpoint health: an endpoint that failed every attempt for DisableAfter,
// or that answered 410 Gone, is disabled and a webhook.disabled event is
// sent to the endpoints that subscribe to it.
//
// Per-endpoint isolation comes from the outbox: every endpoint is its own
// target with its own claim loop, so a slow or dead endpoint only ever
// occupies its own delivery slots.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/accountid"
	"github.com/wildcathub/wildcat/core/bounded"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/netguard"
	"github.com/wildcathub/wildcat/sdk/webhooks"
)

// Collection holds the endpoints.
const Collection = "webhooks"

// TargetPrefix starts the outbox target of every endpoint.
const TargetPrefix = "webhook:"

// SinkName is the sink stages name: "sink: webhooks".
const SinkName = "webhooks"

// Webhook-only event kinds. They do not pass through the pipeline: the
// registry delivers them itself.
const (
	// KindTest is sent by POST /v1/webhooks/{id}/test to that endpoint only.
	KindTest event.Kind = "webhook.test"
	// KindDisabled is sent to every enabled endpoint whose events match it
	// when an endpoint is disabled for its health (annotations: endpointId,
	// url, reason).
	KindDisabled event.Kind = "webhook.disabled"
)

// RotationGrace is how long a rotated-out secret still signs requests.
const RotationGrace = 24 * time.Hour

// Source says who manages an endpoint.
const (
	SourceAPI    = "api"
	SourceConfig = "config"
)

// Endpoint is one registered webhook receiver.
type Endpoint struct {
	ID       string   `bson:"_id" json:"id"`
	URL      string   `bson:"url" json:"url"`
	Events   []string `bson:"events" json:"events"`
	Accounts []string `bson:"accounts" json:"accounts"`
	// Sources filters by who caused the event (phone, api, rule, plugin,
	// history) or "*" for all (the default): unlike the pipeline's inline
	// stages, an endpoint gets what rules and plugins send unless it says
	// otherwise. Empty (an endpoint stored before the field existed) also
	// means all.
	Sources     []string          `bson:"sources,omitempty" json:"sources"`
	Description string            `bson:"description" json:"description"`
	Headers     map[string]string `bson:"headers" json:"headers"`
	Enabled     bool              `bson:"enabled" json:"enabled"`
	// RateLimit caps deliveries per second to this endpoint; 0: no limit.
	RateLimit float64 `bson:"rateLimit" json:"rateLimit"`
	// Batch posts several deliveries at once as one JSON array of
	// envelopes, signed as one body (see sdk/webhooks); off: one request
	// per event. Absent on endpoints stored before it existed: off.
	Batch bool `bson:"batch,omitempty" json:"batch"`
	// Ordered delivers the events of one chat one at a time, in order: a
	// delivery that fails holds back the later ones of its chat (only of
	// its chat) until it succeeds or is dead-lettered. Absent on endpoints
	// stored before it existed: off.
	Ordered bool   `bson:"ordered,omitempty" json:"ordered"`
	Source  string `bson:"source" json:"source"`

	// Secret signs every request; PreviousSecret too until
	// PreviousSecretUntil (a rotation's grace period).
	Secret              string     `bson:"secret" json:"secret,omitempty"`
	PreviousSecret      string     `bson:"previousSecret,omitempty" json:"-"`
	PreviousSecretUntil *time.Time `bson:"previousSecretUntil,omitempty" json:"previousSecretExpiresAt,omitempty"`

	// Health: FailingSince is the first failed attempt after the last
	// success; DisabledReason and DisabledAt say why and when the endpoint
	// was disabled (by its health, a 410 or an operator).
	FailingSince   *time.Time `bson:"failingSince,omitempty" json:"failingSince,omitempty"`
	DisabledReason string     `bson:"disabledReason,omitempty" json:"disabledReason,omitempty"`
	DisabledAt     *time.Time `bson:"disabledAt,omitempty" json:"disabledAt,omitempty"`

	CreatedAt time.Time `bson:"createdAt" json:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt" json:"updatedAt"`
}

// Target is the endpoint's outbox target.
func (e *Endpoint) Target() string { return TargetPrefix + e.ID }

// Public is a copy without the secret, for answers other than create and
// rotate.
func (e *Endpoint) Public() *Endpoint {
	c := *e
	c.Secret, c.PreviousSecret = "", ""
	return &c
}

// secrets are the ones that sign at now, newest first.
func (e *Endpoint) secrets(now time.Time) []string {
	s := []string{e.Secret}
	if e.PreviousSecret != "" && e.PreviousSecretUntil != nil && now.Before(*e.PreviousSecretUntil) {
		s = append(s, e.PreviousSecret)
	}
	return s
}

// Matches reports whether the endpoint wants ev by its events, accounts
// and sources filters (enabled or not). The webhook's own kinds
// (webhook.disabled) have no account and no source worth filtering by:
// they pass those two filters.
func (e *Endpoint) Matches(ev *event.Event) bool {
	kindOK := slices.ContainsFunc(e.Events, func(p string) bool { return event.MatchKind(p, ev.Kind) })
	acctOK := slices.ContainsFunc(e.Accounts, func(a string) bool { return a == "*" || a == ev.AccountID })
	srcOK := len(e.Sources) == 0 || slices.ContainsFunc(e.Sources, func(s string) bool { return s == "*" || s == string(ev.Source) })
	own := ev.Kind == KindDisabled || ev.Kind == KindTest
	return kindOK && (acctOK || ev.AccountID == "") && (srcOK || own)
}

// AllSources lists the sources an endpoint's sources filter may name
// besides "*".
var AllSources = []string{string(event.SourcePhone), string(event.SourceAPI), string(event.SourceRule),
	string(event.SourcePlugin), string(event.SourceHistory)}

// ValidateSources checks a sources filter: "*" or event sources.
func ValidateSources(field string, sources []string) error {
	if len(sources) == 0 {
		return &FieldError{field, `must list at least one source, or ["*"] for all`}
	}
	for i, s := range sources {
		if s != "*" && !event.Source(s).Valid() {
			return &FieldError{fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("unknown source %q (valid: *, %s)", s, strings.Join(AllSources, ", "))}
		}
	}
	return nil
}

// FieldError names the input field at fault.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Errors callers decide by.
var (
	ErrNotFound = errors.New("webhook endpoint not found")
	ErrExists   = errors.New("webhook endpoint id already exists")
)

var idRE = bounded.MustCompile(`^[a-z0-9][a-z0-9_-]*$`, 1, 63)

// validateID checks a client- or config-chosen id.
func validateID(field, id string) error {
	if !idRE.MatchString(id) {
		return &FieldError{field, fmt.Sprintf("%q is not 1-63 characters of a-z, 0-9, _ and -, starting with a letter or digit", id)}
	}
	return nil
}

// ValidateEvents checks an events filter: "*", event kinds and families
// ("message.*"), or the webhook kinds.
func ValidateEvents(field string, events []string) error {
	if len(events) == 0 {
		return &FieldError{field, `must list at least one event kind, or ["*"] for all`}
	}
	for i, p := range events {
		switch p {
		case string(KindTest), string(KindDisabled), "webhook.*":
			continue
		}
		if err := event.ValidateKindPattern(p); err != nil {
			return &FieldError{fmt.Sprintf("%s[%d]", field, i), err.Error() + ", webhook.disabled, webhook.*"}
		}
	}
	return nil
}

// ValidateAccounts checks an accounts filter: "*" or account ids.
func ValidateAccounts(field string, accounts []string) error {
	if len(accounts) == 0 {
		return &FieldError{field, `must list at least one account id, or ["*"] for all`}
	}
	for i, a := range accounts {
		if a == "*" {
			continue
		}
		if err := accountid.Check(a); err != nil {
			return &FieldError{fmt.Sprintf("%s[%d]", field, i), err.Error()}
		}
	}
	return nil
}

// reservedHeaders are set by the plugin; an endpoint cannot override them.
var reservedHeaders = []string{"Content-Type", "Content-Length", "Host", "User-Agent", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Transfer-Encoding", "Connection"}

// ValidateHeaders checks an endpoint's own headers.
func ValidateHeaders(field string, h map[string]string) error {
	if len(h) > 32 {
		return &FieldError{field, "at most 32 headers"}
	}
	for k, v := range h {
		ck := http.CanonicalHeaderKey(k)
		if k == "" || strings.ContainsAny(k, " :\r\n\t") || !validToken(k) {
			return &FieldError{field + "." + k, "not a valid header name"}
		}
		if slices.Contains(reservedHeaders, ck) {
			return &FieldError{field + "." + k, "is set by the daemon and cannot be overridden"}
		}
		if strings.ContainsAny(v, "\r\n\x00") || len(v) > 4096 {
			return &FieldError{field + "." + k, "header values are one line of at most 4096 bytes"}
		}
	}
	return nil
}

func validToken(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// ValidateRateLimit checks deliveries per second.
func ValidateRateLimit(field string, r float64) error {
	if r < 0 || r > 10000 {
		return &FieldError{field, "must be from 0 (no limit) to 10000 deliveries per second"}
	}
	return nil
}

// ValidateURL checks the URL's form and, unless allowPrivate, that it does
// not point at the daemon's own network (see netguard.CheckURL).
func ValidateURL(ctx context.Context, field, raw string, allowPrivate bool, r netguard.Resolver) error {
	if len(raw) > 2048 {
		return &FieldError{field, "at most 2048 characters"}
	}
	if _, err := netguard.CheckURL(ctx, raw, allowPrivate, r); err != nil {
		return &FieldError{field, err.Error()}
	}
	return nil
}

// ValidateSecret checks a secret supplied by an operator.
func ValidateSecret(field, s string) error {
	if err := webhooks.ValidSecret(s); err != nil {
		return &FieldError{field, "must be whsec_ followed by the base64 of 24 to 64 random bytes"}
	}
	return nil
}
