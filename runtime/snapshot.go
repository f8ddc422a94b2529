package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	silo "github.com/silo-run/silo"
)

// Snapshots of initialised instances. A cold start used to copy a Go
// guest's data segments (about 1.5 MB) into the new memory and run the Go
// runtime's _initialize; most of it is the same every time. So once the
// second instance within SnapshotTimeout of a key (account, artifact,
// memory cap, wall clock grant) has run _initialize, and before it serves
// any request, the runtime copies what it holds (not the first: taking a
// snapshot costs about as much as the init, see snapStore.wants): the memory's size, its non-zero 4 KiB
// pages and every mutable global. Later instances of the same key are
// instantiated without data segments or start functions (the module is
// prepared for it at Compile: snapshotmod.go), their memory grown to the
// snapshot's size, its pages written in and their globals set.
//
// What an instance holds besides its memory and globals, and why the
// snapshot does not need it:
//
//   - tables: the element segments fill them at every instantiation, and a
//     module whose code changes a table or a data segment is never
//     snapshotted (the Go linker emits no such instruction);
//   - WASI state: each instance gets its own (stdout and stderr to its log
//     writer, no preopened files, its clocks and crypto/rand's source).
//     The monotonic clock is the process's, so a restored Go runtime reads
//     later times than it recorded at init, as a long-lived instance does;
//     snapshots live in memory only and die with the process;
//   - the guards: the fuel global is restored with the value it had after
//     init, the call stack budget is set before every call, the deadline,
//     the CPU share and the log line limit belong to the invocation, and
//     the memory cap is the key's (instances of another cap get their own
//     snapshot).
//
// Isolation. A snapshot is taken right after _initialize, before the
// first request, and is used only for the same account, artifact, memory
// cap and clock grant: never another account's, never memory a request
// has touched. Its image lives outside the Go heap and is unmapped when
// the snapshot is dropped. Instances started from one snapshot share what
// the Go runtime drew from random_get at init: the map hash seed and the
// state behind math/rand's and math/rand/v2's top-level functions, so two
// such instances produce the same math/rand sequence (crypto/rand is
// unaffected: it asks the host every time). All of them belong to one
// account, which is the isolation boundary; a guest that needs values
// unique across instances must use crypto/rand, as it should anyway. A
// guest that reads its configuration at init keeps the values read when
// the snapshot was taken, as a warm instance does; a snapshot lasts until
// it has been unused for Config.SnapshotTimeout.
//
// Fresh memory: on Linux the image is kept in a memfd, and a memory no
// instance used before gets the image's runs mapped over it privately,
// copy-on-write (on a VM, a page the process never used costs ≈ 8 µs at
// its first write; most of a Go guest's data is only read). Such ranges
// are mapped anonymous again before the memory is zeroed and recycled
// (memPool.put): zeroing in place would only copy pages, and
// MADV_DONTNEED on a private file mapping brings the file's bytes back.
// A recycled memory gets the image copied into the pages it has.
//
// Memory: snapshots hold at most Config.SnapshotMemory bytes together
// (the least recently used go first); the idle sweep drops those unused
// for Config.SnapshotTimeout.

// snapKey names the instances that may share a snapshot.
type snapKey struct {
	acct   silo.AccountID
	digest string
	pages  uint32 // the linear memory cap (linearPages)
	clock  bool   // wall clock granted
}

// hash returns k's hash under seed.
func (k snapKey) hash(seed maphash.Seed) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(string(k.acct))
	h.WriteByte(0)
	h.WriteString(k.digest)
	var b [5]byte
	binary.LittleEndian.PutUint32(b[:4], k.pages)
	if k.clock {
		b[4] = 1
	}
	h.Write(b[:])
	return h.Sum64()
}

// snapshot is an initialised instance's memory and mutable globals.
type snapshot struct {
	pages   uint32    // memory size, in 64 KiB pages
	runs    []snapRun // the non-zero 4 KiB pages
	image   []byte    // their bytes, back to back, outside the Go heap
	fd      int       // a memfd holding image (mapped shared), or -1
	globals []uint64  // in artifact.globals order
	used    atomic.Int64

	// guarded by snapStore.mu
	refs    int  // restores under way
	dropped bool // out of the store; unmapped when refs reaches 0
}

// snapRun is a run of non-zero pages: n bytes at off in memory, at at in
// the image.
type snapRun struct{ off, n, at uint32 }

const snapPage = 4096

var zeroPage [snapPage]byte

// capture copies mod's memory and mutable globals. It is called right
// after _initialize, before the instance serves anything. held is the
// memory's handle, if the runtime allocated it (memory_data.go may have
// mapped ranges of it from a file).
func capture(mod api.Module, held heldMemory, globals []string) (*snapshot, error) {
	mem := mod.Memory()
	if mem == nil {
		return nil, errors.New("no memory")
	}
	pages, _ := mem.Grow(0)
	if pages >= 1<<16 {
		return nil, errors.New("memory of 4 GiB")
	}
	buf, ok := mem.Read(0, pages*65536)
	if !ok {
		return nil, errors.New("memory unreadable")
	}
	s := &snapshot{pages: pages, fd: -1}
	// Pages never written read zero: skip them without reading them (a
	// read would fault each one in).
	touched, sysPage := touchedPages(buf), os.Getpagesize()
	// A page mapped from a file holds the file's bytes whether or not it
	// was ever touched.
	if cm, ok := held.(cowMemory); ok && touched != nil {
		for _, r := range cm.cowRanges() {
			for off := int(r[0]); off < int(r[0]+r[1]) && off < len(buf); off += sysPage {
				touched[off/sysPage] = true
			}
		}
	}
	var total uint32
	for off := 0; off < len(buf); off += snapPage {
		if touched != nil && !touched[off/sysPage] || bytes.Equal(buf[off:off+snapPage], zeroPage[:]) {
			continue
		}
		if n := len(s.runs); n > 0 && s.runs[n-1].off+s.runs[n-1].n == uint32(off) {
			s.runs[n-1].n += snapPage
		} else {
			s.runs = append(s.runs, snapRun{off: uint32(off), n: snapPage, at: total})
		}
		total += snapPage
	}
	var err error
	if os.Getpagesize() == snapPage {
		s.image, s.fd, err = imageFile("silo-snapshot", int(total))
	}
	if s.image == nil && total > 0 {
		if s.image, err = mapImage(int(total)); err != nil {
			return nil, fmt.Errorf("map snapshot image: %w", err)
		}
	}
	for _, r := range s.runs {
		copy(s.image[r.at:r.at+r.n], buf[r.off:r.off+r.n])
	}
	for _, name := range globals {
		g := mod.ExportedGlobal(name)
		if g == nil {
			s.free()
			return nil, fmt.Errorf("no global %s", name)
		}
		s.globals = append(s.globals, g.Get())
	}
	return s, nil
}

// write puts the snapshot's pages into buf, a new memory of at least
// s.pages. A memory no instance has used (cm.fresh) gets the image mapped
// copy-on-write (the pages the guest only reads are never copied: on a VM
// a page the process never used is dear); a recycled one gets it copied
// into pages it has already.
func (s *snapshot) write(buf []byte, cm cowMemory) {
	fresh := cm == nil || cm.fresh()
	cow := s.fd >= 0 && cm != nil && fresh
	for _, r := range s.runs {
		if cow {
			if err := mapCOW(buf[r.off:r.off+r.n], s.fd, int64(r.at)); err == nil {
				cm.mappedCOW(r.off, r.n)
				continue
			}
			cow = false
		}
		dst := buf[r.off : r.off+r.n]
		if fresh {
			// Map the run's pages in one go: a system call instead of
			// a fault per page (a recycled memory has them).
			populate(dst)
		}
		copy(dst, s.image[r.at:r.at+r.n])
	}
}

// free gives back the image.
func (s *snapshot) free() {
	unmapImage(s.image)
	if s.fd >= 0 {
		closeImageFile(s.fd)
	}
}

// prefill writes the snapshot's pages into mem, a new linear memory, as
// soon as the allocator hands it out, on a goroutine of its own while
// wazero goes on instantiating the module (filling its table takes about
// as long as the copy). It sends on done whether it wrote them: false if
// mem cannot take them before wazero sizes it (restore then writes
// them), true once written. The worker waits for it before it uses or
// frees the memory.
func (s *snapshot) prefill(mem experimental.LinearMemory, done chan<- bool) {
	var buf []byte
	if r, ok := mem.(reservedMemory); ok {
		buf = r.reserve(uint64(s.pages) * 65536)
	}
	if buf == nil {
		done <- false
		return
	}
	cm, _ := mem.(cowMemory)
	if goruntime.GOMAXPROCS(0) == 1 {
		s.write(buf, cm)
		done <- true
		return
	}
	go func() {
		s.write(buf, cm)
		done <- true
	}()
}

// restore makes mod, instantiated without data segments or start
// functions, what the snapshot's instance was after _initialize: its
// memory grown to the snapshot's size, the pages written in unless
// prefill did, the globals set.
func (s *snapshot) restore(mod api.Module, held heldMemory, globals []string, prefilled bool) error {
	mem := mod.Memory()
	if mem == nil {
		return errors.New("no memory")
	}
	if cur, _ := mem.Grow(0); cur < s.pages {
		if _, ok := mem.Grow(s.pages - cur); !ok {
			return fmt.Errorf("memory cannot grow to the snapshot's %d pages", s.pages)
		}
	}
	if !prefilled {
		buf, ok := mem.Read(0, s.pages*65536)
		if !ok {
			return errors.New("memory unreadable")
		}
		cm, _ := held.(cowMemory)
		s.write(buf, cm)
	}
	for i, name := range globals {
		g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			return fmt.Errorf("no mutable global %s", name)
		}
		g.Set(s.globals[i])
	}
	return nil
}

func (s *snapshot) bytes() int64 {
	return int64(len(s.image)) + int64(len(s.runs))*12 + int64(len(s.globals))*8
}

// snapStore holds the snapshots.
type snapStore struct {
	mu sync.Mutex
	m  map[snapKey]*snapshot
	// seen: keys whose last instance ran init without taking a snapshot,
	// and when; by hash (snapKey.hash), so that the map holds no string of
	// the account's: the first request of each of many tenants would
	// otherwise keep its header's bytes, and the heap span under them,
	// for SnapshotTimeout after the tenant went idle. Two keys of one hash
	// would only take a snapshot one start early.
	seen   map[uint64]int64
	seed   maphash.Seed
	size   int64 // bytes held
	max    int64 // Config.SnapshotMemory
	closed bool

	starts atomic.Int64 // instances started from a snapshot
}

func newSnapStore(max int) *snapStore {
	return &snapStore{m: map[snapKey]*snapshot{}, seen: map[uint64]int64{}, seed: maphash.MakeSeed(), max: int64(max)}
}

// wants reports whether a new instance of k that runs its init should
// take a snapshot: only the second within SnapshotTimeout does. Taking
// one costs the instance about as much as its init (the image is pages
// the process never used), so a function started once after a quiet
// spell does not pay for a snapshot it would never use.
func (st *snapStore) wants(k snapKey, now time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	h := k.hash(st.seed)
	if _, ok := st.seen[h]; ok {
		delete(st.seen, h)
		return true
	}
	st.seen[h] = now.UnixNano()
	return false
}

// take returns k's snapshot, to be given back with done, or nil.
func (st *snapStore) take(k snapKey, now time.Time) *snapshot {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.m[k]
	if s != nil {
		s.refs++
		s.used.Store(now.UnixNano())
	}
	return s
}

// done gives back a snapshot from take.
func (st *snapStore) done(s *snapshot) {
	st.mu.Lock()
	s.refs--
	free := s.refs == 0 && s.dropped
	st.mu.Unlock()
	if free {
		s.free()
	}
}

// put keeps s as k's snapshot, dropping the least recently used ones to
// stay within max. It drops s instead if k has one already (two first
// instances started at once) or s alone is over max.
func (st *snapStore) put(k snapKey, s *snapshot, now time.Time) {
	s.used.Store(now.UnixNano())
	st.mu.Lock()
	if st.closed || st.m[k] != nil || s.bytes() > st.max {
		st.mu.Unlock()
		s.free()
		return
	}
	var free []*snapshot
	for st.size+s.bytes() > st.max && len(st.m) > 0 {
		var oldest snapKey
		var at int64
		for k2, s2 := range st.m {
			if u := s2.used.Load(); at == 0 || u < at {
				oldest, at = k2, u
			}
		}
		free = st.drop(oldest, free)
	}
	st.m[k] = s
	st.size += s.bytes()
	st.mu.Unlock()
	for _, s := range free {
		s.free()
	}
}

// drop removes k's snapshot (st.mu held) and appends it to free if no
// restore uses it.
func (st *snapStore) drop(k snapKey, free []*snapshot) []*snapshot {
	s := st.m[k]
	delete(st.m, k)
	st.size -= s.bytes()
	s.dropped = true
	if s.refs == 0 {
		free = append(free, s)
	}
	return free
}

// trim drops the snapshots unused since before cutoff.
func (st *snapStore) trim(cutoff time.Time) {
	st.mu.Lock()
	var free []*snapshot
	for k, s := range st.m {
		if s.used.Load() < cutoff.UnixNano() {
			free = st.drop(k, free)
		}
	}
	for k, at := range st.seen {
		if at < cutoff.UnixNano() {
			delete(st.seen, k)
		}
	}
	st.mu.Unlock()
	for _, s := range free {
		s.free()
	}
}

// close drops every snapshot; later puts drop theirs.
func (st *snapStore) close() {
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	st.trim(time.Now().Add(time.Hour))
}

func (st *snapStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.m)
}
