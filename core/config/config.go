// Package config loads, layers and validates wildcatd's configuration.
//
// Sources are applied in order — built-in defaults, the YAML file, WILDCAT_*
// environment variables, then command-line flags — so an operator can ship one
// file and override single keys per host. Every key is declared once, as a
// field of Config; the environment variable, the flag and the README table are
// all derived from that declaration so they cannot drift apart.
package config

import "time"

// Config is the whole daemon configuration. Field tags:
//
//	koanf:   the key in config.yaml (nested structs add a dotted prefix)
//	doc:     one line for the README and --help
type Config struct {
	DataDir         string        `koanf:"data_dir" doc:"Directory for local state: the embedded SQLite database (wildcat.db, locked while a daemon runs) and its media files (media/)."`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout" doc:"How long a graceful stop may take to drain in-flight work before it is cut off."`

	HTTP    HTTP    `koanf:"http"`
	MongoDB MongoDB `koanf:"mongodb"`
	Cluster Cluster `koanf:"cluster"`
	Log     Log     `koanf:"log"`
	Media   Media   `koanf:"media"`
	Send    Send    `koanf:"send"`
	Outbox  Outbox  `koanf:"outbox"`
	// Webhooks: see the README's Webhooks section.
	Webhooks Webhooks `koanf:"webhooks"`
	// Encryption: see the README's "Encryption at rest".
	Encryption Encryption `koanf:"encryption"`
	// Rules: limits of the JavaScript rules (see the README's rules section).
	Rules Rules `koanf:"rules"`
	// Drivers: settings of the session drivers.
	Drivers Drivers `koanf:"drivers"`

	Accounts []Account `koanf:"accounts" doc:"Accounts created at start when missing: a list of {id, driver, name, proxy}; driver is whatsapp or sim; proxy is the account's own socks5://, http:// or https:// proxy, set again at every start when given (a running account reconnects through it). Existing accounts keep their state; accounts made over REST need no entry."`

	RuleDirs []string `koanf:"rule_dirs" doc:"Directories rule files may be loaded from when the pipeline is replaced over REST (POST /v1/pipeline/reload with stages); a rules glob reaching outside them is refused. Empty: the directories of the rules globs in this file's pipeline."`

	Pipeline []StageConfig `koanf:"pipeline" doc:"The stages every stored event passes through, in order: a list of {name, one of rules/plugin/sink/builtin, config, match, mode, timeout, onError}. Builtins: tag, annotate, reply, drop, log; sink webhooks feeds the webhook endpoints. Re-read when the file changes. Empty: events are only stored."`

	Plugins map[string]Plugin `koanf:"plugins" doc:"Plugin binaries the daemon launches and supervises: a map of NAME to {path, args, config, timeout, concurrency, ordered, sha256}. A stage with plugin: NAME calls it inline or feeds it through the outbox (mode: sink)."`
}

// Account declares one account in config.yaml. Declaring is creating: an
// account that already exists is left as it is — but for a declared
// proxy, which the config keeps in force — and removing a declaration does
// not delete the account.
type Account struct {
	ID     string `koanf:"id"`
	Driver string `koanf:"driver"`
	Name   string `koanf:"name"`
	Proxy  string `koanf:"proxy"`
}

// HTTP configures the REST API listener.
type HTTP struct {
	Addr         string `koanf:"addr" doc:"Listen address of the REST API (host:port). An address beyond loopback needs http.auth on."`
	MaxBodyBytes int64  `koanf:"max_body_bytes" doc:"Largest request body accepted, in bytes; larger bodies get 413. Media uploads and sends with inline media are bounded by media.max_bytes instead."`
	// IdempotencyTTL bounds how long an Idempotency-Key answer is replayed.
	IdempotencyTTL time.Duration `koanf:"idempotency_ttl" doc:"How long the first answer to a request with an Idempotency-Key is kept and replayed to retries."`

	// API keys, TLS and proxies (see the README's Security section).
	Auth           bool     `koanf:"auth" doc:"Require an API key (Authorization: Bearer wck_…) on every route but /healthz and /readyz. The first start creates an admin key in data_dir/admin.key. false is for local development and refuses a non-loopback http.addr."`
	AdminKey       string   `koanf:"admin_key" doc:"Token (wck_<id>_<64 hex digits>) of the admin key the first start creates, instead of a random one: for provisioning (prefer WILDCAT_HTTP_ADMIN_KEY). Ignored once any key exists."`
	AuthSecret     string   `koanf:"auth_secret" doc:"Server secret the stored key hashes (HMAC-SHA256) are made with; set the same on every daemon sharing a MongoDB database (prefer WILDCAT_HTTP_AUTH_SECRET). Empty: data_dir/server.secret, created at first start."`
	MetricsAuth    string   `koanf:"metrics_auth" doc:"Who may read /metrics: open (no key), key (an admin key), or auto: open when http.addr is loopback, key otherwise."`
	TLSCertFile    string   `koanf:"tls_cert_file" doc:"PEM certificate (chain) to serve HTTPS with, together with http.tls_key_file; re-read when the files change. Empty: plain HTTP (behind a TLS proxy, or on loopback)."`
	TLSKeyFile     string   `koanf:"tls_key_file" doc:"PEM private key of http.tls_cert_file."`
	TrustedProxies []string `koanf:"trusted_proxies" doc:"Proxies (CIDRs or addresses) whose X-Forwarded-For or Forwarded header names the client address (logged as remote, used by rate limits). Empty: the peer address, headers ignored."`
	// RateLimits: see the README's "Rate limits and send pacing".
	RateLimits RateLimits `koanf:"rate_limits"`
	// Hosts, AllowedOrigins and ReadTimeout: see the README's Hardening part.
	Hosts          []string      `koanf:"hosts" doc:"Host names (the Host header, port ignored) the API answers to besides localhost, IP addresses, the machine's host name and the name in http.addr, e.g. [wildcat.internal] behind a proxy or on a LAN; other names get 421 (DNS-rebinding guard). [\"*\"] accepts any."`
	AllowedOrigins []string      `koanf:"allowed_origins" doc:"Web origins (scheme://host[:port]) whose pages may call the API from a browser, with CORS; requests from other sites' pages get 403."`
	ReadTimeout    time.Duration `koanf:"read_timeout" doc:"How long a client may take to send one whole request, body included; a slower one is cut (the event stream and responses are not limited by it). Media uploads and sends with inline media have http.upload_timeout instead."`
	UploadTimeout  time.Duration `koanf:"upload_timeout" doc:"How long a client may take to send one request to a route that takes media (POST /v1/media, sends with inline media); raise it for large files over slow links."`
}

// MongoDB selects the store: MongoDB given its URI, else the embedded
// SQLite engine in data_dir.
type MongoDB struct {
	URI          string `koanf:"uri" doc:"MongoDB connection string (mongodb:// or mongodb+srv://), for several daemons sharing one database. Empty: the embedded SQLite engine, data_dir/wildcat.db."`
	Database     string `koanf:"database" doc:"Database name that holds every Wildcat collection."`
	EmbeddedSync string `koanf:"embedded_sync" doc:"Durability of the embedded SQLite engine: full flushes every commit to the disk before answering its writers (stored events survive a power loss; the write-ahead log is flushed beside the writer, which commits the next group meanwhile); normal leaves commits to the operating system until a checkpoint (they survive the daemon's crash or kill -9, not the machine's; synchronous=NORMAL), for faster writes. Ignored when uri is set."`
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
	QueueSize int `koanf:"queue_size" doc:"Accepted messages waiting for a worker or for their paced slot; when full, POST /v1/accounts/{id}/messages answers 503."`
	// Pacing: see the README's "Rate limits and send pacing".
	Pacing Pacing `koanf:"pacing"`
}

// Outbox configures the durable delivery queue that feeds sink stages.
type Outbox struct {
	Retries       []time.Duration `koanf:"retries" doc:"Waits before each retry of a failed delivery (the first attempt is immediate); each wait is drawn with full jitter below it. Default 5s, 30s, 2m, 10m, 30m, 1h."`
	RetryEvery    time.Duration   `koanf:"retry_every" doc:"Wait between retries once the retries list is used up."`
	MaxAge        time.Duration   `koanf:"max_age" doc:"A job still failing this long after its first attempt is moved to the dead letters (replayable with POST /v1/deliveries/replay)."`
	MaxRetryAfter time.Duration   `koanf:"max_retry_after" doc:"Upper bound on a sink's own Retry-After."`
	Concurrency   int             `koanf:"concurrency" doc:"Deliveries in flight per sink target (each webhook endpoint is its own target); a sink that takes batches (the webhook plugin) gets them in calls of up to 64. The webhook plugin's endpoint_concurrency bounds the HTTP requests to one endpoint separately."`
	PollInterval  time.Duration   `koanf:"poll_interval" doc:"How often an idle target looks for retries coming due and for jobs enqueued by other daemons."`
	Lease         time.Duration   `koanf:"lease" doc:"How long a claimed job is held before another daemon may take it over; a running delivery extends it."`
	Retention     time.Duration   `koanf:"retention" doc:"How long delivered jobs stay listable in GET /v1/deliveries before they are purged."`
}

// Cluster configures several daemons on one MongoDB database: account
// leases, instances and forwarding. Ignored on the embedded engine.
type Cluster struct {
	AdvertiseURL  string        `koanf:"advertise_url" doc:"Base URL (http://host:port) at which the other daemons sharing the MongoDB database reach this one's REST API, to forward calls that need an account's session. Empty: derived from http.addr (the machine's host name when it listens on all interfaces)."`
	LeaseTTL      time.Duration `koanf:"lease_ttl" doc:"How long an account's lease (and a daemon's heartbeat) lasts without renewal; a dead daemon's accounts move after at most lease_ttl + renew_interval. Set the same on every daemon."`
	RenewInterval time.Duration `koanf:"renew_interval" doc:"How often a daemon renews its leases, heartbeats and rebalances; below half of cluster.lease_ttl."`
	MaxMoves      int           `koanf:"max_moves" doc:"Accounts one daemon hands to another per renewal when the daemons change (a join), so that a new daemon does not connect every phone at once; taking over a dead daemon's accounts is not limited."`
	EventsPoll    time.Duration `koanf:"events_poll" doc:"How often GET /v1/events looks in the store for events of accounts other daemons run (the MongoDB servers without change streams)."`
}

// Webhooks configures webhook delivery: the endpoints' registry in the
// daemon and the webhook plugin that makes the requests.
type Webhooks struct {
	AllowPrivateTargets bool              `koanf:"allow_private_targets" doc:"Let webhook URLs reach loopback, private, link-local and metadata addresses (local receivers, tests). Off: such URLs are refused at registration and again at every delivery (SSRF guard)."`
	Timeout             time.Duration     `koanf:"timeout" doc:"How long one webhook attempt may take: connecting, sending and the receiver's answer. The webhook plugin's own plugins.NAME.timeout must be longer."`
	DisableAfter        time.Duration     `koanf:"disable_after" doc:"A webhook endpoint whose every attempt failed for this long is disabled and a webhook.disabled event is sent to the endpoints subscribed to it."`
	Plugin              string            `koanf:"plugin" doc:"The declared plugin (plugins.NAME) that sends the webhook requests: the webhook plugin built into bin/plugins/webhook."`
	SyncInterval        time.Duration     `koanf:"sync_interval" doc:"How often webhook endpoints created, changed or deleted by other daemons sharing the database are picked up."`
	Endpoints           []WebhookEndpoint `koanf:"endpoints" doc:"Webhook endpoints upserted at every start under a stable id: a list of {id, url, events, accounts, sources, description, headers, enabled, secret, rate_limit, batch, ordered}. Endpoints made over REST need no entry."`
}

// Encryption configures encryption at rest (package sealing). No key
// configured: off.
type Encryption struct {
	KeyFile   string `koanf:"key_file" doc:"File of encryption keys, one id:base64key a line (32 random bytes each, base64: openssl rand -base64 32). Any key here or in encryption.keys turns encryption at rest on; run wildcatd store reencrypt after turning it on or rotating."`
	Keys      string `koanf:"keys" doc:"Encryption keys as id:base64key, separated by commas; meant for WILDCAT_ENCRYPTION_KEYS rather than the file. Read after encryption.key_file's."`
	ActiveKey string `koanf:"active_key" doc:"Id of the key that encrypts what is written; the others only decrypt. Empty: the last key listed. Rotate by adding a key and making it active."`
}

// Drivers configures the session drivers.
type Drivers struct {
	WhatsApp WhatsAppDriver `koanf:"whatsapp"`
	Sim      SimDriver      `koanf:"sim"`
}

// WhatsAppDriver configures the whatsmeow driver.
type WhatsAppDriver struct {
	Proxy string `koanf:"proxy" doc:"Proxy for the WhatsApp connection and media of every whatsapp account without its own (an account's proxy field): socks5://, http:// (CONNECT) or https:// URL with host and port, user:password@ allowed (prefer WILDCAT_DRIVERS_WHATSAPP_PROXY for a password). Read at start. Empty: direct."`
}

// Rules configures what every rules stage's JavaScript may use.
type Rules struct {
	MemoryLimit int64 `koanf:"memory_limit" doc:"Heap size of the daemon, in bytes, above which running rule calls are cut (the event follows the stage's onError) and idle rule runtimes, with their globals, are discarded. Checked before each rule call and every 5 ms while one runs."`
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
			Auth:           true,
			MetricsAuth:    "auto",
			RateLimits:     defaultRateLimits(),
			ReadTimeout:    time.Minute,
			UploadTimeout:  10 * time.Minute,
		},
		MongoDB: MongoDB{
			Database:     "wildcat",
			EmbeddedSync: "full",
		},
		Log: Log{
			Level:  "info",
			Format: "auto",
		},
		Media: Media{
			MaxBytes:     64 << 20,
			FetchTimeout: 30 * time.Second,
		},
		Rules:   Rules{MemoryLimit: 512 << 20},
		Drivers: Drivers{Sim: SimDriver{PairDelay: 3 * time.Second}},
		Send: Send{
			Workers:   4,
			QueueSize: 1000,
			Pacing:    defaultPacing(),
		},
		Outbox: Outbox{
			Retries: []time.Duration{
				5 * time.Second, 30 * time.Second, 2 * time.Minute,
				10 * time.Minute, 30 * time.Minute, time.Hour,
			},
			RetryEvery:    3 * time.Hour,
			MaxAge:        72 * time.Hour,
			MaxRetryAfter: 6 * time.Hour,
			// A batch-capable sink (the webhook plugin) gets what is in
			// flight as one call: 4 made every batch tiny.
			Concurrency:  64,
			PollInterval: time.Second,
			Lease:        30 * time.Second,
			Retention:    7 * 24 * time.Hour,
		},
		Cluster: Cluster{
			LeaseTTL:      10 * time.Second,
			RenewInterval: 3 * time.Second,
			MaxMoves:      8,
			EventsPoll:    time.Second,
		},
		Webhooks: Webhooks{
			Timeout:      15 * time.Second,
			DisableAfter: 120 * time.Hour,
			Plugin:       "webhook",
			SyncInterval: 10 * time.Second,
		},
	}
}

// Embedded reports whether the daemon runs its own store engine.
func (c *Config) Embedded() bool { return c.MongoDB.URI == "" }

// SimDriver tunes the simulator driver.
type SimDriver struct {
	NetworkURL string        `koanf:"network_url" doc:"URL (http://host:port) of a sim network served by wildcatd sim serve, which this daemon's sim accounts connect to instead of its own in-process network, so that several daemons share one simulated WhatsApp (one-to-one messages and receipts). Empty: the in-process network."`
	PairDelay  time.Duration `koanf:"pair_delay" doc:"How long after a sim account starts pairing its simulated phone scans the QR code (or types the pairing code); until then GET /v1/accounts/{id}/qr shows the codes."`
}
