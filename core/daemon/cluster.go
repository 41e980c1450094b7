package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/cluster"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/logging"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/store"
)

// Cluster mode is automatic on MongoDB: every daemon on a MongoDB database
// takes account leases, so one daemon alone simply holds them all and a
// second one started on the same database shares the accounts instead of
// connecting every phone twice. The embedded engine has one daemon per
// data directory (its lock refuses a second) and no leases.

// buildCluster creates the membership and leases on MongoDB; d.cluster
// stays nil on the embedded engine.
func (d *Daemon) buildCluster(cfg config.Config) {
	if d.store == nil {
		return
	}
	cc := cfg.Cluster
	d.cluster = cluster.New(cluster.Options{
		DB:         d.store.DB(),
		InstanceID: d.opts.InstanceID,
		Version:    d.opts.Version,
		TTL:        cc.LeaseTTL,
		Renew:      cc.RenewInterval,
		MaxMoves:   cc.MaxMoves,
		Accounts: func(ctx context.Context) ([]string, error) {
			all, err := d.sessions.ListAccounts(ctx)
			if err != nil {
				return nil, err
			}
			ids := make([]string, len(all))
			for i, a := range all {
				ids[i] = a.ID
			}
			return ids, nil
		},
		Exists: func(ctx context.Context, id string) (bool, error) {
			_, err := d.sessions.GetAccount(ctx, id)
			if errors.Is(err, session.ErrAccountNotFound) {
				return false, nil
			}
			return err == nil, err
		},
		Start: func(ctx context.Context, id string) {
			if err := d.sessions.StartAccount(ctx, id); err != nil {
				d.log.Warn("account not started", slog.String("account", id), slog.Any("error", err))
			}
		},
		Stop:   func(ctx context.Context, id string) { d.sessions.StopAccount(ctx, id) },
		Logger: logging.Component(d.opts.Logger, "cluster"),
	})
}

// Cluster is the daemon's membership and account leases; nil on the
// embedded engine.
func (d *Daemon) Cluster() *cluster.Cluster { return d.cluster }

// clusterOwns and clusterGuard are the session manager's lease hooks; nil
// on the embedded engine.
func (d *Daemon) clusterOwns() func(string) bool {
	if d.cluster == nil {
		return nil
	}
	return d.cluster.Owns
}

func (d *Daemon) clusterGuard() func(string) (messages.Writer, error) {
	if d.cluster == nil {
		return nil
	}
	return func(id string) (messages.Writer, error) {
		f, err := d.cluster.Guard(id)
		return messages.Writer{Instance: f.Instance, Epoch: f.Epoch}, err
	}
}

// apiCluster is what the API forwards by: the leases on MongoDB, this
// daemon alone on the embedded engine.
func (d *Daemon) apiCluster() api.Cluster {
	if d.cluster != nil {
		return d.cluster
	}
	return soloCluster{d}
}

// startCluster places the accounts once (so Start starts this daemon's
// share) and then keeps the leases until stopCluster.
func (d *Daemon) startCluster(ctx context.Context) error {
	if d.cluster == nil {
		return nil
	}
	d.cluster.SetURL(advertiseURL(d.cfg, d.api.Addr()))
	if err := d.cluster.EnsureIndexes(ctx); err != nil {
		return err
	}
	if err := d.cluster.Tick(ctx); err != nil {
		return fmt.Errorf("place accounts: %w", err)
	}
	d.clusterOnce.Do(func() {
		cctx, cancel := context.WithCancel(context.Background())
		d.clusterCancel, d.clusterDone = cancel, make(chan struct{})
		go func() {
			defer close(d.clusterDone)
			d.cluster.Run(cctx)
		}()
		d.goBackground(d.relayEventsWatching)
	})
	return nil
}

// stopCluster hands this daemon's leases back (after its sessions have
// closed), so the other daemons take its accounts at once.
func (d *Daemon) stopCluster() {
	if d.clusterCancel != nil {
		d.clusterCancel()
		<-d.clusterDone
	}
}

// advertiseURL is cluster.advertise_url, else the address the API is bound
// to (bound: http.addr with its port resolved) as a URL: a wildcard host
// becomes the machine's host name.
func advertiseURL(cfg config.Config, bound string) string {
	if cfg.Cluster.AdvertiseURL != "" {
		return cfg.Cluster.AdvertiseURL
	}
	scheme := "http"
	if cfg.HTTP.TLSCertFile != "" {
		scheme = "https"
	}
	if bound == "" {
		bound = cfg.HTTP.Addr
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return scheme + "://" + bound
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "127.0.0.1"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// apiHosts are http.hosts plus, on MongoDB, the host of
// cluster.advertise_url: the other daemons forward requests to that name.
func (d *Daemon) apiHosts(cfg config.Config) []string {
	hosts := slices.Clone(cfg.HTTP.Hosts)
	if d.cluster != nil && cfg.Cluster.AdvertiseURL != "" {
		if u, err := url.Parse(cfg.Cluster.AdvertiseURL); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
		}
	}
	return hosts
}

// soloCluster is the embedded engine's one daemon: every account is local.
type soloCluster struct{ d *Daemon }

func (s soloCluster) ID() string { return "local" }

func (s soloCluster) Owner(context.Context, string, time.Duration) (string, bool, error) {
	return "", true, nil
}

func (s soloCluster) OwnerOf(context.Context, string) (string, error) { return s.ID(), nil }

func (s soloCluster) Instances(ctx context.Context) ([]cluster.Instance, error) {
	all, err := s.d.sessions.ListAccounts(ctx)
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, a := range all {
		if a.State != session.StateLoggedOut {
			ids = append(ids, a.ID)
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	return []cluster.Instance{{ID: s.ID(), URL: advertiseURL(s.d.cfg, s.d.api.Addr()), Version: s.d.opts.Version, StartedAt: s.d.startedAt,
		HeartbeatAt: now, Accounts: ids, Self: true}}, nil
}

// guardedSimAuth refuses the sim driver's auth-state writes of an account
// whose lease this daemon does not hold.
type guardedSimAuth struct {
	sim.AuthStore
	guard func(string) (messages.Writer, error)
}

func (g guardedSimAuth) Save(ctx context.Context, accountID string, a sim.Auth) error {
	if _, err := g.guard(accountID); err != nil {
		return fmt.Errorf("save sim auth state: %w", err)
	}
	return g.AuthStore.Save(ctx, accountID, a)
}

func (g guardedSimAuth) Delete(ctx context.Context, accountID string) error {
	if _, err := g.guard(accountID); err != nil {
		return fmt.Errorf("delete sim auth state: %w", err)
	}
	return g.AuthStore.Delete(ctx, accountID)
}

// relayEvents feeds the live event stream with the events of accounts
// other daemons run, so GET /v1/events on any daemon shows every account.
// It polls the stored message events by their storing order (FerretDB has
// no change streams, and reading through the message store keeps sealed
// content decrypted the one way): every cluster.events_poll it reads the
// events stored since the previous poll, minus a look-back that covers
// writers whose clocks or pipelines lag, and publishes those it has not
// seen and this daemon did not run. It reads only while someone listens
// and another daemon is live; a first poll publishes what was stored
// since the last poll that found nobody listening, so no event falls
// between a client's subscription and the relay's first read.
func (d *Daemon) relayEvents(ctx context.Context) {
	const lookback = 30 * time.Second
	seen := map[string]time.Time{}
	primed := false
	idleAt := time.Now()
	var since time.Time
	t := time.NewTicker(d.cfg.Cluster.EventsPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		if d.cluster.Live() < 2 || d.hub.Subscribers() == 0 {
			primed, idleAt = false, start
			clear(seen)
			continue
		}
		from := since.Add(-lookback)
		if !primed {
			from = idleAt
		}
		// The messages' MongoDB position of every event stored at or
		// after a time: "<RFC 3339> " with no id.
		pos := from.UTC().Format(time.RFC3339Nano) + " "
		ok := true
		for pos != "" {
			evs, next, _, err := d.messages.EventsAfter(ctx, pos, 500)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Warn("event relay: reading stored events failed", slog.Any("error", err))
				}
				ok = false
				break
			}
			for _, ev := range evs {
				if _, dup := seen[ev.ID]; dup {
					continue
				}
				seen[ev.ID] = start
				if !d.cluster.Owns(ev.AccountID) {
					d.hub.Publish(ev)
				}
			}
			pos = next
		}
		if !ok {
			continue
		}
		primed, since = true, start
		for id, at := range seen {
			if start.Sub(at) > 2*lookback {
				delete(seen, id)
			}
		}
	}
}

// relayEventsWatching relays the other daemons' events from a change
// stream on the messages collection where the server has change streams
// (a MongoDB replica set): each message whose pipeline finished, as it
// finishes. Where it has none (FerretDB, a standalone MongoDB) it falls
// back to polling (relayEvents); so it does when the stream fails.
func (d *Daemon) relayEventsWatching(ctx context.Context) {
	coll := d.store.DB().Collection(store.Messages)
	match := mongo.Pipeline{{{Key: "$match", Value: bson.D{
		{Key: "operationType", Value: "update"},
		{Key: "updateDescription.updatedFields.pipelineDone", Value: true},
	}}}}
	cs, err := coll.Watch(ctx, match)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Info("no change streams on this server; events of other daemons are polled", slog.Any("reason", err))
			d.relayEvents(ctx)
		}
		return
	}
	d.log.Info("events of other daemons follow a change stream")
	defer cs.Close(context.Background())
	for cs.Next(ctx) {
		var ch struct {
			Key struct {
				ID string `bson:"_id"`
			} `bson:"documentKey"`
		}
		if err := cs.Decode(&ch); err != nil {
			continue
		}
		accountID, messageID, ok := strings.Cut(ch.Key.ID, ":")
		if !ok || d.cluster.Owns(accountID) || d.hub.Subscribers() == 0 {
			continue
		}
		// Read through the message store: it decrypts sealed content.
		m, err := d.messages.Get(ctx, accountID, messageID)
		if err != nil {
			continue
		}
		ev := m.Event()
		ev.Tags, ev.Annotations = m.Tags, m.Annotations
		d.hub.Publish(ev)
	}
	if ctx.Err() == nil {
		d.log.Warn("change stream ended; events of other daemons are polled", slog.Any("error", cs.Err()))
		d.relayEvents(ctx)
	}
}
