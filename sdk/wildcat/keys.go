package wildcat

import (
	"context"
	"net/http"
	"time"
)

// Key is an API key. Token (wck_…) is set only in the answers of CreateKey
// and RotateKey: the daemon keeps only its hash.
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Accounts  []string   `json:"accounts"`
	Token     string     `json:"key,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	RotatedAt *time.Time `json:"rotatedAt,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// Scopes a key can hold.
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
)

// KeyInput creates a key. ID is optional (made from Name); Accounts limits
// the key to those accounts (none: all).
type KeyInput struct {
	ID        string     `json:"id,omitempty"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Accounts  []string   `json:"accounts,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// Keys lists the API keys (without their tokens).
func (c *Client) Keys(ctx context.Context) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/keys"}, &out)
	return out.Keys, err
}

// Key returns one key (without its token).
func (c *Client) Key(ctx context.Context, id string) (*Key, error) {
	return c.keyCall(ctx, request{method: http.MethodGet, path: "/keys/" + esc(id)})
}

// CreateKey makes a key; the answer's Token is shown this once.
func (c *Client) CreateKey(ctx context.Context, in KeyInput) (*Key, error) {
	return c.keyCall(ctx, request{method: http.MethodPost, path: "/keys", body: in})
}

// RotateKey replaces a key's token; the old token stops working.
func (c *Client) RotateKey(ctx context.Context, id string) (*Key, error) {
	return c.keyCall(ctx, request{method: http.MethodPost, path: "/keys/" + esc(id) + "/rotate"})
}

// RevokeKey deletes a key; requests with its token are refused from now on.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/keys/" + esc(id)}, nil)
}

func (c *Client) keyCall(ctx context.Context, r request) (*Key, error) {
	var k Key
	if err := c.do(ctx, r, &k); err != nil {
		return nil, err
	}
	return &k, nil
}
