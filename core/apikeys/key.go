// Package apikeys holds the REST API's keys: their store on both engines,
// and the Keyring that creates, checks, rotates and revokes them. A key is
// shown once, as a token wck_<id>_<secret>; the store keeps only an
// HMAC-SHA256 of it under a server secret that lives outside the database,
// so a stolen database yields no usable key.
package apikeys

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wildcathub/wildcat/core/bounded"
)

// Scopes a key can hold. Admin allows everything.
const (
	ScopeAdmin          = "admin"
	ScopeAccountsRead   = "accounts:read"
	ScopeAccountsWrite  = "accounts:write"
	ScopeMessagesRead   = "messages:read"
	ScopeMessagesSend   = "messages:send"
	ScopeWebhooksManage = "webhooks:manage"
	ScopeRulesManage    = "rules:manage"
	ScopePluginsRead    = "plugins:read"
	ScopeEventsRead     = "events:read"
	ScopeGroupsRead     = "groups:read"
	ScopeGroupsManage   = "groups:manage"
)

// AllScopes lists every scope, for validation and documentation.
var AllScopes = []string{ScopeAdmin, ScopeAccountsRead, ScopeAccountsWrite, ScopeMessagesRead, ScopeMessagesSend,
	ScopeWebhooksManage, ScopeRulesManage, ScopePluginsRead, ScopeEventsRead, ScopeGroupsRead, ScopeGroupsManage}

// Key is one stored key. Accounts empty means every account.
type Key struct {
	ID        string     `bson:"_id"`
	Name      string     `bson:"name"`
	Scopes    []string   `bson:"scopes"`
	Accounts  []string   `bson:"accounts,omitempty"`
	Hash      []byte     `bson:"hash"`
	ExpiresAt *time.Time `bson:"expiresAt,omitempty"`
	CreatedAt time.Time  `bson:"createdAt"`
	RotatedAt *time.Time `bson:"rotatedAt,omitempty"`
}

// Has reports whether the key grants scope (admin grants every scope).
func (k *Key) Has(scope string) bool {
	return slices.Contains(k.Scopes, ScopeAdmin) || slices.Contains(k.Scopes, scope)
}

// Restricted reports whether the key is limited to listed accounts.
func (k *Key) Restricted() bool { return len(k.Accounts) > 0 }

// Allows reports whether the key may act for account.
func (k *Key) Allows(account string) bool {
	return !k.Restricted() || slices.Contains(k.Accounts, account)
}

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool { return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) }

// Errors of the store and the Keyring.
var (
	ErrNotFound = errors.New("api key not found")
	ErrExists   = errors.New("api key already exists")
	// ErrInvalid: the token is malformed, unknown, or its secret is wrong.
	ErrInvalid = errors.New("invalid API key")
	// ErrExpired: the token was right but its key has expired.
	ErrExpired = errors.New("API key expired")
)

// FieldError is a bad field of a key's specification.
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Problem) }

// TokenPrefix starts every token, so a leaked key is recognisable (secret
// scanners, logs).
const TokenPrefix = "wck_"

// idPattern: ids appear in tokens between underscores, so they have none.
var idPattern = bounded.MustCompile(`^[a-z0-9][a-z0-9-]*$`, 1, 32)
