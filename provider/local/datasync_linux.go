package local

import (
	"os"
	"syscall"
)

// datasync writes f's data to disk, and its metadata only where needed to
// read the data back (fdatasync, as bbolt syncs its file).
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
