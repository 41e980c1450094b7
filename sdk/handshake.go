package sdk

import (
	plugin "github.com/hashicorp/go-plugin"
)

const (
	// MagicCookieKey and MagicCookieValue are the go-plugin handshake: the
	// daemon sets the variable in the plugin's environment and Serve refuses
	// to run without it (so running a plugin binary by hand prints a hint
	// instead of hanging). They are a guard against accidents, not security,
	// and they never change — changing them would orphan every plugin built
	// before.
	MagicCookieKey   = "WILDCAT_PLUGIN"
	MagicCookieValue = "7f1e9a2c54b8d6f03ae5c1b94d2867e0b3f5a91c"

	// ProtocolVersion is the newest plugin protocol this SDK speaks. Version
	// 2 adds batch delivery (the DeliverBatch call) to version 1; both are
	// the services of wildcat.plugin.v1. Hosts and plugins negotiate the
	// version through go-plugin's VersionedPlugins — the highest both offer
	// wins — so a plugin built with an older SDK (version 1 only) keeps
	// working with a newer daemon, which then delivers one job per call.
	ProtocolVersion = 2

	// MinProtocolVersion is the oldest plugin protocol this SDK speaks.
	MinProtocolVersion = 1

	// PluginKey is the name under which the protocol's plugin is dispensed.
	PluginKey = "wildcat"

	// LogLevelEnv is set by the daemon to its own log level (trace, debug,
	// info, warn, error) so a plugin does not ship lines that would be
	// discarded anyway.
	LogLevelEnv = "WILDCAT_PLUGIN_LOG_LEVEL"

	// HostPIDEnv is set by the daemon to its process id. Serve exits once
	// its parent process is no longer that one: the daemon is gone, even if
	// it died before the plugin got to look at its parent.
	HostPIDEnv = "WILDCAT_PLUGIN_HOST_PID"
)

// Handshake is the go-plugin handshake of Wildcat plugins. Its
// ProtocolVersion is only a default: the versions actually offered are those
// of VersionedPlugins.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// VersionedPlugins is the go-plugin plugin set per protocol version. Serve
// uses it with the plugin's value; hosts use it with impl nil (the host side
// never touches impl) and dispense PluginKey to get a *PluginClient.
func VersionedPlugins(impl any) map[int]plugin.PluginSet {
	set := make(map[int]plugin.PluginSet, ProtocolVersion-MinProtocolVersion+1)
	for v := MinProtocolVersion; v <= ProtocolVersion; v++ {
		set[v] = plugin.PluginSet{PluginKey: &grpcPlugin{impl: impl, version: v}}
	}
	return set
}
