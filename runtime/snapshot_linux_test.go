package runtime

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	silo "github.com/silo-run/silo"
)

// snapshotMaps counts the mappings of a snapshot's file inside buf's
// address range (/proc/self/maps).
func snapshotMaps(t *testing.T, buf []byte) int {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	hi := lo + uintptr(cap(buf))
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var start, end uintptr
		if _, err := fmt.Sscanf(sc.Text(), "%x-%x", &start, &end); err != nil {
			continue
		}
		if start >= lo && end <= hi && strings.Contains(sc.Text(), "silo-snapshot") {
			n++
		}
	}
	return n
}

// A new memory gets the snapshot mapped copy-on-write; before the memory
// is recycled those ranges become anonymous memory again, and the next
// account's instance on it holds nothing of the snapshot.
func TestSnapshotCopyOnWriteRecycled(t *testing.T) {
	e := newEnv(t, Config{IdleTimeout: time.Hour})
	greeting := Request{Path: "/init/greeting"}
	e.must(t, "acme", greeting, 200)
	e.rt.Evict("acme")
	e.must(t, "acme", greeting, 200) // init and snapshot
	e.rt.Evict("acme")
	e.rt.mem.trim(time.Now().Add(time.Hour)) // the next memory is new
	if got := e.must(t, "acme", greeting, 200); got != "hello acme" {
		t.Fatalf("acme from its snapshot: %q", got)
	}
	var mm *mmapMemory
	e.rt.mu.Lock()
	for k, p := range e.rt.pools {
		if k.acct == "acme" {
			mm, _ = p.idle[0].mem.(*mmapMemory)
		}
	}
	e.rt.mu.Unlock()
	if mm == nil || len(mm.cow) == 0 {
		t.Fatal("acme's instance on a new memory did not map its snapshot copy-on-write")
	}
	buf := mm.buf
	// Must: the probe sees the mapping and the greeting read at init.
	if n := snapshotMaps(t, buf); n == 0 {
		t.Fatal("no mapping of the snapshot's file in acme's memory: the probe sees nothing")
	}
	if !containsIn(e.memoryOf(t, "acme"), "hello acme") {
		t.Fatal("acme's memory does not hold its greeting: the probe sees nothing")
	}

	e.rt.Evict("acme")
	if s := e.rt.Stats(); s.PooledMemories != 1 {
		t.Fatalf("%d pooled memories, want 1", s.PooledMemories)
	}
	// Must not: the recycled memory maps the snapshot, or shows any of it.
	if n := snapshotMaps(t, buf); n != 0 {
		t.Fatalf("the recycled memory still maps the snapshot's file %d times", n)
	}
	e.must(t, "globex", Request{Path: "/residue/get"}, 200)
	if containsIn(e.memoryOf(t, "globex"), "hello acme") {
		t.Fatal("globex's instance on acme's recycled memory holds acme's greeting")
	}
}

// snapshotFiles counts the process's mappings of snapshots' files.
func snapshotFiles(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "silo-snapshot")
}

// A dropped snapshot's file is mapped nowhere once its instances are gone:
// its pages go back to the system.
func TestSnapshotUnmappedWhenDropped(t *testing.T) {
	e := newEnv(t, Config{IdleTimeout: time.Hour})
	before := snapshotFiles(t)
	for _, acct := range []silo.AccountID{"acme", "globex"} {
		e.must(t, acct, Request{Path: "/ping"}, 200)
		for range 2 { // the second instance takes the snapshot, the third starts from it
			if _, err := e.cold(t, acct, Request{Path: "/ping"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Must: kept snapshots and their instances map the files.
	if s := e.rt.Stats(); s.Snapshots != 2 || s.SnapshotStarts != 2 {
		t.Fatalf("%d snapshots, %d starts from one; want 2 and 2", s.Snapshots, s.SnapshotStarts)
	}
	if n := snapshotFiles(t) - before; n == 0 {
		t.Fatal("no mapping of a snapshot's file while two are kept: the probe sees nothing")
	}
	// Must not: once dropped and their instances closed, nothing maps them.
	e.rt.sweep(time.Now().Add(10 * time.Hour))
	e.rt.sweep(time.Now().Add(20 * time.Hour))
	if s := e.rt.Stats(); s.Snapshots != 0 || s.Instances != 0 {
		t.Fatalf("after the sweeps: %d snapshots, %d instances; want none", s.Snapshots, s.Instances)
	}
	if n := snapshotFiles(t) - before; n != 0 {
		t.Fatalf("%d mappings of dropped snapshots' files remain", n)
	}
}

// dataMaps counts the mappings of an artifact's data image inside buf's
// address range.
func dataMaps(t *testing.T, buf []byte) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	hi := lo + uintptr(cap(buf))
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		var start, end uintptr
		if _, err := fmt.Sscanf(line, "%x-%x", &start, &end); err == nil && start >= lo && end <= hi && strings.Contains(line, "silo-data") {
			n++
		}
	}
	return n
}

// acmeMemory returns the memory of acme's idle instance.
func acmeMemory(t *testing.T, e *env) *mmapMemory {
	t.Helper()
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	for k, p := range e.rt.pools {
		if k.acct == "acme" && len(p.idle) > 0 {
			if mm, ok := p.idle[0].mem.(*mmapMemory); ok {
				return mm
			}
		}
	}
	t.Fatal("acme has no idle instance on a mapped memory")
	return nil
}

// The first instance after a quiet spell, on a new memory, gets its data
// segments mapped copy-on-write from the artifact's image and runs its
// init on them; the snapshot the next instance takes on a new memory
// holds the image's pages it never touched too, so that an instance
// started from it has every byte of its data; and a recycled memory maps
// no image any more.
func TestDataImageOnNewMemory(t *testing.T) {
	e := newEnv(t, Config{IdleTimeout: time.Hour})
	greeting := Request{Path: "/init/greeting"}
	fresh := func() {
		e.rt.Evict("acme")
		e.rt.mem.trim(time.Now().Add(time.Hour)) // the next memory is new
	}
	// Must: the first instance maps the image and serves from its data.
	if got := e.must(t, "acme", greeting, 200); got != "hello acme" {
		t.Fatalf("acme's first instance: %q", got)
	}
	mm := acmeMemory(t, e)
	if len(mm.cow) == 0 || dataMaps(t, mm.buf) == 0 {
		t.Fatal("acme's first instance on a new memory did not map its data image: the probe sees nothing")
	}
	// The second instance, on a new memory too, takes the snapshot.
	fresh()
	if got := e.must(t, "acme", greeting, 200); got != "hello acme" {
		t.Fatalf("acme's second instance: %q", got)
	}
	if s := e.rt.Stats(); s.Snapshots != 1 {
		t.Fatalf("%d snapshots, want 1", s.Snapshots)
	}
	// From the snapshot, on a recycled memory (a copy of the image's
	// pages) and on a new one (mapped): the whole data is there.
	for _, newMemory := range []bool{false, true} {
		e.rt.Evict("acme")
		if newMemory {
			e.rt.mem.trim(time.Now().Add(time.Hour))
		}
		starts := e.rt.Stats().SnapshotStarts
		for _, c := range []struct {
			req  Request
			want string
		}{{greeting, "hello acme"}, {Request{Path: "/ping"}, "pong"}, {Request{Path: "/echo", Body: []byte("data")}, `"body":"data"`}} {
			if got := e.must(t, "acme", c.req, 200); !strings.Contains(got, c.want) {
				t.Fatalf("%s from the snapshot (new memory %v): %q, want %q", c.req.Path, newMemory, got, c.want)
			}
		}
		if e.rt.Stats().SnapshotStarts != starts+1 {
			t.Fatalf("the instance (new memory %v) did not start from the snapshot", newMemory)
		}
	}
	// Must not: once recycled, the memory maps no data image.
	e.rt.snap.trim(time.Now().Add(time.Hour))
	fresh()
	e.must(t, "acme", greeting, 200)
	mm = acmeMemory(t, e)
	buf := mm.buf
	if dataMaps(t, buf) == 0 {
		t.Fatal("no data image mapped after the snapshot was dropped")
	}
	e.rt.Evict("acme")
	if n := dataMaps(t, buf); n != 0 {
		t.Fatalf("the recycled memory still maps the data image %d times", n)
	}
}

// Data segments past the initial memory fail the instantiation as they
// did when exportInitData copied them (a trap), rather than being
// written into the reservation beyond it, where a memory.grow would show
// them; segments within it are mapped.
func TestDataImageWithinInitialMemory(t *testing.T) {
	e := newEnv(t, Config{})
	for _, c := range []struct {
		size int
		ok   bool
	}{{1000, true}, {65536, false}} {
		data := bytes.Repeat([]byte{7}, c.size)
		d, err := e.rt.Compile(context.Background(), hostileSpec{handle: returnOK(), data: data}.build())
		if err != nil {
			t.Fatal(err)
		}
		a := e.rt.artifacts[d]
		if !a.restart {
			t.Fatal("the module is not restartable: the test shows nothing")
		}
		resp, err := e.invokeDigest("acme", d, Limits{}, "/")
		if c.ok {
			// Must: within the initial memory, the image serves.
			if a.data == nil {
				t.Fatal("no data image for segments within the initial memory")
			}
			wantOK(t, resp, err)
			continue
		}
		// Must not: past it, no image, and no instance.
		if a.data != nil {
			t.Errorf("a data image for segments past the initial memory")
		}
		if err == nil {
			t.Fatalf("%d bytes of data past a 64 KiB memory at %d: the instance started (%d %q)", c.size, dataAddr, resp.Status, resp.Body)
		}
	}
}

// The data segments a memory gets before wazero sizes it count as
// written: a memory freed right after, whatever wazero did, goes back to
// the pool reading zero, on a new memory (mapped) and a recycled one
// (copied).
func TestDataImageWrittenBytesZeroedOnRecycle(t *testing.T) {
	const size = 1 << 20
	seg := bytes.Repeat([]byte("silo"), 2048)
	d := newDataImage([]dataSeg{{off: 8192, b: seg}}, size)
	if d == nil {
		t.Skip("no data image on this machine")
	}
	p := newMemPool()
	for _, round := range []string{"new memory", "recycled memory"} {
		m, ok := p.alloc(size, 4*size, 0).(*mmapMemory)
		if !ok {
			t.Skip("no mapping for a linear memory on this machine")
		}
		if round == "new memory" != m.fresh() {
			t.Fatalf("%s: fresh() = %v", round, m.fresh())
		}
		d.writeTo(m)
		// Must: the segment is there.
		if !bytes.Equal(m.buf[8192:8192+len(seg)], seg) {
			t.Fatalf("%s: the data segment was not written", round)
		}
		m.Free() // no Reallocate: as if wazero had failed at once
		m.unhold()
		if p.len() != 1 {
			t.Fatalf("%s: %d pooled memories, want 1", round, p.len())
		}
		// Must not: any of it left in the pooled memory.
		if bytes.Contains(m.buf[:size], []byte("silo")) {
			t.Fatalf("%s: the pooled memory still holds the data segment", round)
		}
	}
}
