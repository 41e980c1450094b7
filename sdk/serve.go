package sdk

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Serve runs p as a Wildcat plugin and returns when the daemon stops it.
// Call it from main and nothing else:
//
//	func main() { sdk.Serve(&MyPlugin{}) }
//
// p must implement Handler, Sink or both; it may also implement Configurer
// and Describer. Serve speaks gRPC only, on protocol version 1, with the
// fixed handshake (Handshake). It exits when the daemon that started it
// is gone, however it died. Run by hand, outside the daemon, the binary
// prints a short explanation and exits with status 1.
func Serve(p any) {
	if len(capabilities(p)) == 0 {
		fmt.Fprintf(os.Stderr, "sdk.Serve: %T implements neither sdk.Handler nor sdk.Sink; it has nothing to serve\n", p)
		os.Exit(1)
	}
	tlsProvider, err := daemonTLS()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sdk.Serve: %v\n", err)
		os.Exit(1)
	}
	go exitWithHost(hostPID(), hostCheckInterval, func() {
		rootLogger().Warn("wildcatd, which started this plugin, is gone; exiting")
		os.Exit(1)
	})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: VersionedPlugins(p),
		GRPCServer:       grpcServer,
		Logger:           rootLogger(),
		TLSProvider:      tlsProvider,
	})
}

// grpcServer is go-plugin's default server taking batch calls of up to
// twice MaxBatchBytes (gRPC's default limit is 4 MiB).
func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(2*MaxBatchBytes))...)
}

// hostCheckInterval is how often Serve checks that its host still runs.
const hostCheckInterval = 500 * time.Millisecond

// hostPID is the process the plugin serves: the daemon's pid from
// HostPIDEnv, or (started by an older daemon) its parent at start.
func hostPID() int {
	if pid, err := strconv.Atoi(os.Getenv(HostPIDEnv)); err == nil && pid > 0 {
		return pid
	}
	return os.Getppid()
}

// exitWithHost calls gone once the process's parent is no longer ppid: the
// host died — even by SIGKILL, when it could not stop its plugins — and the
// plugin was handed to init or a subreaper. A plugin has nobody to serve
// then, and must not live on. (On Linux the host also sets a parent-death
// signal; this check covers what that misses, and other systems.)
func exitWithHost(ppid int, every time.Duration, gone func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if os.Getppid() != ppid {
			gone()
			return
		}
		<-t.C
	}
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
