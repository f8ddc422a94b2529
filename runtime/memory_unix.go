//go:build unix

package runtime

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// haveMmap: linear memories reserve their maximum with mmap (allocMmap).
const haveMmap = true

// maxLinearMemory is the most a wasm32 memory can hold (65536 pages).
const maxLinearMemory = 1 << 32

func allocMmap(capacity, maximum, prefault uint64) experimental.LinearMemory {
	maximum = min(maximum, maxLinearMemory)
	if maximum == 0 {
		return &heapMemory{}
	}
	b, err := syscall.Mmap(-1, 0, int(maximum), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|mapNoReserve)
	if err != nil {
		return &heapMemory{buf: make([]byte, 0, capacity)}
	}
	populate(b[:min(prefault, capacity, maximum)])
	return &mmapMemory{buf: b}
}

// mmapMemory is a linear memory in its own private anonymous mapping of
// the memory's maximum size. Pages are zero until written, and a wasm
// memory never shrinks, so growing is only a longer slice of the same
// mapping.
type mmapMemory struct{ buf []byte }

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if m.buf == nil || size > uint64(len(m.buf)) {
		return nil // over the maximum (wazero checks it first) or freed
	}
	return m.buf[:size:size]
}

// Free unmaps the memory. wazero calls it when the module is closed; the
// runtime reads guest memory only while an instance runs, and copies what
// it keeps (see host.go and exec).
func (m *mmapMemory) Free() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}
