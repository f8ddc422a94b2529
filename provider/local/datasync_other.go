//go:build !linux

package local

import "os"

// datasync writes f's data to disk (fsync where fdatasync is not offered).
func datasync(f *os.File) error { return f.Sync() }
