package wildcat_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/sdk/wildcat"
)

func newClient(t *testing.T) *wildcat.Client {
	t.Helper()
	c, err := wildcat.New(daemonURL, wildcat.WithKey(adminKey))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seq makes ids unique across runs of a test against the one daemon
// (go test -count=N).
var seq atomic.Int64

func uid(prefix string) string { return fmt.Sprintf("%s%d", prefix, seq.Add(1)) }

// newAccount creates a sim account and waits until it is connected; it
// returns the account's id, prefix and a number.
func newAccount(t *testing.T, c *wildcat.Client, prefix string) string {
	t.Helper()
	id := uid(prefix)
	if _, err := c.CreateAccount(t.Context(), wildcat.CreateAccount{ID: id, Driver: "sim"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ConnectAccount(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, func() error {
		a, err := c.Account(t.Context(), id)
		if err != nil || a.State != wildcat.StateConnected {
			return fmt.Errorf("account %s: %+v %v", id, a, err)
		}
		return nil
	})
	return id
}

func TestNewRefusesABadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "localhost:8080", "http://"} {
		if _, err := wildcat.New(u); err == nil {
			t.Errorf("New(%q): no error", u)
		}
	}
}

func TestAccounts(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	acc1 := uid("acc")
	a, err := c.CreateAccount(ctx, wildcat.CreateAccount{ID: acc1, Driver: "sim", Name: "One"})
	if err != nil || a.ID != acc1 || a.State != wildcat.StateCreated || a.Name != "One" {
		t.Fatalf("create: %+v %v", a, err)
	}
	if _, err := c.CreateAccount(ctx, wildcat.CreateAccount{ID: acc1, Driver: "sim"}); !errors.Is(err, wildcat.ErrConflict) {
		t.Fatalf("create twice: %v, want ErrConflict", err)
	}
	// The sim stores a proxy (it has no network to route); answers mask it.
	px := "socks5://ann:secret@proxy.example.com:1080"
	if a, err := c.UpdateAccount(ctx, acc1, wildcat.AccountUpdate{Proxy: &px}); err != nil || a.Proxy != "socks5://ann:***@proxy.example.com:1080" {
		t.Fatalf("update proxy: %+v %v", a, err)
	}
	bad := "ftp://proxy.example.com:21"
	if _, err := c.UpdateAccount(ctx, acc1, wildcat.AccountUpdate{Proxy: &bad}); err == nil {
		t.Fatal("a bad proxy was accepted")
	}
	list, err := c.Accounts(ctx)
	if err != nil || !hasAccount(list, acc1) || !hasAccount(list, "demo") {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := c.ConnectAccount(ctx, acc1); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, func() error {
		a, err = c.Account(ctx, acc1)
		if err != nil || a.State != wildcat.StateConnected || a.JID == "" {
			return fmt.Errorf("%+v %v", a, err)
		}
		return nil
	})
	if a, err = c.LogoutAccount(ctx, acc1); err != nil || a.State != wildcat.StateLoggedOut {
		t.Fatalf("logout: %+v %v", a, err)
	}
	if _, err := c.QR(ctx, acc1); !errors.Is(err, wildcat.ErrConflict) {
		t.Fatalf("QR of a logged-out account: %v, want ErrConflict", err)
	}
	if err := c.DeleteAccount(ctx, acc1, true); err != nil {
		t.Fatal(err)
	}
	_, err = c.Account(ctx, acc1)
	var apiErr *wildcat.Error
	if !errors.Is(err, wildcat.ErrNotFound) || !errors.As(err, &apiErr) || apiErr.Status != 404 ||
		!strings.HasPrefix(apiErr.Type, "urn:wildcat:problem:") || !strings.Contains(err.Error(), acc1) {
		t.Fatalf("get deleted: %#v", err)
	}
}

func hasAccount(list []wildcat.Account, id string) bool {
	for _, a := range list {
		if a.ID == id {
			return true
		}
	}
	return false
}

// TestPairing follows an account through pairing: its QR code, then a
// pairing code for a phone number.
func TestPairing(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	pair1 := uid("pair")
	// The sim phone scans after 10ms; the code is read while pairing, or
	// the account is already connected.
	if _, err := c.CreateAccount(ctx, wildcat.CreateAccount{ID: pair1, Driver: "sim"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PairingCode(ctx, pair1, "+15550001111"); err != nil && !errors.Is(err, wildcat.ErrConflict) {
		t.Fatalf("pairing code: %v", err)
	}
	if _, err := c.PairingCode(ctx, "nobody", "+15550001111"); !errors.Is(err, wildcat.ErrNotFound) {
		t.Fatalf("pairing code of an unknown account: %v", err)
	}
}

func TestSendAndHistory(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	hist := newAccount(t, c, "hist")
	var ids []string
	for i := range 7 {
		r, err := c.SimulateInbound(ctx, hist, wildcat.SimInbound{From: "+15551230000", Text: fmt.Sprintf("hello %d", i), ID: fmt.Sprintf("IN%03d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.MessageID)
	}
	// One page at a time, then the iterator over all of them: newest first.
	var got []string
	q := wildcat.MessageQuery{ChatID: "+15551230000", Limit: 3}
	pages := 0
	for {
		p, err := c.MessagesPage(ctx, hist, q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range p.Messages {
			got = append(got, m.MessageID)
		}
		if p.NextCursor == "" {
			break
		}
		q.Cursor = p.NextCursor
	}
	if pages != 3 || len(got) != 7 || got[0] != "IN006" || got[6] != "IN000" {
		t.Fatalf("%d pages: %v", pages, got)
	}
	var all []string
	for m, err := range c.Messages(ctx, hist, wildcat.MessageQuery{Limit: 2, Text: "HELLO"}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m.MessageID)
	}
	if strings.Join(all, ",") != strings.Join(got, ",") {
		t.Fatalf("iterator %v, pages %v", all, got)
	}

	sent, err := c.SendText(ctx, hist, "+15551230000", "your order is ready")
	if err != nil || sent.MessageID == "" || sent.ScheduledAt.IsZero() || sent.Status != "pending" {
		t.Fatalf("send: %+v %v", sent, err)
	}
	reply, err := c.Reply(ctx, hist, "+15551230000", "IN003", "about that one")
	if err != nil {
		t.Fatal(err)
	}
	img, err := c.SendMedia(ctx, hist, "+15551230000", wildcat.SendMedia{Data: []byte("\x89PNG\r\n\x1a\nfake"), Mimetype: "image/png"}, "a picture")
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, func() error {
		m, err := c.Message(ctx, hist, reply.MessageID)
		if err != nil || m.Status != "read" || m.Quoted == nil || m.Quoted.MessageID != "IN003" || len(m.Raw) == 0 {
			return fmt.Errorf("reply: %+v %v", m, err)
		}
		return nil
	})
	m, err := c.Message(ctx, hist, img.MessageID)
	if err != nil || m.Type != "image" || !m.HasMedia || !m.FromMe {
		t.Fatalf("image: %+v %v", m, err)
	}
	// Bad input names the field; an unknown message is ErrNotFound.
	_, err = c.Send(ctx, hist, wildcat.SendRequest{To: "not a number", Text: "x"})
	var apiErr *wildcat.Error
	if !errors.Is(err, wildcat.ErrInvalid) || !errors.As(err, &apiErr) || apiErr.Field != "to" {
		t.Fatalf("bad to: %#v", err)
	}
	if _, err := c.Message(ctx, hist, "NOPE"); !errors.Is(err, wildcat.ErrNotFound) {
		t.Fatalf("unknown message: %v", err)
	}
	if _, err := c.SendText(ctx, "nobody", "+15551230000", "x"); !errors.Is(err, wildcat.ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
	// A retried send with the same idempotency key is the same message.
	a1, err := c.Send(ctx, hist, wildcat.SendRequest{To: "+15551230000", Text: "once", IdempotencyKey: "k-1"})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := c.Send(ctx, hist, wildcat.SendRequest{To: "+15551230000", Text: "once", IdempotencyKey: "k-1"})
	if err != nil || a2.MessageID != a1.MessageID {
		t.Fatalf("idempotent send: %+v %+v %v", a1, a2, err)
	}
	chats, err := c.ChatsPage(ctx, hist, "", 10)
	if err != nil || len(chats.Chats) != 1 {
		t.Fatalf("chats: %+v %v", chats, err)
	}
	if ch, err := c.Chat(ctx, hist, chats.Chats[0].ID); err != nil || ch.MessageCount < 7 {
		t.Fatalf("chat: %+v %v", ch, err)
	}
}

func TestKeys(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	keyID := uid("reader")
	k, err := c.CreateKey(ctx, wildcat.KeyInput{ID: keyID, Name: "Reader", Scopes: []string{wildcat.ScopeAccountsRead}})
	if err != nil || !strings.HasPrefix(k.Token, "wck_") {
		t.Fatalf("create: %+v %v", k, err)
	}
	reader, _ := wildcat.New(daemonURL, wildcat.WithKey(k.Token))
	if _, err := reader.Accounts(ctx); err != nil {
		t.Fatalf("the new key cannot list accounts: %v", err)
	}
	if _, err := reader.Keys(ctx); !errors.Is(err, wildcat.ErrForbidden) {
		t.Fatalf("a reader lists keys: %v, want ErrForbidden", err)
	}
	list, err := c.Keys(ctx)
	if err != nil || len(list) < 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if got, err := c.Key(ctx, keyID); err != nil || got.Token != "" || got.Name != "Reader" {
		t.Fatalf("get: %+v %v", got, err)
	}
	r, err := c.RotateKey(ctx, keyID)
	if err != nil || r.Token == "" || r.Token == k.Token || r.RotatedAt == nil {
		t.Fatalf("rotate: %+v %v", r, err)
	}
	if _, err := reader.Accounts(ctx); !errors.Is(err, wildcat.ErrUnauthorized) {
		t.Fatalf("the rotated-out token: %v, want ErrUnauthorized", err)
	}
	if err := c.RevokeKey(ctx, keyID); err != nil {
		t.Fatal(err)
	}
	rotated, _ := wildcat.New(daemonURL, wildcat.WithKey(r.Token))
	if _, err := rotated.Accounts(ctx); !errors.Is(err, wildcat.ErrUnauthorized) {
		t.Fatalf("a revoked key: %v, want ErrUnauthorized", err)
	}
	if err := c.RevokeKey(ctx, keyID); !errors.Is(err, wildcat.ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
}

func TestWebhooks(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	crm := uid("crm")
	var hits sync.Map
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Store(r.URL.Path, true)
		io.WriteString(w, `{"received":true}`)
	}))
	defer recv.Close()
	w, err := c.CreateWebhook(ctx, wildcat.WebhookInput{ID: wildcat.Ptr(crm), URL: wildcat.Ptr(recv.URL + "/hook"), Events: &[]string{"message.received"}})
	if err != nil || w.ID != crm || !strings.HasPrefix(w.Secret, "whsec_") || !w.Enabled {
		t.Fatalf("create: %+v %v", w, err)
	}
	if _, err := c.CreateWebhook(ctx, wildcat.WebhookInput{URL: wildcat.Ptr("ftp://x")}); !errors.Is(err, wildcat.ErrInvalid) {
		t.Fatalf("bad url: %v", err)
	}
	u, err := c.UpdateWebhook(ctx, crm, wildcat.WebhookInput{Description: wildcat.Ptr("CRM inbox")})
	if err != nil || u.Description != "CRM inbox" || u.URL != w.URL {
		t.Fatalf("update: %+v %v", u, err)
	}
	rot, err := c.RotateWebhookSecret(ctx, crm)
	if err != nil || rot.Secret == w.Secret || rot.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	at, err := c.TestWebhook(ctx, crm)
	if err != nil || at.Result != "ok" || at.Status != 200 || !strings.Contains(at.Response, "received") {
		t.Fatalf("test: %+v %v", at, err)
	}
	if _, ok := hits.Load("/hook"); !ok {
		t.Fatal("the receiver got no test event")
	}
	list, err := c.Webhooks(ctx)
	if err != nil || len(list) != 1 || list[0].Secret != "" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if got, err := c.Webhook(ctx, crm); err != nil || got.Description != "CRM inbox" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := c.DeleteWebhook(ctx, crm); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TestWebhook(ctx, crm); !errors.Is(err, wildcat.ErrNotFound) {
		t.Fatalf("test a deleted webhook: %v", err)
	}
}

// TestDeliveries makes the in-process sink fail, finds the dead letter,
// replays it once the sink works again and sees it done.
func TestDeliveries(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	dl := newAccount(t, c, "dl")
	sinkFailing.Store(true)
	in, err := c.SimulateInbound(ctx, dl, wildcat.SimInbound{From: "+15559990000", Text: "deliver me", ID: "DL1"})
	if err != nil {
		t.Fatal(err)
	}
	q := wildcat.DeliveryQuery{AccountID: dl, State: wildcat.DeliveryDeadLetter, Sink: "crm"}
	var dead wildcat.Delivery
	poll.Until(t, time.Minute, func() error {
		p, err := c.DeliveriesPage(ctx, q)
		if err != nil || len(p.Deliveries) != 1 {
			return fmt.Errorf("%+v %v", p, err)
		}
		dead = p.Deliveries[0]
		return nil
	})
	if dead.EventID != in.EventID || len(dead.Log) == 0 || dead.Log[0].Status != 500 || dead.Log[0].Result != "fail" {
		t.Fatalf("dead letter: %+v", dead)
	}
	if d, err := c.Delivery(ctx, dead.ID); err != nil || d.ID != dead.ID {
		t.Fatalf("get: %+v %v", d, err)
	}
	sinkFailing.Store(false)
	n, err := c.ReplayDeliveries(ctx, wildcat.ReplayFilter{AccountID: dl, Sink: "crm"})
	if err != nil || n != 1 {
		t.Fatalf("replay: %d %v", n, err)
	}
	poll.Until(t, time.Minute, func() error {
		d, err := c.Delivery(ctx, dead.ID)
		if err != nil || d.State != wildcat.DeliveryDone {
			return fmt.Errorf("%+v %v", d, err)
		}
		return nil
	})
	var all int
	for d, err := range c.Deliveries(ctx, wildcat.DeliveryQuery{AccountID: dl, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		if d.AccountID != dl {
			t.Fatalf("filter ignored: %+v", d)
		}
		all++
	}
	if all < 1 {
		t.Fatal("the iterator found no delivery")
	}
	// A done job can be retried: one more attempt is logged.
	before, err := c.Delivery(ctx, dead.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.RetryDelivery(ctx, dead.ID); err != nil || r.ID != dead.ID {
		t.Fatalf("retry a done job: %+v %v", r, err)
	}
	poll.Until(t, time.Minute, func() error {
		d, err := c.Delivery(ctx, dead.ID)
		if err != nil || d.State != wildcat.DeliveryDone || len(d.Log) <= len(before.Log) {
			return fmt.Errorf("after retry: %+v %v", d, err)
		}
		return nil
	})
	if _, err := c.DeliveriesPage(ctx, wildcat.DeliveryQuery{State: "bogus"}); !errors.Is(err, wildcat.ErrInvalid) {
		t.Fatalf("bad state: %v", err)
	}
}

func TestStatus(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	if _, err := c.Rules(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Plugins(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := c.Pipeline(ctx)
	if err != nil || len(p.Stages) == 0 {
		t.Fatalf("pipeline: %+v %v", p, err)
	}
}

func TestUnauthorized(t *testing.T) {
	for _, key := range []string{"", "wck_nobody_0000000000000000000000000000000000000000000000000000000000000000"} {
		c, _ := wildcat.New(daemonURL, wildcat.WithKey(key))
		_, err := c.Accounts(t.Context())
		if !errors.Is(err, wildcat.ErrUnauthorized) || errors.Is(err, wildcat.ErrForbidden) {
			t.Errorf("key %q: %v, want ErrUnauthorized", key, err)
		}
	}
	c, _ := wildcat.New("http://127.0.0.1:1")
	var te *wildcat.TransportError
	if _, err := c.Accounts(t.Context()); !errors.As(err, &te) {
		t.Errorf("no daemon: %v, want a *TransportError", err)
	}
}

// TestEventsResume cuts the event stream after its first event (a proxy
// in front of the daemon): the client reconnects with Last-Event-ID and the
// events sent meanwhile arrive, each once.
func TestEventsResume(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	acct := newAccount(t, c, "ev")

	target, _ := url.Parse(daemonURL)
	var mu sync.Mutex
	var lastIDs []string
	cut := make(chan struct{}, 1)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		first := len(lastIDs) == 1
		mu.Unlock()
		if first {
			// The first connection ends after the first event.
			rctx, stop := context.WithCancel(r.Context())
			go func() {
				<-cut
				stop()
			}()
			r = r.WithContext(rctx)
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	pc, _ := wildcat.New(proxy.URL, wildcat.WithKey(adminKey))

	// Resume from before "one", so the stream starts with it whatever the
	// timing: the daemon replays stored events after Last-Event-ID.
	zero, err := c.SimulateInbound(ctx, acct, wildcat.SimInbound{From: "+15557770000", Text: "zero"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SimulateInbound(ctx, acct, wildcat.SimInbound{From: "+15557770000", Text: "one"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	q := wildcat.EventQuery{Accounts: []string{acct}, Kinds: []string{"message.received"}, LastEventID: zero.EventID, MaxRetryDelay: 50 * time.Millisecond}
	for ev, err := range pc.Events(ctx, q) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Message.Text)
		if len(got) == 1 {
			cut <- struct{}{}
			// Sent while the stream is cut: the resume must bring them.
			for _, text := range []string{"two", "three"} {
				if _, err := c.SimulateInbound(ctx, acct, wildcat.SimInbound{From: "+15557770000", Text: text}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if len(got) == 3 {
			break
		}
	}
	if strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("events %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lastIDs) < 2 || lastIDs[0] != zero.EventID || lastIDs[1] == zero.EventID || lastIDs[1] == "" {
		t.Fatalf("Last-Event-ID per connection: %q", lastIDs)
	}
}

// subscribed is a transport that says when the event stream's answer has
// arrived: the daemon subscribes before it answers, so every later event
// reaches the stream.
type subscribed struct {
	once sync.Once
	ch   chan struct{}
}

func (s *subscribed) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.URL.Path == "/v1/events" {
		s.once.Do(func() { close(s.ch) })
	}
	return resp, err
}

// TestPairingQRFromEvents pairs an account watching its account.* events:
// the QR codes arrive as account.qr, then account.connected.
func TestPairingQRFromEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	sub := &subscribed{ch: make(chan struct{})}
	c, _ := wildcat.New(daemonURL, wildcat.WithKey(adminKey), wildcat.WithHTTPClient(&http.Client{Transport: sub}))
	id := uid("qr")
	if _, err := c.CreateAccount(ctx, wildcat.CreateAccount{ID: id, Driver: "sim"}); err != nil {
		t.Fatal(err)
	}
	go func() {
		<-sub.ch
		if _, err := c.ConnectAccount(ctx, id); err != nil {
			t.Error(err)
		}
	}()
	var kinds []string
	qr := ""
	for ev, err := range c.Events(ctx, wildcat.EventQuery{Accounts: []string{id}, Kinds: []string{"account.*"}}) {
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, string(ev.Kind))
		if ev.Kind == "account.qr" && qr == "" {
			qr = ev.Account.QRCode
		}
		if ev.Kind == "account.connected" {
			break
		}
	}
	if qr == "" || kinds[len(kinds)-1] != "account.connected" {
		t.Fatalf("events %v, first QR code %q", kinds, qr)
	}
}

func TestGroups(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	acct := newAccount(t, c, "grp")
	g, err := c.CreateGroup(ctx, acct, wildcat.CreateGroup{Subject: "Orders", Participants: []string{"+15551234567"}})
	if err != nil || g.Name != "Orders" || !strings.HasSuffix(g.JID, "@g.us") || len(g.Participants) != 2 {
		t.Fatalf("create: %+v %v", g, err)
	}
	list, err := c.Groups(ctx, acct)
	if err != nil || len(list) != 1 || list[0].JID != g.JID {
		t.Fatalf("list: %+v %v", list, err)
	}
	got, err := c.Group(ctx, acct, g.JID)
	if err != nil || got.Name != "Orders" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := c.CreateGroup(ctx, acct, wildcat.CreateGroup{Subject: "", Participants: []string{"+15551234567"}}); !errors.Is(err, wildcat.ErrInvalid) {
		t.Fatalf("no subject: %v", err)
	}
}

// TestTrace: a received message's trace shows the sink stage that fed
// "crm" and the delivery it made.
func TestTrace(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	acct := newAccount(t, c, "trace")
	in, err := c.SimulateInbound(ctx, acct, wildcat.SimInbound{From: "+15556660000", Text: "trace me"})
	if err != nil {
		t.Fatal(err)
	}
	var tr *wildcat.MessageTrace
	poll.Until(t, time.Minute, func() error {
		tr, err = c.Trace(ctx, acct, in.MessageID)
		if err != nil || len(tr.Deliveries) == 0 {
			return fmt.Errorf("%+v %v", tr, err)
		}
		return nil
	})
	found := false
	for _, s := range tr.Trace.Stages {
		if s.Name == "crm" && len(s.Targets) == 1 && s.Targets[0] == "crm" {
			found = true
		}
	}
	if !found || tr.EventID != in.EventID || tr.Deliveries[0].Target != "crm" {
		t.Fatalf("trace: %+v", tr)
	}
	if _, err := c.Trace(ctx, acct, "NOPE"); !errors.Is(err, wildcat.ErrNotFound) {
		t.Fatalf("trace of an unknown message: %v", err)
	}
}
