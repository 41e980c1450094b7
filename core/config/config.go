// Package config loads, layers and validates wildcatd's configuration.
//
// Sources are applied in order — built-in defaults, the YAML file, WILDCAT_*
// environment variables, then command-line flags — so an operator can ship one
// file and override single keys per host. Every key is declared once, as a
// field of Config; the environment variable, the flag and the README table are
// all derived from that declaration so they cannot drift apart.
package config

import (
	"time"

	"github.com/wildcathub/wildcat/core/pipeline"
)

// Config is the whole daemon configuration. Field tags:
//
//	koanf:   the key in config.yaml (nested structs add a dotted prefix)
//	doc:     one line for the README and --help
type Config struct {
	DataDir         string        `koanf:"data_dir" doc:"Directory for local state: the embedded store's SQLite files and the data-directory lock."`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout" doc:"How long a graceful stop may take to drain in-flight work before it is cut off."`

	HTTP    HTTP    `koanf:"http"`
	MongoDB MongoDB `koanf:"mongodb"`
	Log     Log     `koanf:"log"`
	Media   Media   `koanf:"media"`
	Send    Send    `koanf:"send"`

	Accounts []Account `koanf:"accounts" doc:"Accounts created at start when missing: a list of {id, driver, name}; driver is whatsapp or sim. Existing accounts keep their state; accounts made over REST need no entry."`

	Pipeline []pipeline.StageConfig `koanf:"pipeline" doc:"The stages every stored event passes through, in order: a list of {name, builtin or sink, config, match, mode, timeout, onError}. Builtins: tag, annotate, reply, drop, log. Empty: events are only stored."`
}

// Account declares one account in config.yaml. Declaring is only creating:
// an account that already exists is left as it is, and removing a
// declaration does not delete the account.
type Account struct {
	ID     string `koanf:"id"`
	Driver string `koanf:"driver"`
	Name   string `koanf:"name"`
}

// HTTP configures the REST API listener.
type HTTP struct {
	Addr         string `koanf:"addr" doc:"Listen address of the REST API (host:port). Loopback by default: the API has no authentication yet."`
	MaxBodyBytes int64  `koanf:"max_body_bytes" doc:"Largest request body accepted, in bytes; larger bodies get 413. Media uploads and sends with inline media are bounded by media.max_bytes instead."`
	// IdempotencyTTL bounds how long an Idempotency-Key answer is replayed.
	IdempotencyTTL time.Duration `koanf:"idempotency_ttl" doc:"How long the first answer to a request with an Idempotency-Key is kept and replayed to retries."`
}

// MongoDB selects the store: a real MongoDB given its URI, or the embedded engine.
type MongoDB struct {
	URI            string `koanf:"uri" doc:"MongoDB connection string (mongodb:// or mongodb+srv://). Empty starts the embedded engine in data_dir."`
	Database       string `koanf:"database" doc:"Database name that holds every Wildcat collection."`
	EmbeddedListen string `koanf:"embedded_listen" doc:"Also expose the embedded engine on this TCP address (host:port) for mongosh and other daemons. Empty keeps it private. Ignored when uri is set."`
}

// Log configures the process log.
type Log struct {
	Level  string `koanf:"level" doc:"Minimum level: debug, info, warn or error."`
	Format string `koanf:"format" doc:"text, json, or auto (text on a terminal, JSON otherwise)."`
}

// Media configures stored media (GridFS bucket media) and fetching media by URL.
type Media struct {
	MaxBytes          int64         `koanf:"max_bytes" doc:"Largest media file accepted (upload, inline base64 or fetched by URL), in bytes; larger gets 413."`
	FetchAllowPrivate bool          `koanf:"fetch_allow_private" doc:"Let media URLs reach loopback, private, link-local and other non-public addresses. Off: such URLs are refused (SSRF guard)."`
	FetchTimeout      time.Duration `koanf:"fetch_timeout" doc:"How long fetching one media URL may take, redirects and body included."`
}

// Send configures the outgoing-message workers.
type Send struct {
	Workers   int `koanf:"workers" doc:"Messages sent concurrently by this daemon; more wait in the queue."`
	QueueSize int `koanf:"queue_size" doc:"Accepted messages waiting for a worker; when full, POST /v1/accounts/{id}/messages answers 503."`
}

// Defaults returns a configuration that runs without editing: loopback API,
// embedded store under ./data.
func Defaults() Config {
	return Config{
		DataDir:         "data",
		ShutdownTimeout: 15 * time.Second,
		HTTP: HTTP{
			Addr:           "127.0.0.1:8080",
			MaxBodyBytes:   1 << 20,
			IdempotencyTTL: 24 * time.Hour,
		},
		MongoDB: MongoDB{
			Database: "wildcat",
		},
		Log: Log{
			Level:  "info",
			Format: "auto",
		},
		Media: Media{
			MaxBytes:     64 << 20,
			FetchTimeout: 30 * time.Second,
		},
		Send: Send{
			Workers:   4,
			QueueSize: 1000,
		},
	}
}

// Embedded reports whether the daemon runs its own store engine.
func (c *Config) Embedded() bool { return c.MongoDB.URI == "" }
