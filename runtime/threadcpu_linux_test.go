package runtime

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time of the calling thread (lock the goroutine to it).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
