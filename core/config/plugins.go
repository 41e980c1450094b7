package config

import "time"

// Plugin declares one plugin: config.yaml's plugins.NAME block. Package
// pluginhost launches it (pluginhost.Config is this type) and checks it
// (pluginhost.Validate); here it is only its shape.
//
//	plugins:
//	  echo:
//	    path: bin/plugins/echo
//	    args: ["--verbose"]
//	    timeout: 5s
//	    concurrency: 4
//	    config: {greeting: hello}
type Plugin struct {
	// Path of the plugin executable, absolute or relative to the daemon's
	// working directory.
	Path string `koanf:"path" json:"path"`
	// Args are passed to the executable.
	Args []string `koanf:"args" json:"args,omitempty"`
	// Config is handed to the plugin's Configure at every process start.
	Config map[string]any `koanf:"config" json:"config,omitempty"`
	// Timeout is the deadline of one Handle or Deliver call when the caller
	// set none earlier; zero means pluginhost.DefaultTimeout.
	Timeout time.Duration `koanf:"timeout" json:"timeout,omitempty"`
	// Concurrency is how many sink deliveries to the plugin may be in flight
	// at once; zero means pluginhost.DefaultConcurrency.
	Concurrency int `koanf:"concurrency" json:"concurrency,omitempty"`
	// Ordered hands the plugin the sink jobs of one chat one at a time, in
	// order (outbox.HandleOptions.PerChatOrder); a job that fails holds
	// back the later ones of its chat until it is delivered or
	// dead-lettered.
	Ordered bool `koanf:"ordered" json:"ordered,omitempty"`
	// SHA256, when set, is the hex SHA-256 the executable must have;
	// go-plugin refuses to start a binary that does not match.
	SHA256 string `koanf:"sha256" json:"sha256,omitempty"`
}

// WebhookEndpoint is an endpoint in config.yaml (webhooks.endpoints).
// Package webhooks upserts it (webhooks.Declared is this type) and checks
// it (webhooks.ValidateDeclared). It is upserted at every start under its
// id: url, events, accounts, sources, description, headers, rate_limit,
// batch and ordered follow the file. Secret, when set, is the signing secret; otherwise one
// is generated once and kept (rotate it over REST to learn it). enabled:
// false disables the endpoint; true (the default) does not re-enable an
// endpoint its health disabled — an operator does that with PATCH.
type WebhookEndpoint struct {
	ID       string   `koanf:"id"`
	URL      string   `koanf:"url"`
	Events   []string `koanf:"events"`
	Accounts []string `koanf:"accounts"`
	// Sources: who caused the events it gets (phone, api, rule, plugin,
	// history); default ["*"], all of them.
	Sources     []string          `koanf:"sources"`
	Description string            `koanf:"description"`
	Headers     map[string]string `koanf:"headers"`
	Enabled     *bool             `koanf:"enabled"`
	Secret      string            `koanf:"secret"`
	RateLimit   float64           `koanf:"rate_limit"`
	// Batch: post several deliveries as one JSON array (default off).
	Batch bool `koanf:"batch"`
	// Ordered: deliver the events of one chat one at a time, in order
	// (default off).
	Ordered bool `koanf:"ordered"`
}
