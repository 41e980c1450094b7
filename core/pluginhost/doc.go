// Package pluginhost launches, supervises and calls the daemon's plugins:
// Go binaries built with the sdk package, declared in config.yaml under
// plugins.NAME (see Config) and spoken to over gRPC with
// github.com/hashicorp/go-plugin.
//
// A Manager starts every declared plugin with mutual TLS (sdk.HostTLS) and
// Managed, refusing with a clear error a binary that is missing, is not a
// plugin, speaks another protocol version or rejects its config. It then supervises each process:
// a gRPC health check every HealthInterval, and a rebuilt go-plugin client
// (go-plugin cannot restart one) with exponential backoff whenever the
// process exits or fails its checks. Plugin stderr — hclog JSON from the SDK,
// panics, anything else — lands in the daemon's slog log with plugin=NAME.
//
// Get returns a *Plugin handle, stable across restarts, with what the
// pipeline calls: Handle for inline stages (actions resolved against the
// event: a reply's recipient, quote and blob-backed media filled in) and
// Deliver for sink jobs (ok / retry with optional retry-after / permanent
// failure) and DeliverBatch for several sink jobs in one call (plugin
// protocol version 2, negotiated in the handshake; a version-1 plugin gets
// one Deliver per job), each job with its own outcome. Each call has a
// deadline (Config.Timeout, default 5 s). A call cut by its deadline
// returns context.DeadlineExceeded promptly and the process stays in use:
// gRPC serves calls concurrently, so one stuck handler
// does not block the others; the stuck goroutine is the plugin's to end
// (the SDK hands it the cancelled context). While a plugin restarts, calls
// fail at once with ErrUnavailable: inline stages follow their onError
// policy and sink jobs stay in the outbox for their next attempt.
//
// The Host service plugins call back into is served per plugin over
// go-plugin's GRPCBroker: SendMessage (Sender), FetchMedia (MediaFetcher),
// GetMessage (MessageGetter) — narrow interfaces the daemon supplies — and
// PutBlob/GetBlob (GridFS bucket "media") and a key-value store (collection
// kv, _id "plugin:{name}:{key}") implemented here on MongoDB.
package pluginhost
