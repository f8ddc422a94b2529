package awstest

import "syscall"

// childAttr makes the kernel kill a kumo process when the thread that
// started it ends, so that an emulator killed by SIGKILL leaves no kumo
// running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
