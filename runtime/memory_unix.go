//go:build unix

package runtime

import (
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero/experimental"
)

// haveMmap: linear memories reserve their maximum with mmap (memPool.alloc).
const haveMmap = true

// maxLinearMemory is the most a wasm32 memory can hold (65536 pages).
const maxLinearMemory = 1 << 32

// alloc returns a linear memory of the given maximum: a pooled one, or a new
// reservation whose first prefault bytes are mapped at once.
func (p *memPool) alloc(capacity, maximum, prefault uint64) experimental.LinearMemory {
	maximum = min(maximum, maxLinearMemory)
	if maximum == 0 {
		return &heapMemory{}
	}
	if m := p.get(maximum); m != nil {
		// A new handle: the closed module's one stays freed.
		return &mmapMemory{buf: m.buf, pool: p, held: true}
	}
	b, err := syscall.Mmap(-1, 0, int(maximum), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|mapNoReserve)
	if err != nil {
		return &heapMemory{buf: make([]byte, 0, capacity)}
	}
	p.mapped.Add(1)
	populate(b[:min(prefault, capacity, maximum)])
	return &mmapMemory{buf: b, pool: p, held: true, new: true}
}

// mmapMemory is a linear memory in its own private anonymous mapping of
// the memory's maximum size. Pages are zero until written, and a wasm
// memory never shrinks, so growing is only a longer slice of the same
// mapping.
//
// It is a heldMemory: alloc returns it held by the worker instantiating
// its module, and Free while it is held only marks it (freeLater); the
// worker's unhold then frees it. Once freed a handle stays freed: a
// recycled mapping gets a new handle. buf and high are used by the holder
// only (wazero calls Reallocate from the guest's goroutine), or by
// whoever frees the handle.
type mmapMemory struct {
	buf    []byte
	high   uint64      // the largest size handed out: the guest wrote nothing beyond it
	pool   *memPool    // where Free recycles it
	pooled time.Time   // when it entered the pool
	new    bool        // a new mapping: no instance used it before
	cow    [][2]uint32 // ranges mapping a snapshot's file (mapCOW)

	mu        sync.Mutex
	held      bool // a worker runs guest or host code on it
	freeLater bool // Free came while held
	freed     bool
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if m.buf == nil || size > uint64(len(m.buf)) {
		return nil // over the maximum (wazero checks it first) or freed
	}
	m.high = max(m.high, size)
	return m.buf[:size:size]
}

// Free recycles the memory through its pool, or unmaps it; if a worker
// holds it, that happens when the worker lets go (unhold). wazero calls
// Free when the module is closed.
func (m *mmapMemory) Free() {
	m.mu.Lock()
	if m.held {
		m.freeLater = true
		m.mu.Unlock()
		return
	}
	free := !m.freed
	m.freed = true
	m.mu.Unlock()
	if free {
		m.release()
	}
}

func (m *mmapMemory) fresh() bool             { return m.new }
func (m *mmapMemory) mappedCOW(off, n uint32) { m.cow = append(m.cow, [2]uint32{off, n}) }
func (m *mmapMemory) cowRanges() [][2]uint32  { return m.cow }

func (m *mmapMemory) reserve(n uint64) []byte {
	if n > uint64(len(m.buf)) {
		return nil
	}
	m.high = max(m.high, n)
	return m.buf[:n]
}

func (m *mmapMemory) hold() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freed || m.freeLater {
		return false
	}
	m.held = true
	return true
}

func (m *mmapMemory) unhold() {
	m.mu.Lock()
	free := m.freeLater && !m.freed
	m.held, m.freeLater = false, false
	m.freed = m.freed || free
	m.mu.Unlock()
	if free {
		m.release()
	}
}

// release recycles the memory through its pool, or unmaps it.
func (m *mmapMemory) release() {
	if m.buf == nil {
		return
	}
	if m.pool != nil && m.pool.put(m) {
		return
	}
	m.unmap()
}

func (m *mmapMemory) unmap() {
	_ = syscall.Munmap(m.buf)
	m.buf = nil
	if m.pool != nil {
		m.pool.mapped.Add(-1)
	}
}

// memPool keeps the linear memories of closed instances for the next new
// instances, zeroed. On a VM the first write to a page the process has not
// used yet is dear (this CI machine: ≈ 5 µs a page, ≈ 1.3 ms per MiB, and a
// cold start writes a few MiB); a recycled memory has its pages already.
//
// Isolation: a memory enters the pool only after every byte the guest
// could have written, [0, high), reads zero again, so a new instance, of
// any account, sees exactly what a fresh mapping holds.
//
// Memory: the pool holds at most max memories, and an idle sweep
// unmaps those pooled before the previous sweep (trim), so an idle
// runtime holds none after IdleTimeout.
type memPool struct {
	mu     sync.Mutex
	free   []*mmapMemory
	max    int
	closed bool
	mapped atomic.Int64 // mappings not unmapped yet: in use or pooled
}

func newMemPool() *memPool {
	return &memPool{max: 2 * goruntime.GOMAXPROCS(0)}
}

// get takes a pooled memory whose reservation is size bytes, or nil.
func (p *memPool) get(size uint64) *mmapMemory {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if m := p.free[i]; uint64(len(m.buf)) == size {
			p.free = slices.Delete(p.free, i, i+1)
			return m
		}
	}
	return nil
}

// put zeroes m and keeps it, unless the pool is full or closed.
func (p *memPool) put(m *mmapMemory) bool {
	p.mu.Lock()
	full := p.closed || len(p.free) >= p.max
	p.mu.Unlock()
	if full {
		return false
	}
	// Ranges mapping a snapshot's file first become anonymous memory
	// again: zeroing them in place would leave them the file's, and
	// MADV_DONTNEED would bring the file's bytes back.
	for _, r := range m.cow {
		if mapAnon(m.buf[r[0]:r[0]+r[1]]) != nil {
			return false
		}
	}
	m.cow = nil
	zeroWritten(m.buf[:m.high])
	m.high = 0
	m.pooled = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.free) >= p.max {
		return false
	}
	p.free = append(p.free, m)
	return true
}

// trim unmaps the memories pooled before cutoff.
func (p *memPool) trim(cutoff time.Time) {
	p.mu.Lock()
	var old []*mmapMemory
	p.free, old = removeOld(p.free, old, func(m *mmapMemory) time.Time { return m.pooled }, cutoff)
	p.mu.Unlock()
	for _, m := range old {
		m.unmap()
	}
}

// close unmaps every pooled memory; later puts unmap theirs.
func (p *memPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.trim(time.Now().Add(time.Hour))
}

// mappings returns how many linear memories are mapped: in use or pooled.
func (p *memPool) mappings() int { return int(p.mapped.Load()) }

func (p *memPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// mapImage returns n bytes outside the Go heap for a snapshot's image
// (snapshot.go).
func mapImage(n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, err
	}
	populate(b)
	return b, nil
}

// unmapImage gives back what mapImage returned.
func unmapImage(b []byte) {
	if len(b) > 0 {
		_ = syscall.Munmap(b)
	}
}
