package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silo-run/silo/platform"
)

// idleMemoryScenario: N tenants each served once, then idle past the
// runtime's IdleTimeout; resident memory (after GC and FreeOSMemory) must
// come back to within 10% of its level before they were served. N is 200,
// or -tenants when given (at most 2000). It also reports the resident
// memory before the harness forces anything (what a server holds by
// itself), and splits it by kind. With SILO_BENCH_CPUPROFILE=prefix it
// writes a CPU profile of the serving phase (prefix.idle-serve.pprof) and
// heap profiles before serving, at the end of serving and after idle
// (prefix.{before,served,idle}-heap.pprof).
func idleMemoryScenario(ctx context.Context, cfg config) ([]row, error) {
	n := 200
	if flagGiven("tenants") {
		n = min(max(cfg.tenants, 1), 2000)
	}
	// Every tenant must still be live when the last one is served, or the
	// figure depends on how fast this machine served them: with a fixed
	// 3 s, 150 to 520 of 1,000 instances were live at once depending on
	// the load (serving takes 7-20 s), against 1,000 on a quiet machine,
	// and the residue grows with the serving peak. 30 ms per tenant is
	// above the slowest serving rate seen (20 ms).
	idle := min(max(time.Duration(n)*30*time.Millisecond, 3*time.Second), time.Minute)
	lp, err := startPlatform(ctx, cfg, "dp-idle", func(pc *platform.Config) {
		pc.Runtime.IdleTimeout = idle
		pc.Refresh = 0 // the platform's default: views are re-read after 1 s
	})
	if err != nil {
		return nil, err
	}
	defer lp.Close()
	keys := make([]string, n)
	var mu sync.Mutex
	var firstErr error
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				k, err := lp.tenant(ctx, "m"+strconv.Itoa(i))
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
				keys[i] = k
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	c := newClient(4)
	defer c.CloseIdleConnections()
	// Serve one unrelated tenant first so that code paths, pools and caches
	// that any first request warms are in the "before" figure.
	wkey, err := lp.tenant(ctx, "warmup")
	if err != nil {
		return nil, err
	}
	if st, err := do(c, lp.request("GET", "warmup", wkey, "/findings", "")); err != nil || st != 200 {
		return nil, fmt.Errorf("warm-up GET: status %d, %v", st, err)
	}
	if err := waitNoInstances(lp, idle); err != nil {
		return nil, err
	}
	before := settledRSS()
	heapBefore := goHeap()
	kindsBefore := memoryKinds()
	if prefix := os.Getenv("SILO_BENCH_CPUPROFILE"); prefix != "" {
		if f, err := os.Create(prefix + ".before-heap.pprof"); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}

	var peak atomic.Int64
	peak.Store(residentBytes())
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				if r := residentBytes(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	stopProfile, err := profile("idle-serve")
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	next.Store(0)
	maxLive := 0
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				id := "m" + strconv.Itoa(i)
				if st, err := do(c, lp.request("GET", id, keys[i], "/findings", "")); err != nil || st != 200 {
					mu.Lock()
					firstErr = errors.Join(firstErr, fmt.Errorf("GET /findings of %s: status %d, %v", id, st, err))
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	served := time.Since(t0)
	stopProfile()
	if prefix := os.Getenv("SILO_BENCH_CPUPROFILE"); prefix != "" {
		goruntime.GC()
		if f, err := os.Create(prefix + ".served-heap.pprof"); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	maxLive = lp.p.Runtime.Stats().Instances
	close(stopSampling)
	<-sampled
	if firstErr != nil {
		return nil, firstErr
	}
	waitStart := time.Now()
	if err := waitNoInstances(lp, idle); err != nil {
		return nil, err
	}
	evicted := time.Since(waitStart)
	// What the process holds by itself, before the harness forces a GC:
	// the platform returns the memory of a large idle sweep to the OS
	// about a second after it (platform.releaser).
	time.Sleep(3 * time.Second)
	unforced := residentBytes()
	after := settledRSS()
	heapAfter := goHeap()
	kindsAfter := memoryKinds()
	if prefix := os.Getenv("SILO_BENCH_CPUPROFILE"); prefix != "" {
		if f, err := os.Create(prefix + ".idle-heap.pprof"); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	growth := float64(after-before) / float64(before)
	verdict := "met"
	if growth > 0.10 {
		verdict = "MISSED"
	}
	if maxLive < n {
		verdict += fmt.Sprintf(" (only %d of %d live at once: understated)", maxLive, n)
	}
	return []row{
		{"idle-memory", fmt.Sprintf("RSS after %d tenants served once and idle", n), mib(after), mib(before) + " (before serving)", fmt.Sprintf("%.3f× (%+.1f%%)", float64(after)/float64(before), 100*growth), "≤ +10%: " + verdict},
		{"idle-memory", "RSS after idle, not forced (no GC/FreeOSMemory by the harness)", mib(unforced), mib(before) + " (before serving)", fmt.Sprintf("%.3f× (%+.1f%%)", float64(unforced)/float64(before), 100*float64(unforced-before)/float64(before)), ""},
		{"idle-memory", "RSS peak while serving", mib(peak.Load()), mib(before), fmt.Sprintf("%.2f×", float64(peak.Load())/float64(before)), ""},
		{"idle-memory", "Go heap+stacks in use after idle", mib(heapAfter), mib(heapBefore) + " (before serving)", fmt.Sprintf("%+.1f MiB (%.1f KiB per tenant)", float64(heapAfter-heapBefore)/(1<<20), float64(heapAfter-heapBefore)/1024/float64(n)), ""},
		{"idle-memory", "RSS by kind after idle (" + kindNames + ")", kindsAfter.String(), kindsBefore.String() + " (before serving)", kindsAfter.diff(kindsBefore), ""},
		{"idle-memory", "instances live at the end of serving / after idle", fmt.Sprintf("%d / 0", maxLive), "", "", ""},
		{"idle-memory", fmt.Sprintf("serve all once / evict all (IdleTimeout %s)", idle), fmt.Sprintf("%s / %s", served.Round(time.Millisecond), evicted.Round(time.Millisecond)), "", "", ""},
	}, nil
}

// waitNoInstances waits (at most 6×idle + 10 s) until the runtime holds no
// instance, nor any recycled memory (which an idle runtime gives back one
// sweep after the evictions), nor any snapshot.
func waitNoInstances(lp *livePlatform, idle time.Duration) error {
	// Snapshots outlive instances: they go once unused for
	// 4×IdleTimeout (runtime.Config.SnapshotTimeout).
	limit := time.Now().Add(6*idle + 10*time.Second)
	for {
		s := lp.p.Runtime.Stats()
		if s.Instances == 0 && s.PooledMemories == 0 && s.Snapshots == 0 {
			return nil
		}
		if time.Now().After(limit) {
			return fmt.Errorf("%d instances, %d pooled memories and %d snapshots still held %s past the idle timeout", s.Instances, s.PooledMemories, s.Snapshots, 6*idle+10*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goHeap is the memory the Go runtime holds in heap spans and stacks.
func goHeap() int64 {
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// kinds splits resident memory: the Go runtime's (heap, stacks, GC
// metadata: mapped and not released to the OS), the rest of the anonymous
// memory (SQLite's pages in modernc's libc allocator, wazero's mappings),
// and file-backed pages (the binary, memory-mapped account files).
type kinds struct{ goRuntime, otherAnon, file int64 }

const kindNames = "Go runtime / other anonymous / file-backed"

func memoryKinds() kinds {
	var k kinds
	ss := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(ss)
	k.goRuntime = int64(ss[0].Value.Uint64() - ss[1].Value.Uint64())
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "RssAnon:":
			k.otherAnon = kb<<10 - k.goRuntime
		case "RssFile:", "RssShmem:":
			k.file += kb << 10
		}
	}
	return k
}

func (k kinds) String() string {
	m := func(b int64) float64 { return float64(b) / (1 << 20) }
	return fmt.Sprintf("%.1f / %.1f / %.1f MiB", m(k.goRuntime), m(k.otherAnon), m(k.file))
}

func (k kinds) diff(b kinds) string {
	m := func(b int64) float64 { return float64(b) / (1 << 20) }
	return fmt.Sprintf("%+.1f / %+.1f / %+.1f MiB", m(k.goRuntime-b.goRuntime), m(k.otherAnon-b.otherAnon), m(k.file-b.file))
}

// settledRSS is VmRSS after garbage collection and returning freed memory
// to the OS.
func settledRSS() int64 {
	for i := 0; i < 2; i++ {
		goruntime.GC()
		debug.FreeOSMemory()
	}
	return residentBytes()
}
