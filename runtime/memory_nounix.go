//go:build !unix

package runtime

import (
	"time"

	"github.com/tetratelabs/wazero/experimental"
)

// haveMmap is false off unix: linear memories stay on the Go heap.
const haveMmap = false

// memPool recycles nothing off unix (see memory_unix.go).
type memPool struct{}

func newMemPool() *memPool { return &memPool{} }

func (*memPool) alloc(capacity, maximum, prefault uint64) experimental.LinearMemory {
	return &heapMemory{buf: make([]byte, 0, capacity)}
}

func (*memPool) trim(time.Time) {}
func (*memPool) close()         {}
func (*memPool) len() int       { return 0 }
func (*memPool) mappings() int  { return 0 }

func mapImage(n int) ([]byte, error) { return make([]byte, n), nil }
func unmapImage([]byte)              {}

func populate([]byte) {}

func touchedPages([]byte) []bool { return nil }

func imageFile(string, int) ([]byte, int, error) { return nil, -1, errNoCOW }
func mapCOW([]byte, int, int64) error            { return errNoCOW }
func mapAnon(dst []byte) error                   { clear(dst); return nil }
func closeImageFile(int)                         {}
