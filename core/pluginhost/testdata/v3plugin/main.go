// Command v3plugin offers only protocol version 3, which this daemon does not
// speak: the host must refuse it with a clear error.
package main

import (
	"context"

	plugin "github.com/hashicorp/go-plugin"

	"github.com/wildcathub/wildcat/sdk"
)

type nop struct{}

func (nop) Handle(context.Context, *sdk.Event) ([]sdk.Action, error) { return nil, nil }

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{3: sdk.VersionedPlugins(nop{})[sdk.ProtocolVersion]},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
