package sdk

import (
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
)

// Serve runs p as a Wildcat plugin and returns when the daemon stops it.
// Call it from main and nothing else:
//
//	func main() { sdk.Serve(&MyPlugin{}) }
//
// p must implement Handler, Sink or both; it may also implement Configurer
// and Describer. Serve speaks gRPC only, on protocol version 1, with the
// fixed handshake (Handshake). Run by hand, outside the daemon, the binary
// prints a short explanation and exits with status 1.
func Serve(p any) {
	if len(capabilities(p)) == 0 {
		fmt.Fprintf(os.Stderr, "sdk.Serve: %T implements neither sdk.Handler nor sdk.Sink; it has nothing to serve\n", p)
		os.Exit(1)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: VersionedPlugins(p),
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           rootLogger(),
	})
}

// rootLogger writes hclog JSON to stderr, which go-plugin parses on the
// daemon's side into its log with level and fields intact.
var rootLogger = sync.OnceValue(func() hclog.Logger {
	level := hclog.LevelFromString(os.Getenv(LogLevelEnv))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Level:      level,
		Output:     os.Stderr,
		JSONFormat: true,
	})
})
