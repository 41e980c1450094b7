//go:build cluster

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// plainBinaries builds wildcatd and the webhook plugin without the race
// detector, once per test binary: the cluster test measures failover, and
// race-instrumented daemons on a 2-core machine would measure the detector.
var plainBinaries = sync.OnceValues(func() (dir string, err error) {
	dir, err = os.MkdirTemp("", "wildcatd-plain-")
	if err != nil {
		return "", err
	}
	for out, pkg := range map[string]string{"wildcatd": ".", "webhook": "../../plugins/webhook"} {
		if b, err := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg).CombinedOutput(); err != nil {
			return "", fmt.Errorf("build %s: %v\n%s", pkg, err, b)
		}
	}
	return dir, nil
})

// hookRecorder is the webhook receiver: it answers at once and counts the
// deliveries of each event id (webhook-id).
type hookRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]int
}

func newHookRecorder(t *testing.T) *hookRecorder {
	r := &hookRecorder{seen: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.seen[req.Header.Get("webhook-id")]++
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookRecorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[id]
}

// node is one wildcatd of the cluster.
type node struct {
	name string
	p    *daemonProcess
	base string
	peer string // its connections' label on the sim network: host/pid
	dead bool
}

// clusterRig is what the three-daemon test runs on.
type clusterRig struct {
	t     *testing.T
	net   *sim.Server
	hooks *hookRecorder
	nodes []*node
	db    *mongo.Database
	ids   []string
}

func (c *clusterRig) node(peer string) *node {
	for _, n := range c.nodes {
		if n.peer == peer {
			return n
		}
	}
	return nil
}

func (c *clusterRig) live() []*node {
	var out []*node
	for _, n := range c.nodes {
		if !n.dead {
			out = append(out, n)
		}
	}
	return out
}

// owners maps every account to the node its sim connection comes from
// ("" when offline).
func (c *clusterRig) owners() map[string]string {
	out := map[string]string{}
	for _, id := range c.ids {
		if n := c.node(c.net.ConnectedFrom(id)); n != nil {
			out[id] = n.name
		} else {
			out[id] = ""
		}
	}
	return out
}

// instances is GET /v1/instances as far as this test reads it.
type instances struct {
	Instances []struct {
		ID       string   `json:"id"`
		Accounts []string `json:"accounts"`
	} `json:"instances"`
}

// checkPlacement says whether every account runs on exactly one live
// daemon, by the API of node n and by the sim network.
func (c *clusterRig) checkPlacement(n *node) error {
	var in instances
	if err := getJSON(n.base+"/v1/instances", &in); err != nil {
		return err
	}
	count := map[string]int{}
	for _, i := range in.Instances {
		for _, a := range i.Accounts {
			count[a]++
		}
	}
	if len(in.Instances) != len(c.live()) {
		return fmt.Errorf("%s lists %d instances, %d daemons are alive", n.name, len(in.Instances), len(c.live()))
	}
	for _, id := range c.ids {
		if count[id] != 1 {
			return fmt.Errorf("%s lists account %s on %d instances", n.name, id, count[id])
		}
	}
	for id, owner := range c.owners() {
		if owner == "" {
			return fmt.Errorf("account %s is not connected to the sim network", id)
		}
		if c.node(c.net.ConnectedFrom(id)).dead {
			return fmt.Errorf("account %s is still connected from the dead %s", id, owner)
		}
	}
	return nil
}

// inject sends inbound messages round-robin to the accounts until stop is
// closed, each with a fresh id; the sim server keeps each until a daemon
// acknowledges it.
func (c *clusterRig) inject(stop <-chan struct{}, every time.Duration) (sent func() []string, wait func()) {
	var (
		mu  sync.Mutex
		all []string
		wg  sync.WaitGroup
		seq atomic.Int64
	)
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			i := seq.Add(1)
			acct := c.ids[int(i)%len(c.ids)]
			id, err := c.net.Inject(acct, &sim.Inbound{From: fmt.Sprintf("1555%07d", i%97), ID: fmt.Sprintf("T%06d", i), Text: "traffic " + strconv.FormatInt(i, 10)})
			if err != nil {
				c.t.Errorf("inject: %v", err)
				return
			}
			mu.Lock()
			all = append(all, acct+":"+id)
			mu.Unlock()
		}
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(all)
	}, wg.Wait
}

// acked lists "account:messageId" for every message a daemon acknowledged.
func (c *clusterRig) acked() []string {
	var out []string
	for _, id := range c.ids {
		for _, m := range c.net.Acked(id) {
			out = append(out, id+":"+m)
		}
	}
	return out
}

// stored says whether the message is in the shared store, asked of node n.
func stored(n *node, key string) error {
	acct, msg, _ := strings.Cut(key, ":")
	resp, err := http.Get(n.base + "/v1/accounts/" + acct + "/messages/" + msg)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("message %s: GET on %s answered %d", key, n.name, resp.StatusCode)
	}
	return nil
}

// failover waits until every account that was on victim runs on another
// live daemon, and returns how long that took from since.
func (c *clusterRig) failover(victim *node, moved []string, since time.Time, within time.Duration) time.Duration {
	c.t.Helper()
	var took time.Duration
	poll.Until(c.t, within, func() error {
		for _, id := range moved {
			n := c.node(c.net.ConnectedFrom(id))
			if n == nil || n == victim || n.dead {
				return fmt.Errorf("account %s is not yet on a live daemon (%v)", id, c.net.ConnectedFrom(id))
			}
		}
		took = time.Since(since)
		return nil
	})
	return took
}

func (c *clusterRig) accountsOn(n *node) []string {
	var out []string
	for id, owner := range c.owners() {
		if owner == n.name {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

const clusterAccounts = 30

// TestThreeDaemonsShareOneMongoDB is issue 22's "done when": three real
// daemons on one MongoDB-compatible server whose conditional updates are
// atomic (checked first), one sim network served over loopback, 30 sim
// accounts with traffic flowing and a webhook receiver.
func TestThreeDaemonsShareOneMongoDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The server must give atomic conditional updates: checked, not assumed.
	uri := storetest.AtomicServer(t)
	dbName := storetest.AtomicDatabaseName(t)
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	if err := storetest.ProbeAtomicUpdates(ctx, client.Database(dbName), storetest.ProbeOptions{}); err != nil {
		t.Fatalf("the test server's conditional updates are not atomic: %v", err)
	}

	bins, err := plainBinaries()
	if err != nil {
		t.Fatal(err)
	}
	rig := &clusterRig{t: t, hooks: newHookRecorder(t), db: client.Database(dbName)}
	rig.net = sim.NewServer(sim.ServerOptions{PingInterval: 500 * time.Millisecond, PingTimeout: time.Second, ReadDelay: -1})
	simHTTP := httptest.NewServer(rig.net.Handler())
	t.Cleanup(func() { rig.net.Close(); simHTTP.Close() })

	// The accounts are paired already (their sim auth state is in the
	// store), so they connect as soon as a daemon owns them.
	auth := sim.NewMongoAuth(rig.db)
	var declared []string
	for i := range clusterAccounts {
		id := fmt.Sprintf("c%02d", i)
		rig.ids = append(rig.ids, id)
		declared = append(declared, fmt.Sprintf("{id: %s, driver: sim}", id))
		if err := auth.Save(ctx, id, sim.Auth{JID: sim.JID(id).String(), LID: sim.LID(id).String(), PairedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	config := func() string {
		return writeConfig(t, fmt.Sprintf(`data_dir: %s
http: {addr: "127.0.0.1:0"}
mongodb: {uri: %q, database: %s}
drivers: {sim: {network_url: %q, pair_delay: 1h}}
accounts: [%s]
plugins:
  webhook: {path: %s, timeout: 30s}
webhooks:
  allow_private_targets: true
  sync_interval: 500ms
  endpoints: [{id: rec, url: %q, events: [message.received]}]
outbox: {retries: [100ms, 200ms, 500ms], retry_every: 1s, poll_interval: 200ms, lease: 3s}
pipeline:
  - {name: hooks, sink: webhooks}
`, t.TempDir(), uri, dbName, simHTTP.URL, strings.Join(declared, ", "), filepath.Join(bins, "webhook"), rig.hooks.URL))
	}
	for i := range 3 {
		p := startDaemonBin(t, filepath.Join(bins, "wildcatd"), config())
		host, _ := os.Hostname()
		rig.nodes = append(rig.nodes, &node{name: fmt.Sprintf("d%d", i+1), p: p, peer: fmt.Sprintf("%s/%d", host, p.cmd.Process.Pid)})
	}
	for _, n := range rig.nodes {
		n.base = n.p.waitReady(t)
	}

	stop := make(chan struct{})
	sent, injected := rig.inject(stop, 40*time.Millisecond)
	stopped := false
	stopTraffic := func() {
		if !stopped {
			close(stop)
			injected()
			stopped = true
		}
	}
	t.Cleanup(stopTraffic)

	// Every account on exactly one daemon, by every daemon's API and by
	// the sim network.
	poll.Until(t, time.Minute, func() error {
		for _, n := range rig.live() {
			if err := rig.checkPlacement(n); err != nil {
				return err
			}
		}
		return nil
	})
	for _, n := range rig.nodes {
		t.Logf("%s (%s) runs %d accounts", n.name, n.peer, len(rig.accountsOn(n)))
	}

	// Traffic flows: wait until some messages are acknowledged everywhere.
	poll.Until(t, time.Minute, func() error {
		if a := len(rig.acked()); a < 60 {
			return fmt.Errorf("%d messages acknowledged", a)
		}
		return nil
	})

	// SIGKILL the daemon with the most accounts.
	victim := rig.nodes[0]
	for _, n := range rig.nodes {
		if len(rig.accountsOn(n)) > len(rig.accountsOn(victim)) {
			victim = n
		}
	}
	moved := rig.accountsOn(victim)
	ackedBefore := rig.acked()
	killedAt := time.Now()
	victim.p.kill(t)
	victim.dead = true
	took := rig.failover(victim, moved, killedAt, 20*time.Second)
	t.Logf("SIGKILL of %s: its %d accounts ran on the others %s later", victim.name, len(moved), took.Round(10*time.Millisecond))
	poll.Until(t, time.Minute, func() error {
		for _, n := range rig.live() {
			if err := rig.checkPlacement(n); err != nil {
				return err
			}
		}
		return nil
	})

	// No message acknowledged before the kill is lost.
	survivor := rig.live()[0]
	for _, key := range ackedBefore {
		if err := stored(survivor, key); err != nil {
			t.Errorf("acknowledged before the kill, lost: %v", err)
		}
	}

	// Traffic keeps flowing on the survivors; then drain it: every
	// injected message is acknowledged and stored, and delivered to the
	// webhook at least once.
	stopTraffic()
	all := sent()
	poll.Until(t, 2*time.Minute, func() error {
		if a := len(rig.acked()); a < len(all) {
			return fmt.Errorf("%d of %d injected messages acknowledged", a, len(all))
		}
		return nil
	})
	for _, key := range rig.acked() {
		if err := stored(survivor, key); err != nil {
			t.Errorf("acknowledged, not stored: %v", err)
		}
	}
	poll.Until(t, 2*time.Minute, func() error {
		missing := 0
		for _, key := range all {
			if rig.hooks.count(key) == 0 {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d events not delivered to the webhook yet", missing, len(all))
		}
		return nil
	})
	dups := 0
	for _, key := range all {
		dups += rig.hooks.count(key) - 1
	}
	t.Logf("%d messages injected, all stored and delivered; %d duplicate webhook deliveries (same id)", len(all), dups)

	if o := rig.net.Overlaps(); len(o) > 0 {
		t.Fatalf("accounts were connected from two daemons at once: %+v", o)
	}
}
