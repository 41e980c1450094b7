// Command v2plugin offers only protocol version 2, which this daemon does not
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
		VersionedPlugins: map[int]plugin.PluginSet{2: sdk.VersionedPlugins(nop{})[sdk.ProtocolVersion]},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
