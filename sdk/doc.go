// Package sdk is what a Wildcat plugin imports. A plugin is a Go program that
// wildcatd launches, supervises and talks to over gRPC
// (github.com/hashicorp/go-plugin); its main function is one call:
//
//	func main() { sdk.Serve(&Echo{}) }
//
// The value given to Serve decides what the plugin can do:
//
//   - a Handler is called in line for each matching event and returns
//     Actions (reply, send, drop, tag, annotate, route);
//   - a Sink receives jobs from the daemon's durable outbox and answers OK,
//     Retry (optionally with a retry-after) or Fail (permanent);
//   - a Configurer receives the plugin's config block from config.yaml once
//     per process start, before any event;
//   - a Describer names the plugin, its version and the event kinds it wants.
//
// A value may be Handler and Sink at once. Events are the daemon's own
// event.Event type (aliased here as Event), the same shape webhooks and rules
// see: json.Marshal(ev) is the documented webhook body.
//
// Every call's context carries the Host — the daemon's services for plugins:
// send a message, stream a message's media, store and read blobs, a private
// key-value store, look up a stored message, link archived media to its
// message — and a logger whose lines appear
// in the daemon's log under the plugin's name:
//
//	host := sdk.HostFrom(ctx)
//	sdk.Logger(ctx).Info("sending", "to", chat)
//
// Panics in a Handler, Sink or Configurer are recovered, logged with their
// stack and returned to the daemon as errors; the plugin process keeps
// serving. Write unit tests with the sdk/plugintest package, which runs a
// plugin in-process over the real protocol against an in-memory Host.
//
// # Compatibility
//
// The handshake's magic cookie (MagicCookieKey/MagicCookieValue) never
// changes. The wire protocol is wildcat.plugin.v1 (sdk/proto), served as
// go-plugin protocol version 1; a future v2 will be served next to it, so a
// plugin built with this SDK keeps working with newer daemons.
package sdk
