package main

import (
	"os/exec"
	"syscall"
)

// setChildAttrs puts the child in its own process group, so a Ctrl-C on the
// terminal reaches only the bench, which then stops its children in order,
// and has the kernel kill it if the bench dies without cleaning up.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
