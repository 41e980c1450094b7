package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// Validate checks values that decoded with the right type but cannot work.
// It returns the first problem as an *Error.
func (c *Config) Validate() error {
	checks := []struct {
		key string
		err error
	}{
		{"data_dir", nonEmpty(c.DataDir)},
		{"shutdown_timeout", positive(c.ShutdownTimeout.Seconds())},
		{"http.addr", listenAddr(c.HTTP.Addr, false)},
		{"http.max_body_bytes", positive(float64(c.HTTP.MaxBodyBytes))},
		{"mongodb.uri", mongoURI(c.MongoDB.URI)},
		{"mongodb.database", databaseName(c.MongoDB.Database)},
		{"log.level", oneOf(c.Log.Level, "debug", "info", "warn", "error")},
		{"log.format", oneOf(c.Log.Format, "auto", "text", "json")},
		{"mongodb.embedded_sync", oneOf(c.MongoDB.EmbeddedSync, "full", "normal")},
		{"http.idempotency_ttl", positive(c.HTTP.IdempotencyTTL.Seconds())},
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
		{"webhooks.timeout", positive(c.Webhooks.Timeout.Seconds())},
		{"webhooks.disable_after", positive(c.Webhooks.DisableAfter.Seconds())},
		{"webhooks.plugin", nonEmpty(c.Webhooks.Plugin)},
		{"webhooks.sync_interval", positive(c.Webhooks.SyncInterval.Seconds())},
	}
	for _, ch := range checks {
		if ch.err != nil {
			return &Error{Key: ch.key, Problem: ch.err.Error()}
		}
	}
	for i, d := range c.Outbox.Retries {
		if d < 0 {
			return &Error{Key: fmt.Sprintf("outbox.retries[%d]", i), Problem: "must not be negative"}
		}
	}
	if err := validateAccounts(c.Accounts); err != nil {
		return err
	}
	if err := webhooks.ValidateDeclared(c.Webhooks.Endpoints); err != nil {
		var fe *webhooks.FieldError
		if errors.As(err, &fe) {
			return &Error{Key: fe.Field, Problem: fe.Problem}
		}
		return &Error{Key: "webhooks.endpoints", Problem: err.Error()}
	}
	if err := pluginhost.ValidateAll(c.Plugins); err != nil {
		var pe *pluginhost.ConfigError
		if errors.As(err, &pe) {
			return &Error{Key: pe.Key, Problem: pe.Problem}
		}
		return &Error{Key: "plugins", Problem: err.Error()}
	}
	return c.ValidatePipeline(nil)
}

// ValidatePipeline compiles the pipeline against reg, the stage kinds the
// daemon offers; nil means the static catalog (builtins and rules). The
// first problem is an *Error whose key names the stage, e.g.
// `pipeline[1] "x"`, so the one-line exit-2 message says which stage.
func (c *Config) ValidatePipeline(reg *pipeline.Registry) error {
	if reg == nil {
		reg = staticCatalog()
		declarePlugins(reg, c.Plugins)
	}
	err := pipeline.Compile(c.Pipeline, reg)
	if err == nil {
		return nil
	}
	var se *pipeline.StageError
	if !errors.As(err, &se) {
		return &Error{Key: "pipeline", Problem: err.Error()}
	}
	problem := se.Problem
	if n := countStageErrors(err); n > 1 {
		problem += fmt.Sprintf(" (and %d more problems)", n-1)
	}
	return &Error{Key: fmt.Sprintf("pipeline[%d] %q", se.Index, se.Name), Problem: problem}
}

func countStageErrors(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}

func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("must not be empty")
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

func mongoURI(uri string) error {
	if uri == "" {
		return nil
	}
	if _, err := connstring.ParseAndValidate(uri); err != nil {
		// The driver's message may echo the URI with its password; keep only
		// the reason.
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return fmt.Errorf("not a valid MongoDB connection string: %s", msg)
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

// staticCatalog is what a wildcatd offers before anything runs: the
// builtins and the rule engine. Kinds known only once components start
// (plugin capabilities) are checked again by the daemon.
func staticCatalog() *pipeline.Registry {
	reg := pipeline.NewRegistry()
	// The daemon fans "sink: webhooks" out to the registered endpoints.
	reg.RegisterSink(webhooks.SinkName)
	// Rule files are loaded by the daemon's rule engine; a check only needs
	// the stage to compile, and this handler is never called.
	reg.RegisterRules(func(pipeline.StageConfig) (pipeline.InlineHandler, error) {
		return pipeline.HandlerFunc(func(context.Context, *event.Event) ([]pipeline.Action, error) {
			return nil, errors.New("rule stages run in the daemon")
		}), nil
	})
	return reg
}

// declarePlugins adds the plugins declared under plugins: to a static
// catalog. What each can do (inline, sink) is known only once it runs, so
// here a declared plugin may serve either mode; the daemon checks the
// stages again against the capabilities the processes report. A stage
// naming an undeclared plugin fails the check.
func declarePlugins(reg *pipeline.Registry, plugins map[string]pluginhost.Config) {
	for name := range plugins {
		reg.RegisterPlugin(name, func(pipeline.StageConfig) (pipeline.InlineHandler, error) {
			return pipeline.HandlerFunc(func(context.Context, *event.Event) ([]pipeline.Action, error) {
				return nil, errors.New("plugin stages run in the daemon")
			}), nil
		}, true)
	}
}
