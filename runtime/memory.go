package runtime

import (
	"context"
	"errors"

	"github.com/tetratelabs/wazero/experimental"
)

// Linear memories of instances live outside the Go heap where the platform
// allows it (memory_unix.go): each instance reserves its maximum size of
// address space once, untouched pages cost nothing, memory.grow neither
// copies nor allocates, and closing the instance returns its pages to the
// system at once. On the Go heap instead, every grow allocates a larger
// buffer and copies the old one, and the garbage of thousands of
// short-lived instances inflates the heap (and the runtime's metadata for
// it) far beyond what stays live: after 1,000 tenants were served once and
// went idle, the process kept about 13 MiB of GC metadata and 14 MiB of
// fragmented heap spans from that peak. The memories of closed instances
// are recycled, zeroed, for the next cold starts for a short while
// (memPool in memory_unix.go).

// withMemoryAllocator returns ctx carrying the runtime's allocator for
// linear memories, if the platform has one: a memory recycled by pool, or
// else a new one whose first prefault bytes (the module's data segments,
// which instantiation writes at once) are mapped in one go where the
// platform can. If fill is not nil, it is given the new memory first
// (to write the data segments or a snapshot in: memory_data.go,
// snapshot.go). A memory that must outlive its module's Free while a guest
// still runs on it (see heldMemory) is handed to held, already held.
func withMemoryAllocator(ctx context.Context, pool *memPool, prefault uint64, fill func(experimental.LinearMemory), held func(heldMemory)) context.Context {
	if !haveMmap {
		return ctx
	}
	return experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(capacity, maximum uint64) experimental.LinearMemory {
		m := pool.alloc(capacity, maximum, prefault)
		if h, ok := m.(heldMemory); ok {
			held(h)
		}
		if fill != nil {
			fill(m)
		}
		return m
	}))
}

// heldMemory is a linear memory that goes away on Free (unmapped, or zeroed
// and recycled for another instance), unlike a Go slice, which the garbage
// collector keeps while anything can reach it. wazero frees a module's
// memory when the module is closed, and closing the wazero runtime
// (Runtime.Close) closes modules whose guests are still running on other
// goroutines: an invocation in flight, or one abandoned at its deadline
// that has not reached its next checkpoint, or sits in a host call. So
// the worker running an instance holds its memory while it instantiates
// it or serves an invocation (guest code, host calls and the runtime's
// own reads and writes of the memory), and a Free that comes meanwhile
// takes effect when the worker lets go.
type heldMemory interface {
	// hold marks the memory in use; it reports false if the memory was
	// freed already (its module was closed while idle).
	hold() bool
	// unhold ends the use, and completes a Free that came meanwhile.
	unhold()
}

// errNoCOW: the platform cannot map a snapshot copy-on-write.
var errNoCOW = errors.New("no copy-on-write mappings on this platform")

// cowMemory is a linear memory a snapshot's image may be mapped into
// copy-on-write (snapshot.go, memory_unix.go).
type cowMemory interface {
	// fresh reports whether no instance used the memory before.
	fresh() bool
	// mappedCOW records that [off, off+n) maps a snapshot's file; it is
	// remapped as anonymous memory before the memory is reused.
	mappedCOW(off, n uint32)
	// cowRanges returns the ranges mappedCOW recorded.
	cowRanges() [][2]uint32
}

// heapMemory is a linear memory on the Go heap: the fallback when a
// reservation fails.
type heapMemory struct{ buf []byte }

func (m *heapMemory) Reallocate(size uint64) []byte {
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	nb := make([]byte, size, max(size, 2*uint64(cap(m.buf))))
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

func (m *heapMemory) Free() { m.buf = nil }

func (m *heapMemory) reserve(n uint64) []byte {
	if n > uint64(cap(m.buf)) {
		return nil
	}
	return m.buf[:n]
}
