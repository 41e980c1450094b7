// Package configcheck checks the parts of the configuration that only the
// packages using them can judge: the MongoDB connection string (the
// driver's parser), the webhook endpoints (package webhooks), the plugin
// declarations (package pluginhost) and the pipeline (compiled by package
// pipeline against the stage kinds on offer).
//
// Package config is a leaf those packages import, so it cannot make these
// checks itself; wildcatd's commands load the configuration with Load here
// and the daemon calls Settings and Pipeline. Every problem is a
// *config.Error naming the key, like config's own, so a command exits 2
// with one line whichever package found it.
package configcheck

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/wildcathub/wildcat/core/apikeys"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/netproxy"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/s3media"
	"github.com/wildcathub/wildcat/core/sealing"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// Load is config.Load followed by Check: the whole configuration, checked
// as far as it can be before anything runs.
func Load(src config.Source) (*config.Loaded, error) {
	l, err := config.Load(src)
	if err != nil {
		return nil, err
	}
	if err := Check(&l.Config); err != nil {
		return nil, err
	}
	return l, nil
}

// Check runs Settings, then Pipeline against the static catalog. It
// returns the first problem as a *config.Error.
func Check(c *config.Config) error {
	if err := Settings(c); err != nil {
		return err
	}
	return Pipeline(c, nil)
}

// Keyring reads the encryption keys (encryption.*); a problem is a
// *config.Error naming the key. nil when no key is configured.
func Keyring(c *config.Config) (*sealing.Keyring, error) {
	kr, err := sealing.Load(c.Encryption.KeyFile, c.Encryption.Keys, c.Encryption.ActiveKey)
	if err != nil {
		var ce *sealing.ConfigError
		if errors.As(err, &ce) {
			return nil, &config.Error{Key: ce.Key, Problem: ce.Problem}
		}
		return nil, &config.Error{Key: "encryption", Problem: err.Error()}
	}
	return kr, nil
}

// Settings checks mongodb.uri, webhooks.endpoints, plugins and the
// encryption keys.
func Settings(c *config.Config) error {
	if err := mongoURI(c.MongoDB.URI); err != nil {
		return &config.Error{Key: "mongodb.uri", Problem: err.Error()}
	}
	if c.HTTP.AdminKey != "" {
		if _, _, ok := apikeys.ParseToken(c.HTTP.AdminKey); !ok {
			return &config.Error{Key: "http.admin_key", Problem: "is not a key: write wck_<id>_<64 hex digits>, id 1-32 of a-z, 0-9 and -"}
		}
	}
	if c.HTTP.TLSCertFile != "" && c.HTTP.TLSKeyFile != "" {
		if _, err := tls.LoadX509KeyPair(c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile); err != nil {
			return &config.Error{Key: "http.tls_cert_file", Problem: "does not load with http.tls_key_file: " + err.Error()}
		}
	}
	if err := webhooks.ValidateDeclared(c.Webhooks.Endpoints); err != nil {
		var fe *webhooks.FieldError
		if errors.As(err, &fe) {
			return &config.Error{Key: fe.Field, Problem: fe.Problem}
		}
		return &config.Error{Key: "webhooks.endpoints", Problem: err.Error()}
	}
	if err := pluginhost.ValidateAll(c.Plugins); err != nil {
		var pe *pluginhost.ConfigError
		if errors.As(err, &pe) {
			return &config.Error{Key: pe.Key, Problem: pe.Problem}
		}
		return &config.Error{Key: "plugins", Problem: err.Error()}
	}
	if err := mediaArchiveS3(c.Plugins); err != nil {
		return err
	}
	if _, err := Keyring(c); err != nil {
		return err
	}
	if p := c.Drivers.WhatsApp.Proxy; p != "" {
		if _, err := netproxy.Parse(p); err != nil {
			return &config.Error{Key: "drivers.whatsapp.proxy", Problem: err.Error()}
		}
	}
	for i, a := range c.Accounts {
		if a.Proxy == "" {
			continue
		}
		if _, err := netproxy.Parse(a.Proxy); err != nil {
			return &config.Error{Key: fmt.Sprintf("accounts[%d].proxy", i), Problem: err.Error()}
		}
	}
	return nil
}

// mediaArchiveS3 checks the media archive's s3 block, which the daemon
// reads too (it serves GET /v1/media from that bucket). The plugin is
// declared as "mediaarchive" (daemon.MediaArchiveTarget).
func mediaArchiveS3(plugins map[string]pluginhost.Config) error {
	pc, ok := plugins["mediaarchive"]
	if !ok {
		return nil
	}
	if _, err := s3media.FromArchiveConfig(pc.Config); err != nil {
		var ce *s3media.ConfigError
		if errors.As(err, &ce) {
			return &config.Error{Key: "plugins.mediaarchive.config." + ce.Key, Problem: ce.Problem}
		}
		return &config.Error{Key: "plugins.mediaarchive.config.s3", Problem: err.Error()}
	}
	return nil
}

// Pipeline compiles the pipeline against reg, the stage kinds the daemon
// offers; nil means the static catalog (builtins, rules, the webhooks sink
// and the declared plugins). The first problem is a *config.Error whose
// key names the stage, e.g. `pipeline[1] "x"`, so the one-line exit-2
// message says which stage.
func Pipeline(c *config.Config, reg *pipeline.Registry) error {
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
		return &config.Error{Key: "pipeline", Problem: err.Error()}
	}
	problem := se.Problem
	if n := countStageErrors(err); n > 1 {
		problem += fmt.Sprintf(" (and %d more problems)", n-1)
	}
	return &config.Error{Key: fmt.Sprintf("pipeline[%d] %q", se.Index, se.Name), Problem: problem}
}

func countStageErrors(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
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
