package daemon

import (
	"context"
	"log/slog"
	"strings"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/logging"
	"github.com/wildcathub/wildcat/core/outgoing"
	"github.com/wildcathub/wildcat/core/ratelimit"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/throttle"
)

// buildPacer makes the send pacer from send.pacing, its counts on the
// daemon's engine and its metrics on the daemon's registry.
func (d *Daemon) buildPacer(cfg config.Config) error {
	var counts throttle.Counts
	if d.sql != nil {
		counts = throttle.NewSQLiteCounts(d.sql)
	} else {
		counts = throttle.NewMongoCounts(d.store.DB())
	}
	policy := func(p config.DriverPacing) throttle.Policy {
		return throttle.Policy{Interval: p.Interval, Jitter: p.Jitter, DailyCap: p.DailyCap, WarmUp: p.WarmUp}
	}
	var err error
	d.pacer, err = throttle.New(throttle.Options{
		Policies: map[string]throttle.Policy{
			whatsapp.DriverName: policy(cfg.Send.Pacing.WhatsApp),
			sim.Name:            policy(cfg.Send.Pacing.Sim),
		},
		Override: func(id string, driver throttle.Policy) throttle.Policy {
			o, ok := cfg.Send.Pacing.Accounts[id]
			if !ok {
				return driver
			}
			return policy(o.Over(config.DriverPacing{Interval: driver.Interval, Jitter: driver.Jitter, DailyCap: driver.DailyCap, WarmUp: driver.WarmUp}))
		},
		Accounts:   d.sessions,
		Counts:     counts,
		Clock:      d.clock,
		Registerer: d.metrics,
		Logger:     logging.Component(d.opts.Logger, "send"),
	})
	return err
}

// purgeSendCounts drops the daily send counts older than a week, once at
// start: they only serve the cap of today.
func (d *Daemon) purgeSendCounts(ctx context.Context) {
	if err := d.pacer.PurgeOld(ctx); err != nil && ctx.Err() == nil {
		d.log.Warn("purging old send counts failed", slog.Any("error", err))
	}
}

// rateLimiter is the API's limiter from http.rate_limits; nil when off.
func rateLimiter(c config.RateLimits, d *Daemon) *ratelimit.Limiter {
	if !c.Enabled {
		return nil
	}
	return ratelimit.New(ratelimit.Config{
		Scopes: map[string]ratelimit.Limit{
			"reads":      {PerMinute: c.ReadsPerMinute, Burst: c.ReadsBurst},
			"sends":      {PerMinute: c.SendsPerMinute, Burst: c.SendsBurst},
			"management": {PerMinute: c.ManagementPerMinute, Burst: c.ManagementBurst},
		},
		FailedAuth:     ratelimit.Limit{PerMinute: c.FailedAuthPerMinute, Burst: c.FailedAuthBurst},
		ExemptLoopback: c.ExemptLoopback,
	}, d.clock)
}

// ownJID is the account's own JID without its device part, recorded as the
// sender of a rule's or plugin's send that waits for its slot.
func (d *Daemon) ownJID(ctx context.Context, accountID string) string {
	a, err := d.sessions.GetAccount(ctx, accountID)
	if err != nil || a.JID == "" {
		return ""
	}
	user, server, ok := strings.Cut(a.JID, "@")
	if !ok {
		return a.JID
	}
	user, _, _ = strings.Cut(user, ":")
	return user + "@" + server
}

// pacedSend sends a rule's or plugin's message through the paced sender:
// at once when its slot is now, else queued for its slot.
func (d *Daemon) pacedSend(ctx context.Context, accountID string, req *session.SendRequest) error {
	r := outgoing.Request{AccountID: accountID, Send: req}
	_, err := d.sender.Send(ctx, r, func() string { return d.ownJID(ctx, accountID) })
	return err
}
