package platform

import (
	"runtime/debug"
	"sync"
	"time"
)

// releaseMin is how many accounts an idle sweep must drop before the
// platform hands the freed Go heap back to the OS (see releaser).
const releaseMin = 64

// releaseSettle is how long the releaser waits after the drops that armed
// it: the runtime reports an idle account (OnIdle) before it closes the
// account's last instances in the same sweep, and those instances' memory
// is what is worth returning.
const releaseSettle = time.Second

// releaser returns the memory that a large idle sweep freed to the OS.
//
// An instance's linear memory is unmapped when it closes, but its Go-side
// structures (wazero's tables and function references, about 0.2 MiB per
// instance of the example app) become garbage on the Go heap. A server that
// goes idle allocates almost nothing, so the GC does not run until its
// two-minute forced cycle, and the scavenger then returns the free pages
// slowly: after 1,000 tenants went idle, the process stayed at 3.5× its
// resident memory before serving (349 MiB against 101 MiB, unchanged 35 s
// later); with the release it is at 108 MiB a few seconds after the sweep
// (go run ./bench -scenario idle-memory -tenants 1000, row "RSS after
// idle, not forced").
//
// So once sweeps have dropped releaseMin accounts or more, the releaser
// runs debug.FreeOSMemory (a full GC, then every free page returned)
// releaseSettle later. It measured 51 ms of wall time and 53 ms of CPU with
// the 1,000 tenants' garbage on the heap, and runs at most once per sweep
// interval (IdleTimeout/2, 30 s by default), and only after a burst of
// drops: well under 0.2% of one core even if tenants came and went in
// bursts all day. Below releaseMin the GC's own pacing is left alone.
type releaser struct {
	min     int           // drops that arm a release
	every   time.Duration // at most one release per every
	settle  time.Duration
	release func()

	mu      sync.Mutex
	pending int // accounts dropped since the last release
	timer   *time.Timer
	last    time.Time // of the last release
	closed  bool
}

func newReleaser(every time.Duration) *releaser {
	return &releaser{min: releaseMin, every: every, settle: releaseSettle, release: debug.FreeOSMemory}
}

// dropped notes that n accounts were dropped as idle, and arms a release
// when enough were.
func (r *releaser) dropped(n int) {
	if n <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending += n
	if r.closed || r.timer != nil || r.pending < r.min {
		return
	}
	r.timer = time.AfterFunc(r.delay(time.Now()), r.run)
}

// delay is how long a release armed at now waits: releaseSettle, or until
// one sweep interval after the last release. Called with r.mu held.
func (r *releaser) delay(now time.Time) time.Duration {
	if r.last.IsZero() {
		return r.settle
	}
	return max(r.settle, r.every-now.Sub(r.last))
}

func (r *releaser) run() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.pending, r.timer, r.last = 0, nil, time.Now()
	r.mu.Unlock()
	r.release()
}

// close stops a pending release; it does not wait for one that runs.
func (r *releaser) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}
