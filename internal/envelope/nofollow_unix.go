//go:build unix

package envelope

import "syscall"

const noFollow = syscall.O_NOFOLLOW
