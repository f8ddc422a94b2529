package main

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"
)

// schedCount is what the kernel and the Go runtime account to this process
// (the platform and its load generator) up to a moment: summed over its
// threads, the CPU time, the time spent runnable but waiting for a CPU
// (run-queue wait, /proc/<pid>/task/<tid>/schedstat) and the context
// switches (status: voluntary, a thread blocked and later woken;
// involuntary, preempted while runnable), plus the bytes allocated on the
// Go heap, the GC cycles and their stop-the-world pauses. Zero on a system without /proc.
type schedCount struct {
	cpu, wait        time.Duration
	woken, preempted int64
	alloc            uint64
	gcs              uint32
	gcPause          time.Duration
}

func readSched() schedCount {
	var c schedCount
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	c.alloc, c.gcs, c.gcPause = ms.TotalAlloc, ms.NumGC, time.Duration(ms.PauseTotalNs)
	tasks, _ := filepath.Glob("/proc/self/task/*")
	for _, t := range tasks {
		if b, err := os.ReadFile(filepath.Join(t, "schedstat")); err == nil {
			if f := strings.Fields(string(b)); len(f) >= 2 {
				run, _ := strconv.ParseInt(f[0], 10, 64)
				wait, _ := strconv.ParseInt(f[1], 10, 64)
				c.cpu += time.Duration(run)
				c.wait += time.Duration(wait)
			}
		}
		b, err := os.ReadFile(filepath.Join(t, "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":")
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch k {
			case "voluntary_ctxt_switches":
				c.woken += n
			case "nonvoluntary_ctxt_switches":
				c.preempted += n
			}
		}
	}
	return c
}

// add sums two counts (the segments of one phase).
func (c schedCount) add(d schedCount) schedCount {
	return schedCount{c.cpu + d.cpu, c.wait + d.wait, c.woken + d.woken, c.preempted + d.preempted, c.alloc + d.alloc, c.gcs + d.gcs, c.gcPause + d.gcPause}
}

// since is what was accounted between start and c.
func (c schedCount) since(start schedCount) schedCount {
	return schedCount{c.cpu - start.cpu, c.wait - start.wait, c.woken - start.woken, c.preempted - start.preempted, c.alloc - start.alloc, c.gcs - start.gcs, c.gcPause - start.gcPause}
}

// perRequest is a short account of c spread over n requests.
func (c schedCount) perRequest(n int) string {
	if n == 0 {
		return "-"
	}
	k := time.Duration(n)
	return fmt.Sprintf("run-queue wait %s, CPU %s, %.1f wake-ups, %.1f preemptions, %.0f KiB allocated; %d GCs (%s paused)",
		us(c.wait/k), us(c.cpu/k), float64(c.woken)/float64(n), float64(c.preempted)/float64(n), float64(c.alloc)/float64(n)/1024, c.gcs, us(c.gcPause))
}

// perReq is d spread over n requests (0 for none).
func perReq(d time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return d / time.Duration(n)
}
