package wildcat

import (
	"context"
	"net/http"
	"time"
)

// MessageTrace is what the pipeline did with one message's event, and the
// outbox jobs (deliveries) it made.
type MessageTrace struct {
	MessageID  string        `json:"messageId"`
	EventID    string        `json:"eventId"`
	StoredAt   time.Time     `json:"storedAt"`
	Trace      PipelineTrace `json:"trace"`
	Deliveries []Delivery    `json:"deliveries"`
}

// PipelineTrace is the run of one event through the pipeline's stages.
type PipelineTrace struct {
	EventID        string       `json:"eventId"`
	Started        time.Time    `json:"started"`
	DurationMs     float64      `json:"durationMs"`
	Stages         []StageTrace `json:"stages"`
	DeadLetteredAt string       `json:"deadLetteredAt,omitempty"`
	// Truncated: the trace hit its size bound; later entries are missing.
	Truncated bool `json:"truncated,omitempty"`
}

// StageTrace is one stage's part: its outcome (or why it was skipped),
// the actions it returned, the rules it ran and the sinks it fed.
type StageTrace struct {
	Name       string        `json:"name"`
	Kind       string        `json:"kind"`
	StartMs    float64       `json:"startMs"`
	DurationMs float64       `json:"durationMs"`
	Outcome    string        `json:"outcome"`
	Skipped    string        `json:"skipped,omitempty"`
	Error      string        `json:"error,omitempty"`
	Actions    []ActionTrace `json:"actions,omitempty"`
	Rules      []RuleTrace   `json:"rules,omitempty"`
	Targets    []string      `json:"targets,omitempty"`
}

// ActionTrace is one action a stage returned: tag, annotate, reply, send,
// drop, route, …; Origin names the rule or plugin that returned it.
type ActionTrace struct {
	Type        string            `json:"type"`
	Origin      string            `json:"origin,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Sinks       []string          `json:"sinks,omitempty"`
	To          string            `json:"to,omitempty"`
	Text        string            `json:"text,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// RuleTrace is one rule's run: how long, how many actions, and its error
// with the line when it threw or timed out.
type RuleTrace struct {
	Rule       string  `json:"rule"`
	File       string  `json:"file,omitempty"`
	DurationMs float64 `json:"durationMs"`
	Effects    int     `json:"effects"`
	Error      string  `json:"error,omitempty"`
	Line       int     `json:"line,omitempty"`
	Timeout    bool    `json:"timeout,omitempty"`
}

// Trace returns what the pipeline did with a message (by its WhatsApp
// id). ErrNotFound when the message is unknown, or its trace is gone (kept
// as long as its delivered jobs).
func (c *Client) Trace(ctx context.Context, account, messageID string) (*MessageTrace, error) {
	var t MessageTrace
	if err := c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + esc(account) + "/messages/" + esc(messageID) + "/trace"}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}
