package wildcat

import (
	"context"
	"net/http"
	"time"
)

// Webhook is an HTTP endpoint the daemon delivers events to.
type Webhook struct {
	ID          string            `json:"id"`
	URL         string            `json:"url"`
	Events      []string          `json:"events"`
	Accounts    []string          `json:"accounts"`
	Sources     []string          `json:"sources"`
	Description string            `json:"description,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Enabled     bool              `json:"enabled"`
	RateLimit   float64           `json:"rateLimit,omitempty"`
	Batch       bool              `json:"batch,omitempty"`
	// Source is config (declared in config.yaml) or api.
	Source string `json:"source,omitempty"`
	// Secret signs deliveries; the API shows it only when it is made
	// (CreateWebhook, RotateWebhookSecret).
	Secret                  string     `json:"secret,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt,omitempty"`
	DisabledAt              *time.Time `json:"disabledAt,omitempty"`
	DisabledReason          string     `json:"disabledReason,omitempty"`
	FailingSince            *time.Time `json:"failingSince,omitempty"`
	CreatedAt               time.Time  `json:"createdAt,omitzero"`
	UpdatedAt               time.Time  `json:"updatedAt,omitzero"`
}

// WebhookInput creates a webhook, or changes one: nil fields stay as they
// are (use Ptr for the others).
type WebhookInput struct {
	ID          *string            `json:"id,omitempty"`
	URL         *string            `json:"url,omitempty"`
	Events      *[]string          `json:"events,omitempty"`
	Accounts    *[]string          `json:"accounts,omitempty"`
	Sources     *[]string          `json:"sources,omitempty"`
	Description *string            `json:"description,omitempty"`
	Headers     *map[string]string `json:"headers,omitempty"`
	Enabled     *bool              `json:"enabled,omitempty"`
	RateLimit   *float64           `json:"rateLimit,omitempty"`
	Batch       *bool              `json:"batch,omitempty"`
}

// Ptr returns a pointer to v, for the optional fields of inputs.
func Ptr[T any](v T) *T { return &v }

// WebhookAttempt is the outcome of one delivery attempt.
type WebhookAttempt struct {
	At         time.Time `json:"at"`
	DurationMS int64     `json:"durationMs"`
	// Result is ok, retry or fail.
	Result   string `json:"result"`
	Status   int    `json:"status,omitempty"`
	Error    string `json:"error,omitempty"`
	Response string `json:"response,omitempty"`
}

// Webhooks lists every webhook endpoint.
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	var out struct {
		Webhooks []Webhook `json:"webhooks"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/webhooks"}, &out)
	return out.Webhooks, err
}

// Webhook returns one endpoint.
func (c *Client) Webhook(ctx context.Context, id string) (*Webhook, error) {
	return c.webhookCall(ctx, http.MethodGet, "/webhooks/"+esc(id), nil)
}

// CreateWebhook adds an endpoint; the answer carries its signing secret.
func (c *Client) CreateWebhook(ctx context.Context, in WebhookInput) (*Webhook, error) {
	return c.webhookCall(ctx, http.MethodPost, "/webhooks", in)
}

// UpdateWebhook changes the fields of in that are set.
func (c *Client) UpdateWebhook(ctx context.Context, id string, in WebhookInput) (*Webhook, error) {
	return c.webhookCall(ctx, http.MethodPatch, "/webhooks/"+esc(id), in)
}

// DeleteWebhook removes an endpoint.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/webhooks/" + esc(id)}, nil)
}

// RotateWebhookSecret makes a new signing secret; the old one keeps signing
// alongside until PreviousSecretExpiresAt.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string) (*Webhook, error) {
	return c.webhookCall(ctx, http.MethodPost, "/webhooks/"+esc(id)+"/rotate-secret", nil)
}

// TestWebhook sends the endpoint a test event now and reports the attempt.
func (c *Client) TestWebhook(ctx context.Context, id string) (*WebhookAttempt, error) {
	var a WebhookAttempt
	if err := c.do(ctx, request{method: http.MethodPost, path: "/webhooks/" + esc(id) + "/test"}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

func (c *Client) webhookCall(ctx context.Context, method, path string, body any) (*Webhook, error) {
	var w Webhook
	r := request{method: method, path: path}
	if body != nil {
		r.body = body
	}
	if err := c.do(ctx, r, &w); err != nil {
		return nil, err
	}
	return &w, nil
}
