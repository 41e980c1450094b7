package wildcat_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/sdk/wildcat"
)

// notInClient lists the documented operations the client leaves out, each
// with why. A new route must be called by the client or listed here.
var notInClient = map[string]string{
	"POST /v1/media":           "raw and multipart uploads: SendMedia takes the bytes in the send itself",
	"GET /v1/media/{mediaId}":  "media bytes are served for browsers and curl (ranges, conditional requests)",
	"POST /v1/media/archive":   "an operator's backfill, run once with curl",
	"GET /v1/openapi.json":     "the document itself: generators read it directly",
	"POST /v1/pipeline/reload": "replacing the pipeline is config.yaml's job (it reloads on change)",
	// Group administration beyond list, get and create, and newsletters
	// (channels), came after the client's first version.
	"PATCH /v1/accounts/{id}/groups/{groupId}":                  "group administration: not in the client yet",
	"POST /v1/accounts/{id}/groups/{groupId}/participants":      "group administration: not in the client yet",
	"PUT /v1/accounts/{id}/groups/{groupId}/picture":            "group administration: not in the client yet",
	"DELETE /v1/accounts/{id}/groups/{groupId}/picture":         "group administration: not in the client yet",
	"GET /v1/accounts/{id}/groups/{groupId}/invite-link":        "group administration: not in the client yet",
	"POST /v1/accounts/{id}/groups/{groupId}/invite-link/reset": "group administration: not in the client yet",
	"GET /v1/accounts/{id}/groups/{groupId}/requests":           "group administration: not in the client yet",
	"POST /v1/accounts/{id}/groups/{groupId}/requests":          "group administration: not in the client yet",
	"POST /v1/accounts/{id}/groups/{groupId}/leave":             "group administration: not in the client yet",
	"GET /v1/accounts/{id}/groups/invites/{code}":               "group invites: not in the client yet",
	"POST /v1/accounts/{id}/groups/join":                        "group invites: not in the client yet",
	"GET /v1/accounts/{id}/channels":                            "newsletters (channels): not in the client yet",
	"GET /v1/accounts/{id}/channels/{jid}/messages":             "newsletters (channels): not in the client yet",
}

// clientCalls calls every method of *wildcat.Client once; the key is the
// method's name so that a method missing from here is caught by reflection.
var clientCalls = map[string]func(ctx context.Context, c *wildcat.Client) error{
	"Accounts": func(ctx context.Context, c *wildcat.Client) error { _, err := c.Accounts(ctx); return err },
	"Account":  func(ctx context.Context, c *wildcat.Client) error { _, err := c.Account(ctx, "a"); return err },
	"CreateAccount": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.CreateAccount(ctx, wildcat.CreateAccount{})
		return err
	},
	"UpdateAccount": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.UpdateAccount(ctx, "a", wildcat.AccountUpdate{})
		return err
	},
	"ConnectAccount": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.ConnectAccount(ctx, "a")
		return err
	},
	"LogoutAccount": func(ctx context.Context, c *wildcat.Client) error { _, err := c.LogoutAccount(ctx, "a"); return err },
	"DeleteAccount": func(ctx context.Context, c *wildcat.Client) error { return c.DeleteAccount(ctx, "a", true) },
	"QR":            func(ctx context.Context, c *wildcat.Client) error { _, err := c.QR(ctx, "a"); return err },
	"PairingCode": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.PairingCode(ctx, "a", "+1")
		return err
	},
	"SimulateInbound": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.SimulateInbound(ctx, "a", wildcat.SimInbound{})
		return err
	},
	"MessagesPage": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.MessagesPage(ctx, "a", wildcat.MessageQuery{})
		return err
	},
	"Messages": func(ctx context.Context, c *wildcat.Client) error {
		for _, err := range c.Messages(ctx, "a", wildcat.MessageQuery{}) {
			return err
		}
		return nil
	},
	"Message":   func(ctx context.Context, c *wildcat.Client) error { _, err := c.Message(ctx, "a", "m"); return err },
	"ChatsPage": func(ctx context.Context, c *wildcat.Client) error { _, err := c.ChatsPage(ctx, "a", "", 0); return err },
	"Chat": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.Chat(ctx, "a", "c@s.whatsapp.net")
		return err
	},
	"Send": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.Send(ctx, "a", wildcat.SendRequest{})
		return err
	},
	"SendText": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.SendText(ctx, "a", "+1", "x")
		return err
	},
	"Reply": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.Reply(ctx, "a", "+1", "m", "x")
		return err
	},
	"SendMedia": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.SendMedia(ctx, "a", "+1", wildcat.SendMedia{}, "")
		return err
	},
	"Webhooks": func(ctx context.Context, c *wildcat.Client) error { _, err := c.Webhooks(ctx); return err },
	"Webhook":  func(ctx context.Context, c *wildcat.Client) error { _, err := c.Webhook(ctx, "w"); return err },
	"CreateWebhook": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.CreateWebhook(ctx, wildcat.WebhookInput{})
		return err
	},
	"UpdateWebhook": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.UpdateWebhook(ctx, "w", wildcat.WebhookInput{})
		return err
	},
	"DeleteWebhook": func(ctx context.Context, c *wildcat.Client) error { return c.DeleteWebhook(ctx, "w") },
	"RotateWebhookSecret": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.RotateWebhookSecret(ctx, "w")
		return err
	},
	"TestWebhook": func(ctx context.Context, c *wildcat.Client) error { _, err := c.TestWebhook(ctx, "w"); return err },
	"DeliveriesPage": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.DeliveriesPage(ctx, wildcat.DeliveryQuery{})
		return err
	},
	"Deliveries": func(ctx context.Context, c *wildcat.Client) error {
		for _, err := range c.Deliveries(ctx, wildcat.DeliveryQuery{}) {
			return err
		}
		return nil
	},
	"Delivery":      func(ctx context.Context, c *wildcat.Client) error { _, err := c.Delivery(ctx, "j"); return err },
	"RetryDelivery": func(ctx context.Context, c *wildcat.Client) error { _, err := c.RetryDelivery(ctx, "j"); return err },
	"ReplayDeliveries": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.ReplayDeliveries(ctx, wildcat.ReplayFilter{})
		return err
	},
	"Groups": func(ctx context.Context, c *wildcat.Client) error { _, err := c.Groups(ctx, "a"); return err },
	"Group":  func(ctx context.Context, c *wildcat.Client) error { _, err := c.Group(ctx, "a", "1@g.us"); return err },
	"CreateGroup": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.CreateGroup(ctx, "a", wildcat.CreateGroup{})
		return err
	},
	"Trace": func(ctx context.Context, c *wildcat.Client) error { _, err := c.Trace(ctx, "a", "m"); return err },
	"Keys":  func(ctx context.Context, c *wildcat.Client) error { _, err := c.Keys(ctx); return err },
	"Key":   func(ctx context.Context, c *wildcat.Client) error { _, err := c.Key(ctx, "k"); return err },
	"CreateKey": func(ctx context.Context, c *wildcat.Client) error {
		_, err := c.CreateKey(ctx, wildcat.KeyInput{})
		return err
	},
	"RotateKey": func(ctx context.Context, c *wildcat.Client) error { _, err := c.RotateKey(ctx, "k"); return err },
	"RevokeKey": func(ctx context.Context, c *wildcat.Client) error { return c.RevokeKey(ctx, "k") },
	"Rules":     func(ctx context.Context, c *wildcat.Client) error { _, err := c.Rules(ctx); return err },
	"Plugins":   func(ctx context.Context, c *wildcat.Client) error { _, err := c.Plugins(ctx); return err },
	"Instances": func(ctx context.Context, c *wildcat.Client) error { _, err := c.Instances(ctx); return err },
	"Pipeline":  func(ctx context.Context, c *wildcat.Client) error { _, err := c.Pipeline(ctx); return err },
	"Events": func(ctx context.Context, c *wildcat.Client) error {
		for _, err := range c.Events(ctx, wildcat.EventQuery{}) {
			return err
		}
		return nil
	},
}

// notCalls are methods of *Client that send no request.
var notCalls = map[string]bool{"BaseURL": true}

// TestClientMatchesOpenAPI keeps the client in step with the API's
// OpenAPI document: every request any method sends is a documented
// operation (method and path template), and every documented operation is
// sent by some method or listed in notInClient with a reason. A route
// added, renamed or removed turns it red.
func TestClientMatchesOpenAPI(t *testing.T) {
	typ := reflect.TypeFor[*wildcat.Client]()
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		if _, ok := clientCalls[name]; !ok && !notCalls[name] {
			t.Errorf("method %s is not in clientCalls: add it so its requests are checked against the OpenAPI document", name)
		}
	}

	type op struct {
		key string
		re  *regexp.Regexp
	}
	var ops []op
	documented := map[string]bool{}
	for _, o := range api.Operations() {
		key := o.Method + " " + o.Path
		documented[key] = true
		pattern := regexp.MustCompile(`\\\{[^/]+\\\}`).ReplaceAllString(regexp.QuoteMeta(o.Path), `[^/]+`)
		ops = append(ops, op{key, regexp.MustCompile("^" + o.Method + " " + pattern + "$")})
	}
	for key := range notInClient {
		if !documented[key] {
			t.Errorf("notInClient lists %s, which the OpenAPI document does not have", key)
		}
	}

	var mu sync.Mutex
	var sent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Method+" "+r.URL.EscapedPath())
		mu.Unlock()
		if r.URL.Path == "/v1/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("id: e1\nevent: message.received\ndata: {\"id\":\"e1\",\"kind\":\"message.received\",\"accountId\":\"a\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"source\":\"phone\"}\n\n"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{})
	}))
	defer srv.Close()
	c, err := wildcat.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	names := make([]string, 0, len(clientCalls))
	for name := range clientCalls {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		mu.Lock()
		sent = nil
		mu.Unlock()
		if err := clientCalls[name](t.Context(), c); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		mu.Lock()
		reqs := append([]string(nil), sent...)
		mu.Unlock()
		if len(reqs) == 0 {
			t.Errorf("%s sent no request", name)
		}
		for _, req := range reqs {
			found := false
			for _, o := range ops {
				if o.re.MatchString(req) {
					covered[o.key], found = true, true
				}
			}
			if !found {
				t.Errorf("%s sends %s, which the OpenAPI document does not have", name, req)
			}
		}
	}
	for key := range documented {
		if !covered[key] && notInClient[key] == "" {
			t.Errorf("the OpenAPI document has %s, which no client method sends: add one, or list it in notInClient with a reason", key)
		}
	}
	if t.Failed() {
		t.Logf("documented: %s", strings.Join(keys(documented), ", "))
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
