//go:build !linux

package pluginhost

import "os/exec"

// dieWithHost has no parent-death signal to set outside Linux; the SDK's
// Serve notices its parent is gone and exits (see sdk.Serve).
func dieWithHost(*exec.Cmd) {}
