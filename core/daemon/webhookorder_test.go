package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/core/webhooks"
	sw "github.com/wildcathub/wildcat/sdk/webhooks"
)

// orderReceiver records, per chat, the texts it accepted in the order it
// accepted them; it answers 503 to the first request carrying failText.
type orderReceiver struct {
	*httptest.Server
	failText string

	mu     sync.Mutex
	failed bool
	byChat map[string][]string
	bad    []string
}

func newOrderReceiver(t *testing.T, secret, failText string) *orderReceiver {
	o := &orderReceiver{failText: failText, byChat: map[string][]string{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		o.mu.Lock()
		defer o.mu.Unlock()
		if err := sw.Verify(secret, r.Header, body); err != nil {
			o.bad = append(o.bad, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var env sw.Envelope
		if err := json.Unmarshal(body, &env); err != nil || env.Data.Message == nil {
			o.bad = append(o.bad, fmt.Sprintf("body %s: %v", body, err))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if env.Data.Message.Text == o.failText && !o.failed {
			o.failed = true
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		o.byChat[env.Data.Message.ChatID] = append(o.byChat[env.Data.Message.ChatID], env.Data.Message.Text)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(o.Close)
	return o
}

// An endpoint declared with ordered: true gets each chat's events in the
// order they arrived, on either engine, though the first event of one
// chat fails once and is retried: the later events of that chat wait for
// it, and the other chats are delivered meanwhile.
func TestWebhookOrderedEndpointKeepsChatOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		secret := sw.NewSecret()
		const chats, perChat = 3, 6
		text := func(c, n int) string { return fmt.Sprintf("chat %d message %02d", c, n) }
		rec := newOrderReceiver(t, secret, text(0, 0))
		_, c := webhookDaemon(t, func(cfg *config.Config) {
			if e == storetest.MongoDB {
				cfg.MongoDB.URI, cfg.MongoDB.Database = storetest.URI(t), storetest.DatabaseName(t)
			}
			cfg.Outbox.Concurrency = 8
			cfg.Webhooks.Endpoints = []webhooks.Declared{{ID: "ord", URL: rec.URL, Events: []string{"message.received"}, Secret: secret, Ordered: true}}
		}, func(o *daemon.Options) {
			o.OutboxSchedule = &outbox.Schedule{Delays: []time.Duration{200 * time.Millisecond}, Every: 50 * time.Millisecond, MaxAge: time.Minute, MaxRetryAfter: time.Second}
		})
		got := c.must(c.get("/v1/webhooks/ord"), 200).json(t)
		if got["ordered"] != true {
			t.Fatalf("endpoint: %v", got)
		}
		// Over REST too: off and on again.
		for _, on := range []bool{false, true} {
			if got := c.must(c.do("PATCH", "/v1/webhooks/ord", "application/json", fmt.Sprintf(`{"ordered":%v}`, on)), 200).json(t); got["ordered"] != on {
				t.Fatalf("PATCH ordered %v: %v", on, got)
			}
		}
		c.connectSim("demo")
		for n := range perChat {
			for k := range chats {
				c.inject("demo", fmt.Sprintf(`{"from":"1555000000%d","text":%q}`, k, text(k, n)))
			}
		}
		poll.Until(t, time.Minute, func() error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			total := 0
			for _, texts := range rec.byChat {
				total += len(texts)
			}
			if total != chats*perChat {
				return fmt.Errorf("%d of %d events delivered", total, chats*perChat)
			}
			return nil
		})
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.bad) > 0 || !rec.failed {
			t.Fatalf("bad requests %v; first event failed: %v", rec.bad, rec.failed)
		}
		if len(rec.byChat) != chats {
			t.Fatalf("events of %d chats, want %d: %v", len(rec.byChat), chats, rec.byChat)
		}
		for chat, texts := range rec.byChat {
			var k int
			if _, err := fmt.Sscanf(texts[0], "chat %d", &k); err != nil {
				t.Fatal(err)
			}
			var want []string
			for n := range perChat {
				want = append(want, text(k, n))
			}
			if !slices.Equal(texts, want) {
				t.Errorf("chat %s got %v, want %v", chat, texts, want)
			}
		}
	})
}
