package runtime

import (
	"bufio"
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
