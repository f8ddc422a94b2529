//go:build unix

package awstest

import "syscall"

// groupAttr puts a child in a process group of its own, which killGroup
// ends whole.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills the process group led by pid.
func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }
