// Package pluginv1 is the versioned wire contract between wildcatd and its
// plugins: the protobuf messages and gRPC services of wildcat.plugin.v1
// (generated from the .proto files next to this file; regenerate with
// `make proto`), plus the conversions between the protobuf Event and the
// daemon's own event.Event.
//
// Plugin authors do not need this package: the sdk package wraps it in plain
// Go types. It is exported for the daemon's plugin host and for plugins
// written against the raw protocol (in Go or another language).
//
// The protobuf Event is one rendering of event.Event, not a second model:
// EventFromCore and EventToCore convert every field, and a round-trip test
// fills every field of both types by reflection so that a field added to one
// side only fails the build's tests.
package pluginv1
