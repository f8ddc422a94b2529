//go:build linux

package runtime

import "syscall"

// mapNoReserve keeps a reservation from counting against the commit limit
// until its pages are touched.
const mapNoReserve = syscall.MAP_NORESERVE

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14).
const madvPopulateWrite = 23

// populate maps the pages of b in one system call instead of one page
// fault per page as instantiation writes the data segments (about 1 MB for
// a Go guest; the faults were most of a cold start on a VM where they are
// dear). Older kernels refuse the advice and the pages fault in as before.
func populate(b []byte) {
	if len(b) > 0 {
		_ = syscall.Madvise(b, madvPopulateWrite)
	}
}
