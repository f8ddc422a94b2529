//go:build linux

package runtime

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

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

// zeroWritten zeroes b, a page-aligned prefix of a private anonymous
// mapping. Resident pages (mincore) are cleared in place; the others are
// dropped with MADV_DONTNEED, which also discards any copy in swap, so they
// read zero too without being faulted in first. If a call fails it clears
// all of b.
func zeroWritten(b []byte) {
	page := os.Getpagesize()
	n := (len(b) + page - 1) / page
	if n == 0 {
		return
	}
	vec := make([]byte, n)
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		clear(b)
		return
	}
	for i := 0; i < n; {
		resident := vec[i]&1 != 0
		j := i + 1
		for j < n && (vec[j]&1 != 0) == resident {
			j++
		}
		run := b[i*page : min(j*page, len(b))]
		if resident || syscall.Madvise(run, syscall.MADV_DONTNEED) != nil {
			clear(run)
		}
		i = j
	}
}

// touchedPages reports, for each system page of b (which starts on a page
// boundary), whether it may hold anything but zeros: whether it is in
// memory or in swap, read from /proc/self/pagemap (bits 63 and 62). A page
// that is neither was never written, or was dropped and reads zero. It
// returns nil if it cannot tell.
func touchedPages(b []byte) []bool {
	page := os.Getpagesize()
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if len(b) == 0 || addr%uintptr(page) != 0 {
		return nil
	}
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil
	}
	defer f.Close()
	n := (len(b) + page - 1) / page
	raw := make([]byte, 8*n)
	if _, err := f.ReadAt(raw, int64(addr/uintptr(page))*8); err != nil {
		return nil
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = raw[8*i+7]&0xC0 != 0 // present or swapped
	}
	return out
}

// imageFile returns a memfd of n bytes named name and a shared mapping of it, to hold
// a snapshot's image (snapshot.go) so that fresh memories can map it
// copy-on-write (mapCOW).
func imageFile(name string, n int) ([]byte, int, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, -1, err
	}
	if err := unix.Ftruncate(fd, int64(n)); err != nil {
		unix.Close(fd)
		return nil, -1, err
	}
	// syscall.Mmap, not x/sys/unix's: syscall.Munmap, which drops the
	// image (unmapImage), unmaps only mappings syscall made and refuses
	// the others, which then stay mapped with their pages.
	b, err := syscall.Mmap(fd, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, -1, err
	}
	populate(b)
	return b, fd, nil
}

// mapCOW maps len(dst) bytes of fd at off over dst, privately: dst reads
// the file's bytes and a write copies the page first. dst and off are
// page-aligned.
func mapCOW(dst []byte, fd int, off int64) error {
	_, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(unsafe.Pointer(unsafe.SliceData(dst))), uintptr(len(dst)),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED, uintptr(fd), uintptr(off))
	if errno != 0 {
		return errno
	}
	return nil
}

// mapAnon maps fresh anonymous memory over dst, which then reads zero
// (what mapCOW put there is gone, and so are the page copies).
func mapAnon(dst []byte) error {
	_, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(unsafe.Pointer(unsafe.SliceData(dst))), uintptr(len(dst)),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED|unix.MAP_NORESERVE, ^uintptr(0), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func closeImageFile(fd int) { unix.Close(fd) }
