package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// pairConfig is the configuration of daemons sharing one MongoDB database,
// with short leases so that a move takes well under a second of test time.
func pairConfig(t *testing.T, db string) config.Config {
	cfg := testConfig(t, storetest.URI(t))
	cfg.MongoDB.Database = db
	cfg.HTTP.MaxBodyBytes = testMaxBody
	cfg.Cluster.LeaseTTL = 2 * time.Second
	cfg.Cluster.RenewInterval = 200 * time.Millisecond
	cfg.Cluster.EventsPoll = 50 * time.Millisecond
	return cfg
}

type instanceJSON struct {
	ID       string   `json:"id"`
	URL      string   `json:"url"`
	Accounts []string `json:"accounts"`
	Self     bool     `json:"self"`
}

func instances(c *client) ([]instanceJSON, error) {
	r := c.get("/v1/instances")
	if r.status != 200 {
		return nil, fmt.Errorf("GET /v1/instances: %d %s", r.status, r.body)
	}
	var out struct{ Instances []instanceJSON }
	if err := json.Unmarshal(r.body, &out); err != nil {
		return nil, err
	}
	return out.Instances, nil
}

// placed waits until the instances (seen from c) are want, and the accounts
// are each held by exactly one of them; it returns account → instance.
func placed(t *testing.T, c *client, want []string, accounts ...string) map[string]string {
	t.Helper()
	var owner map[string]string
	poll.Until(t, 30*time.Second, func() error {
		ins, err := instances(c)
		if err != nil {
			return err
		}
		var ids []string
		owner = map[string]string{}
		for _, in := range ins {
			ids = append(ids, in.ID)
			for _, a := range in.Accounts {
				if prev, dup := owner[a]; dup {
					return fmt.Errorf("%s listed by %s and %s", a, prev, in.ID)
				}
				owner[a] = in.ID
			}
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			return fmt.Errorf("instances %v, want %v", ids, want)
		}
		for _, a := range accounts {
			if owner[a] == "" {
				return fmt.Errorf("%s not placed: %v", a, owner)
			}
		}
		return nil
	})
	return owner
}

// Two daemons on one database share the accounts: each runs on one of
// them, calls that need the session work on either (forwarded to the
// owner, never in a loop), the event stream of either shows the other's
// events, and when one stops the other takes its accounts.
func TestTwoDaemonsShareAccounts(t *testing.T) {
	db := storetest.DatabaseName(t)
	// Pairing waits for a scan on the daemon running the account.
	da, ca := accountsDaemonWith(t, pairConfig(t, db), -1, nil, func(o *daemon.Options) { o.InstanceID = "alpha" })
	db2, cb := accountsDaemonWith(t, pairConfig(t, db), -1, nil, func(o *daemon.Options) { o.InstanceID = "beta" })
	scan := func(c *client, id string) {
		t.Helper()
		poll.Until(t, 30*time.Second, func() error {
			if da.Sim().Scan(id) == nil || db2.Sim().Scan(id) == nil {
				return nil
			}
			return fmt.Errorf("%s is not pairing on either daemon", id)
		})
		c.waitState(id, "connected")
	}
	accounts := []string{"s1", "s2", "s3", "s4", "s5", "s6"}
	for i, id := range accounts {
		c := ca
		if i%2 == 1 {
			c = cb
		}
		// Created and connected through either daemon.
		c.must(c.post("/v1/accounts", fmt.Sprintf(`{"id":%q,"driver":"sim"}`, id)), 201)
		c.must(c.post("/v1/accounts/"+id+"/connect", ""), 202)
		scan(c, id)
	}
	owner := placed(t, ca, []string{"alpha", "beta"}, accounts...)
	if got := placed(t, cb, []string{"alpha", "beta"}, accounts...); !mapsEqual(got, owner) {
		t.Fatalf("the daemons disagree on placement: %v vs %v", owner, got)
	}
	onBeta, onAlpha := "", ""
	for _, a := range accounts {
		if owner[a] == "beta" && onBeta == "" {
			onBeta = a
		}
		if owner[a] == "alpha" && onAlpha == "" {
			onAlpha = a
		}
	}
	if onBeta == "" || onAlpha == "" {
		t.Fatalf("placement put every account on one daemon: %v", owner)
	}

	// GET /v1/accounts/{id} names the instance, on either daemon.
	for _, c := range []*client{ca, cb} {
		var a struct{ Instance string }
		_ = json.Unmarshal(c.must(c.get("/v1/accounts/"+onBeta), 200).body, &a)
		if a.Instance != "beta" {
			t.Fatalf("account %s: instance %q, want beta", onBeta, a.Instance)
		}
	}

	// A live event stream on alpha shows what happens on beta's account.
	events := subscribe(t, ca.base)

	// Send through alpha an account beta runs: forwarded, sent by beta,
	// stored with beta's fence.
	sent := ca.must(ca.post("/v1/accounts/"+onBeta+"/messages", `{"to":"15551234567","text":"via alpha"}`), 202).json(t)
	msgID, _ := sent["id"].(string)
	if msgID == "" {
		t.Fatalf("send answered %v", sent)
	}
	poll.Until(t, 30*time.Second, func() error {
		var doc struct {
			Status string
			Writer *struct {
				Instance string
				Epoch    int64
			}
		}
		err := db2.Store().DB().Collection("messages").FindOne(context.Background(), bson.D{{Key: "_id", Value: msgID}}).Decode(&doc)
		if err != nil {
			return err
		}
		if doc.Writer == nil || doc.Writer.Instance != "beta" || doc.Writer.Epoch < 1 {
			return fmt.Errorf("sent message %s stored with writer %+v, want beta's", msgID, doc.Writer)
		}
		return nil
	})

	// An inbound message on beta's account reaches alpha's stream.
	cb.inject(onBeta, `{"from":"15557654321","pushName":"Bo","text":"seen on alpha"}`)
	events.wait(t, "seen on alpha")

	// A request already forwarded is never forwarded again: a daemon that
	// does not own the account answers 503 with Retry-After.
	r := ca.do("POST", "/v1/accounts/"+onBeta+"/messages", "application/json", `{"to":"15551234567","text":"loop"}`, api.ForwardedHeader, "beta")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("forwarded request for an account elsewhere: %d %s, want 503 with Retry-After", r.status, r.body)
	}

	// Logout and QR through the daemon that does not run the account.
	ca.must(ca.post("/v1/accounts/"+onBeta+"/logout", ""), 200)
	ca.waitState(onBeta, "logged_out")
	ca.must(ca.post("/v1/accounts/"+onBeta+"/connect", ""), 202)
	poll.Until(t, 30*time.Second, func() error {
		if r := ca.get("/v1/accounts/" + onBeta + "/qr"); r.status != 200 {
			return fmt.Errorf("QR through alpha: %d %s", r.status, r.body)
		}
		return nil
	})
	if err := da.Sim().Scan(onBeta); err == nil {
		t.Fatalf("%s pairs on alpha, which does not run it", onBeta)
	}
	scan(ca, onBeta)

	// Beta stops: alpha takes over every account.
	if err := db2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := placed(t, ca, []string{"alpha"}, accounts...)
	for _, a := range accounts {
		if after[a] != "alpha" {
			t.Fatalf("%s on %s after beta stopped", a, after[a])
		}
	}
	ca.waitState(onAlpha, "connected")
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// sseReader collects the data lines of an event stream.
type sseReader struct {
	lines chan string
}

func subscribe(t *testing.T, base string) *sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+apikeystest.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/events: %d", resp.StatusCode)
	}
	s := &sseReader{lines: make(chan string, 1024)}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				s.lines <- sc.Text()
			}
		}
		close(s.lines)
	}()
	return s
}

func (s *sseReader) wait(t *testing.T, text string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("event stream ended before %q", text)
			}
			if strings.Contains(l, text) {
				return
			}
		case <-timeout:
			t.Fatalf("no event with %q on the stream", text)
		}
	}
}
