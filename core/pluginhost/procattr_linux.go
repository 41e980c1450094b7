package pluginhost

import (
	"os/exec"
	"syscall"
)

// dieWithHost makes the kernel kill the plugin process when wildcatd dies,
// even by SIGKILL, when no shutdown code runs (PR_SET_PDEATHSIG). The
// signal follows the death of the OS thread that started the process; the
// Go runtime ends threads only under goroutines that exit while locked to
// one, which nothing here does. The SDK's Serve also watches for its parent
// to change (see sdk.Serve), which covers the rest and other systems.
func dieWithHost(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
