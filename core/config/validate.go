package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Validate checks values that decoded with the right type but cannot work,
// as far as this package can tell on its own. It returns the first problem
// as an *Error.
//
// What needs the packages that use a value is checked by package
// configcheck, with the same kind of *Error: the MongoDB URI (by the
// driver's parser), the webhook endpoints (by package webhooks), the plugin
// declarations (by package pluginhost) and the pipeline (compiled by
// package pipeline). This package stays a leaf those packages import, free
// of gRPC, go-plugin, the MongoDB driver and the rule engine.
func (c *Config) Validate() error {
	checks := []struct {
		key string
		err error
	}{
		{"data_dir", nonEmpty(c.DataDir)},
		{"shutdown_timeout", positive(c.ShutdownTimeout.Seconds())},
		{"http.addr", listenAddr(c.HTTP.Addr, false)},
		{"http.max_body_bytes", positive(float64(c.HTTP.MaxBodyBytes))},
		{"mongodb.database", databaseName(c.MongoDB.Database)},
		{"log.level", oneOf(c.Log.Level, "debug", "info", "warn", "error")},
		{"log.format", oneOf(c.Log.Format, "auto", "text", "json")},
		{"mongodb.embedded_sync", oneOf(c.MongoDB.EmbeddedSync, "full", "normal")},
		{"http.idempotency_ttl", positive(c.HTTP.IdempotencyTTL.Seconds())},
		{"http.read_timeout", positive(c.HTTP.ReadTimeout.Seconds())},
		{"http.upload_timeout", positive(c.HTTP.UploadTimeout.Seconds())},
		{"http.auth", authForAddr(c.HTTP.Auth, c.HTTP.Addr)},
		{"http.metrics_auth", oneOf(c.HTTP.MetricsAuth, "auto", "open", "key")},
		{"http.tls_cert_file", pairedWith(c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile, "http.tls_key_file")},
		{"http.tls_key_file", pairedWith(c.HTTP.TLSKeyFile, c.HTTP.TLSCertFile, "http.tls_cert_file")},
		{"media.max_bytes", positive(float64(c.Media.MaxBytes))},
		{"media.fetch_timeout", positive(c.Media.FetchTimeout.Seconds())},
		{"send.workers", between(c.Send.Workers, 1, 256)},
		{"send.queue_size", between(c.Send.QueueSize, 1, 1_000_000)},
		{"outbox.retry_every", positive(c.Outbox.RetryEvery.Seconds())},
		{"outbox.max_age", positive(c.Outbox.MaxAge.Seconds())},
		{"outbox.max_retry_after", positive(c.Outbox.MaxRetryAfter.Seconds())},
		{"outbox.concurrency", between(c.Outbox.Concurrency, 1, 1024)},
		{"outbox.poll_interval", positive(c.Outbox.PollInterval.Seconds())},
		{"outbox.lease", atLeast(c.Outbox.Lease, 2*time.Second)},
		{"outbox.retention", positive(c.Outbox.Retention.Seconds())},
		{"drivers.sim.network_url", optionalHTTPURL(c.Drivers.Sim.NetworkURL)},
		{"drivers.sim.pair_delay", positive(c.Drivers.Sim.PairDelay.Seconds())},
		{"webhooks.timeout", positive(c.Webhooks.Timeout.Seconds())},
		{"webhooks.disable_after", positive(c.Webhooks.DisableAfter.Seconds())},
		{"webhooks.plugin", nonEmpty(c.Webhooks.Plugin)},
		{"webhooks.sync_interval", positive(c.Webhooks.SyncInterval.Seconds())},
		{"rules.memory_limit", atLeastBytes(c.Rules.MemoryLimit, 16<<20)},
		{"cluster.advertise_url", baseURL(c.Cluster.AdvertiseURL)},
		{"cluster.lease_ttl", atLeast(c.Cluster.LeaseTTL, 2*time.Second)},
		{"cluster.renew_interval", below(c.Cluster.RenewInterval, c.Cluster.LeaseTTL/2, "half of cluster.lease_ttl")},
		{"cluster.max_moves", between(c.Cluster.MaxMoves, 1, 10_000)},
		{"cluster.events_poll", positive(c.Cluster.EventsPoll.Seconds())},
	}
	for _, ch := range checks {
		if ch.err != nil {
			return &Error{Key: ch.key, Problem: ch.err.Error()}
		}
	}
	for i, p := range c.HTTP.TrustedProxies {
		if err := cidrOrAddr(p); err != nil {
			return &Error{Key: fmt.Sprintf("http.trusted_proxies[%d]", i), Problem: err.Error()}
		}
	}
	for i, d := range c.Outbox.Retries {
		if d < 0 {
			return &Error{Key: fmt.Sprintf("outbox.retries[%d]", i), Problem: "must not be negative"}
		}
	}
	if err := c.validateLimits(); err != nil {
		return err
	}
	return validateAccounts(c.Accounts)
}

func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("must not be empty")
	}
	return nil
}

func atLeastBytes(v, lo int64) error {
	if v < lo {
		return fmt.Errorf("must be at least %d bytes (%d MiB), not %d", lo, lo>>20, v)
	}
	return nil
}

func positive(v float64) error {
	if v <= 0 {
		return fmt.Errorf("must be greater than zero")
	}
	return nil
}

func atLeast(v, lo time.Duration) error {
	if v < lo {
		return fmt.Errorf("must be at least %s, not %s", lo, v)
	}
	return nil
}

// below accepts a positive duration under hi (what names it).
func below(v, hi time.Duration, what string) error {
	if v <= 0 || v >= hi {
		return fmt.Errorf("must be greater than zero and below %s (%s), not %s", what, hi, v)
	}
	return nil
}

// baseURL accepts empty or an absolute http(s) URL without query.
func baseURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("%q is not an http(s)://host:port base URL", s)
	}
	return nil
}

func between(v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("must be from %d to %d, not %d", lo, hi, v)
	}
	return nil
}

func oneOf(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
}

// listenAddr accepts host:port with a numeric port 0–65535; port 0 picks a
// free port (tests use it).
func listenAddr(addr string, optional bool) error {
	if addr == "" {
		if optional {
			return nil
		}
		return fmt.Errorf("must not be empty (write host:port, e.g. 127.0.0.1:8080)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:8080)", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("host %q is not a hostname or IP address", host)
	}
	return nil
}

// databaseName follows MongoDB's naming restrictions.
func databaseName(name string) error {
	if name == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(name) > 63 {
		return fmt.Errorf("must be at most 63 characters")
	}
	if i := strings.IndexAny(name, "/\\. \"$*<>:|?\x00"); i >= 0 {
		return fmt.Errorf("must not contain %q", name[i])
	}
	return nil
}

// IsLoopback reports whether a listen address (host:port) reaches only
// this machine: localhost or a loopback IP. An empty host (":8080") listens
// on every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// authForAddr refuses authentication off on an address others can reach.
func authForAddr(auth bool, addr string) error {
	if auth || IsLoopback(addr) {
		return nil
	}
	return fmt.Errorf("must be true when http.addr (%s) is not a loopback address: without API keys anyone who can reach the port can read every message and send as every account", addr)
}

func pairedWith(v, other, otherKey string) error {
	if v == "" && other != "" {
		return fmt.Errorf("must be set together with %s", otherKey)
	}
	return nil
}

func cidrOrAddr(s string) error {
	s = strings.TrimSpace(s)
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	return fmt.Errorf("%q is not a CIDR (10.0.0.0/8) or an IP address", s)
}

// optionalHTTPURL accepts "" or an http(s) or ws(s) URL with a host.
func optionalHTTPURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("%q: the scheme must be http, https, ws or wss", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q names no host", s)
	}
	return nil
}
