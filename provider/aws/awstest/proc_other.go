//go:build !linux

package awstest

import "syscall"

// childAttr: only Linux kills a child when its parent ends; elsewhere a
// killed emulator's kumo processes outlive it.
func childAttr() *syscall.SysProcAttr { return nil }
