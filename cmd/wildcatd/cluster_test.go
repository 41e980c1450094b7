package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
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
	for out, pkg := range map[string]string{"wildcatd": ".", "webhook": "../../plugins/webhook", "atomicserver": "../../core/store/storetest/atomicserver"} {
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

// atomicServerProcess is the MongoDB-compatible server the daemons share:
// the one WILDCAT_TEST_MONGODB_URI names, or storetest's atomic server in
// a process of its own, built without the race detector so that it keeps
// its speed under go test -race. Its statistics are logged at the end.
func atomicServerProcess(t *testing.T, bin string) string {
	t.Helper()
	if uri := os.Getenv(storetest.URIEnv); uri != "" {
		return uri
	}
	cmd := exec.Command(bin, "--dir", t.TempDir(), "--stats")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close() // it stops when its input ends
		if err := cmd.Wait(); err != nil {
			t.Errorf("atomic server: %v", err)
		}
		text := stderr.String()
		if !t.Failed() {
			// Only the summary line; the whole log says what waited.
			if i := strings.Index(text, "atomicserver: "); i >= 0 {
				text = text[i:]
			}
		}
		t.Logf("%s", text)
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("atomic server: %v (%s)", err, stderr.String())
	}
	return strings.TrimSpace(line)
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
	owners := c.owners()
	for _, i := range in.Instances {
		m := c.nodeOfInstance(i.ID)
		if m == nil || m.dead {
			return fmt.Errorf("%s lists instance %s, which is no live daemon", n.name, i.ID)
		}
		if len(i.Accounts) == 0 {
			return fmt.Errorf("%s lists instance %s (%s) without accounts", n.name, i.ID, m.name)
		}
		for _, a := range i.Accounts {
			if owners[a] != m.name {
				return fmt.Errorf("%s lists account %s on %s, the sim network has it connected from %q", n.name, a, m.name, owners[a])
			}
		}
	}
	for id, owner := range owners {
		if owner == "" {
			return fmt.Errorf("account %s is not connected to the sim network", id)
		}
	}
	return nil
}

// nodeOfInstance finds the daemon of an instance id (host-pid-random).
func (c *clusterRig) nodeOfInstance(id string) *node {
	for _, n := range c.nodes {
		if strings.Contains(id, fmt.Sprintf("-%d-", n.p.cmd.Process.Pid)) {
			return n
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
// accounts with traffic flowing and a webhook receiver. The cluster runs
// on its default lease timing (cluster.lease_ttl 10s, renew_interval 3s),
// so the failover times it logs are the ones operators get.
func TestThreeDaemonsShareOneMongoDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	bins, err := plainBinaries()
	if err != nil {
		t.Fatal(err)
	}
	// The server must give atomic conditional updates: checked, not assumed.
	uri := atomicServerProcess(t, filepath.Join(bins, "atomicserver"))
	dbName := "cluster_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.Database(dbName).Drop(context.Background())
		_ = client.Disconnect(context.Background())
	})
	if err := storetest.ProbeAtomicUpdates(ctx, client.Database(dbName), storetest.ProbeOptions{}); err != nil {
		t.Fatalf("the test server's conditional updates are not atomic: %v", err)
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
http: {addr: "127.0.0.1:0", auth_secret: %q}
mongodb: {uri: %q, database: %s}
drivers: {sim: {network_url: %q, pair_delay: 1h}}
accounts: [%s]
plugins:
  webhook: {path: %s, timeout: 30s}
webhooks:
  allow_private_targets: true
  sync_interval: 500ms
  endpoints: [{id: rec, url: %q, events: [message.received]}]
outbox: {retries: [100ms, 200ms, 500ms], retry_every: 1s, poll_interval: 2s, lease: 5s}
pipeline:
  - {name: hooks, sink: webhooks}
`, t.TempDir(), apikeystest.ServerSecret, uri, dbName, simHTTP.URL, strings.Join(declared, ", "), filepath.Join(bins, "webhook"), rig.hooks.URL))
	}
	for i := range 3 {
		p := startDaemonBin(t, filepath.Join(bins, "wildcatd"), config())
		host, _ := os.Hostname()
		rig.nodes = append(rig.nodes, &node{name: fmt.Sprintf("d%d", i+1), p: p, peer: fmt.Sprintf("%s/%d", host, p.cmd.Process.Pid)})
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range rig.nodes {
			lines := strings.Split(strings.TrimSpace(n.p.logText()), "\n")
			t.Logf("%s (%s) last log lines:\n%s", n.name, n.peer, strings.Join(lines[max(0, len(lines)-25):], "\n"))
		}
		t.Logf("sim network: %d connections, overlaps %+v", len(rig.net.Connections()), rig.net.Overlaps())
	})
	for _, n := range rig.nodes {
		n.base = n.p.waitReady(t)
	}

	stop := make(chan struct{})
	// Modest traffic: FerretDB answers every query but an _id lookup by
	// reading the whole collection, and the outbox grows with each message.
	sent, injected := rig.inject(stop, 500*time.Millisecond)
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
		if a := len(rig.acked()); a < 20 {
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

	if o := rig.net.Overlaps(); len(o) > 0 {
		t.Fatalf("accounts were connected from two daemons at once: %+v", o)
	}

	rig.pauseDaemon(ctx)

	// Traffic flowed through the kill and the pause; drain it: every
	// injected message is acknowledged and stored, and delivered to the
	// webhook at least once.
	stopTraffic()
	all := sent()
	reader := rig.live()[0]
	poll.Until(t, 2*time.Minute, func() error {
		if a := len(rig.acked()); a < len(all) {
			return fmt.Errorf("%d of %d injected messages acknowledged", a, len(all))
		}
		return nil
	})
	for _, key := range rig.acked() {
		if err := stored(reader, key); err != nil {
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

	rig.callsOnNonOwners()

	if o := rig.net.Overlaps(); len(o) > 0 {
		t.Fatalf("accounts were connected from two daemons at once: %+v", o)
	}
}

// leaseOf is an account's lease as the store has it.
type leaseOf struct {
	Owner string
	Epoch int64
}

// leases reads every account's lease.
func (c *clusterRig) leases(ctx context.Context) map[string]leaseOf {
	c.t.Helper()
	cur, err := c.db.Collection("leases").Find(ctx, bson.M{})
	if err != nil {
		c.t.Fatal(err)
	}
	var docs []struct {
		Account string `bson:"_id"`
		Owner   string `bson:"owner"`
		Epoch   int64  `bson:"epoch"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		c.t.Fatal(err)
	}
	out := map[string]leaseOf{}
	for _, d := range docs {
		out[d.Account] = leaseOf{Owner: d.Owner, Epoch: d.Epoch}
	}
	return out
}

func (c *clusterRig) instanceOf(n *node) string {
	c.t.Helper()
	var in instances
	if err := getJSON(c.live()[0].base+"/v1/instances", &in); err != nil {
		c.t.Fatal(err)
	}
	for _, i := range in.Instances {
		if c.nodeOfInstance(i.ID) == n {
			return i.ID
		}
	}
	c.t.Fatalf("no instance of %s listed", n.name)
	return ""
}

// pauseDaemon cuts a daemon off with SIGSTOP past its leases while traffic
// flows, lets the others take its accounts over, and wakes it with
// SIGCONT: it must stop those sessions and write nothing under the epochs
// it held (checked in the store), and rejoin.
func (c *clusterRig) pauseDaemon(ctx context.Context) {
	t := c.t
	live := c.live()
	paused := live[0]
	for _, n := range live {
		if len(c.accountsOn(n)) > len(c.accountsOn(paused)) {
			paused = n
		}
	}
	id := c.instanceOf(paused)
	held := c.accountsOn(paused)
	epochs := map[string]int64{}
	for acct, l := range c.leases(ctx) {
		if l.Owner == id {
			epochs[acct] = l.Epoch
		}
	}
	if len(epochs) != len(held) {
		t.Fatalf("%s holds %d leases and runs %d accounts", paused.name, len(epochs), len(held))
	}

	stoppedAt := time.Now()
	if err := paused.p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused.dead = true // not asked anything while stopped
	took := c.failover(paused, held, stoppedAt, 20*time.Second)
	// Superseded in the store: every lease it held has another owner and
	// a higher epoch now.
	poll.Until(t, 20*time.Second, func() error {
		now := c.leases(ctx)
		for acct, old := range epochs {
			if l := now[acct]; l.Owner == id || l.Epoch <= old {
				return fmt.Errorf("lease of %s: %+v, was epoch %d", acct, l, old)
			}
		}
		return nil
	})
	contAt := time.Now()
	if err := paused.p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	paused.dead = false
	t.Logf("SIGSTOP of %s: its %d accounts ran on the others %s later; SIGCONT after %s", paused.name, len(held), took.Round(10*time.Millisecond), contAt.Sub(stoppedAt).Round(10*time.Millisecond))

	// It rejoins: every account on exactly one daemon again.
	poll.Until(t, time.Minute, func() error {
		for _, n := range c.live() {
			if err := c.checkPlacement(n); err != nil {
				return err
			}
		}
		return nil
	})
	// No write under a superseded epoch after it woke up.
	cur, err := c.db.Collection("messages").Find(ctx, bson.M{"writer.instance": id, "storedAt": bson.M{"$gte": contAt}})
	if err != nil {
		t.Fatal(err)
	}
	var late []struct {
		ID       string    `bson:"_id"`
		StoredAt time.Time `bson:"storedAt"`
		Writer   struct {
			Epoch int64 `bson:"epoch"`
		} `bson:"writer"`
	}
	if err := cur.All(ctx, &late); err != nil {
		t.Fatal(err)
	}
	for _, m := range late {
		acct, _, _ := strings.Cut(m.ID, ":")
		if old, ok := epochs[acct]; ok && m.Writer.Epoch <= old {
			t.Errorf("%s woke up and stored %s under its superseded epoch %d at %s", paused.name, m.ID, m.Writer.Epoch, m.StoredAt)
		}
	}
	t.Logf("%s wrote %d messages after waking up, all under leases it acquired again", paused.name, len(late))
	// Its sessions stayed stopped until it held leases again: the account
	// states in the store are the owners' (a woken daemon that wrote
	// would leave them disconnected).
	poll.Until(t, 30*time.Second, func() error {
		for _, acct := range held {
			var a struct {
				State string `json:"state"`
			}
			if err := getJSON(c.live()[0].base+"/v1/accounts/"+acct, &a); err != nil {
				return err
			}
			if a.State != "connected" {
				return fmt.Errorf("account %s is %s after the pause, want connected", acct, a.State)
			}
		}
		return nil
	})
}

// callsOnNonOwners: send, QR and logout called on a daemon that does not
// run the account work.
func (c *clusterRig) callsOnNonOwners() {
	t := c.t
	owners := c.owners()
	notOwner := func(acct string) *node {
		for _, n := range c.live() {
			if n.name != owners[acct] {
				return n
			}
		}
		t.Fatalf("every live daemon runs %s", acct)
		return nil
	}

	// Send.
	acct := c.ids[0]
	via := notOwner(acct)
	var sent struct {
		MessageID string `json:"messageId"`
	}
	if code := postJSON(t, via.base+"/v1/accounts/"+acct+"/messages", `{"to":"15550004242@s.whatsapp.net","text":"sent through a non-owner"}`, &sent); code != http.StatusAccepted {
		t.Fatalf("send on %s (owner %s): %d", via.name, owners[acct], code)
	}
	poll.Until(t, 30*time.Second, func() error {
		for _, m := range c.net.Sent(acct) {
			if m.ID == sent.MessageID {
				if n := c.node(m.Peer); n == nil || n.name != owners[acct] {
					return fmt.Errorf("sent from %q, not the owner %s", m.Peer, owners[acct])
				}
				return nil
			}
		}
		return fmt.Errorf("message %s not sent yet", sent.MessageID)
	})

	// QR: a new account, connected and asked for its QR code on daemons
	// that do not run it.
	first := c.live()[0]
	if code := postJSON(t, first.base+"/v1/accounts", `{"id":"qr-here","driver":"sim"}`, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	var owner string
	poll.Until(t, 30*time.Second, func() error {
		var in instances
		if err := getJSON(first.base+"/v1/instances", &in); err != nil {
			return err
		}
		for _, i := range in.Instances {
			if slices.Contains(i.Accounts, "qr-here") {
				owner = c.nodeOfInstance(i.ID).name
				return nil
			}
		}
		return errors.New("qr-here is placed nowhere yet")
	})
	var other *node
	for _, n := range c.live() {
		if n.name != owner {
			other = n
		}
	}
	if code := postJSON(t, other.base+"/v1/accounts/qr-here/connect", ``, nil); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("connect on %s (owner %s): %d", other.name, owner, code)
	}
	poll.Until(t, 30*time.Second, func() error {
		var qr struct {
			Code string `json:"code"`
		}
		if err := getJSON(other.base+"/v1/accounts/qr-here/qr", &qr); err != nil {
			return err
		}
		if !strings.HasPrefix(qr.Code, "2@sim-qr-here,") {
			return fmt.Errorf("QR code %q", qr.Code)
		}
		return nil
	})

	// Logout.
	acct = c.ids[1]
	via = notOwner(acct)
	if code := postJSON(t, via.base+"/v1/accounts/"+acct+"/logout", ``, nil); code != http.StatusOK && code != http.StatusAccepted {
		t.Fatalf("logout on %s (owner %s): %d", via.name, owners[acct], code)
	}
	poll.Until(t, 30*time.Second, func() error {
		var a struct {
			State string `json:"state"`
		}
		if err := getJSON(via.base+"/v1/accounts/"+acct, &a); err != nil {
			return err
		}
		if a.State != "logged_out" {
			return fmt.Errorf("%s is %s", acct, a.State)
		}
		if p := c.net.ConnectedFrom(acct); p != "" {
			return fmt.Errorf("%s still connected from %s", acct, p)
		}
		return nil
	})
	if got, err := sim.NewMongoAuth(c.db).Load(context.Background(), acct); err != nil || got != nil {
		t.Fatalf("sim auth state after logout: %+v, %v", got, err)
	}
}

// postJSON posts body and decodes the answer into out (when not nil).
func postJSON(t *testing.T, url, body string, out any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Logf("POST %s: %d %s", url, resp.StatusCode, b)
	} else if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("POST %s: %v in %s", url, err, b)
		}
	}
	return resp.StatusCode
}
