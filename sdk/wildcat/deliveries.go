package wildcat

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Delivery is one outbox job: an event on its way to one sink (a webhook
// endpoint, the media archive, a plugin).
type Delivery struct {
	ID        string `json:"id"`
	EventID   string `json:"eventId"`
	Target    string `json:"target"`
	AccountID string `json:"accountId"`
	// State is pending, running, done or deadletter.
	State          string           `json:"state"`
	Attempts       int              `json:"attempts"`
	RunAt          time.Time        `json:"runAt"`
	FirstAttemptAt *time.Time       `json:"firstAttemptAt,omitempty"`
	LastError      string           `json:"lastError,omitempty"`
	CreatedAt      time.Time        `json:"createdAt"`
	UpdatedAt      time.Time        `json:"updatedAt"`
	Log            []WebhookAttempt `json:"log"`
	Event          *Event           `json:"event,omitempty"`
}

// Delivery states.
const (
	DeliveryPending    = "pending"
	DeliveryDone       = "done"
	DeliveryDeadLetter = "deadletter"
)

// DeliveryQuery filters and pages deliveries, newest first.
type DeliveryQuery struct {
	State     string
	Sink      string
	EventID   string
	AccountID string
	Since     time.Time
	Cursor    string
	Limit     int
}

func (q DeliveryQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"state": q.State, "sink": q.Sink, "eventId": q.EventID, "accountId": q.AccountID, "cursor": q.Cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// DeliveryPage is one page of deliveries; NextCursor is "" on the last.
type DeliveryPage struct {
	Deliveries []Delivery `json:"deliveries"`
	NextCursor string     `json:"nextCursor"`
}

// DeliveriesPage returns one page of deliveries.
func (c *Client) DeliveriesPage(ctx context.Context, q DeliveryQuery) (*DeliveryPage, error) {
	var p struct {
		Deliveries []Delivery `json:"deliveries"`
		NextCursor *string    `json:"nextCursor"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/deliveries", query: q.values()}, &p); err != nil {
		return nil, err
	}
	page := &DeliveryPage{Deliveries: p.Deliveries}
	if p.NextCursor != nil {
		page.NextCursor = *p.NextCursor
	}
	return page, nil
}

// Deliveries iterates over every delivery matching q, fetching pages as it
// goes; it stops at the first error, which it yields.
func (c *Client) Deliveries(ctx context.Context, q DeliveryQuery) iter.Seq2[Delivery, error] {
	return func(yield func(Delivery, error) bool) {
		for {
			p, err := c.DeliveriesPage(ctx, q)
			if err != nil {
				yield(Delivery{}, err)
				return
			}
			for _, d := range p.Deliveries {
				if !yield(d, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			q.Cursor = p.NextCursor
		}
	}
}

// Delivery returns one job with its attempts.
func (c *Client) Delivery(ctx context.Context, id string) (*Delivery, error) {
	var d Delivery
	if err := c.do(ctx, request{method: http.MethodGet, path: "/deliveries/" + esc(id)}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// RetryDelivery queues one dead or done job again now.
func (c *Client) RetryDelivery(ctx context.Context, id string) (*Delivery, error) {
	var d Delivery
	if err := c.do(ctx, request{method: http.MethodPost, path: "/deliveries/" + esc(id) + "/retry"}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// ReplayFilter selects the jobs ReplayDeliveries queues again; State is
// deadletter (the default) or done.
type ReplayFilter struct {
	State     string     `json:"state,omitempty"`
	Sink      string     `json:"sink,omitempty"`
	EventID   string     `json:"eventId,omitempty"`
	AccountID string     `json:"accountId,omitempty"`
	Since     *time.Time `json:"since,omitempty"`
}

// ReplayDeliveries queues every matching job again and says how many.
func (c *Client) ReplayDeliveries(ctx context.Context, f ReplayFilter) (int64, error) {
	var out struct {
		Count int64 `json:"count"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/deliveries/replay", body: f}, &out)
	return out.Count, err
}
