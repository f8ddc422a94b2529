//go:build unix

package runtime

import (
	goruntime "runtime"
	"slices"
	"sync"
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
		return m
	}
	b, err := syscall.Mmap(-1, 0, int(maximum), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|mapNoReserve)
	if err != nil {
		return &heapMemory{buf: make([]byte, 0, capacity)}
	}
	populate(b[:min(prefault, capacity, maximum)])
	return &mmapMemory{buf: b, pool: p}
}

// mmapMemory is a linear memory in its own private anonymous mapping of
// the memory's maximum size. Pages are zero until written, and a wasm
// memory never shrinks, so growing is only a longer slice of the same
// mapping.
type mmapMemory struct {
	buf    []byte
	high   uint64    // the largest size handed out: the guest wrote nothing beyond it
	pool   *memPool  // where Free recycles it
	pooled time.Time // when it entered the pool
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if m.buf == nil || size > uint64(len(m.buf)) {
		return nil // over the maximum (wazero checks it first) or freed
	}
	m.high = max(m.high, size)
	return m.buf[:size:size]
}

// Free recycles the memory through its pool, or unmaps it. wazero calls it
// when the module is closed; the runtime reads guest memory only while an
// instance runs, and copies what it keeps (see host.go and exec).
func (m *mmapMemory) Free() {
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

func (p *memPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}
