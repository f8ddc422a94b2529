package runtime

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/sdk/fn/abi"
)

// instance is one instantiated module, used by one invocation at a time.
type instance struct {
	key       poolKey
	mod       api.Module
	alloc     api.Function
	stackLeft api.MutableGlobal // the call stack budget left (stack.go)
	handlers  map[string]api.Function
	stack     [2]uint64
	buf       []byte
	call      atomic.Pointer[call] // the invocation running, for nanosleep
	mem       heldMemory           // the linear memory, if it must be held (heldMemory); used by the worker only
	lastUsed  time.Time
	snap      *snapshot // the snapshot it started from or gave; release marks it used
	logw      *logWriter
	jobs      chan *job     // to the worker; closed on eviction
	done      chan struct{} // from the worker: the job finished
}

// take returns an idle instance of key, or a new one whose worker will
// instantiate it on its first job.
func (r *Runtime) take(key poolKey) (*instance, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, silo.Errorf(silo.CodeUnavailable, "the function runtime is shutting down; try again")
	}
	if p := r.pools[key]; p != nil && len(p.idle) > 0 {
		in := p.idle[len(p.idle)-1]
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		return in, nil
	}
	in := &instance{key: key, handlers: map[string]api.Function{}, jobs: make(chan *job, 1), done: make(chan struct{}, 1)}
	go r.worker(in)
	return in, nil
}

func (r *Runtime) instantiate(ctx context.Context, in *instance, a *artifact, c *call) error {
	key := in.key
	e, err := r.engine(ctx, linearPages(a, key.lim))
	if err != nil {
		return err
	}
	cm, err := e.compiled1(ctx, a)
	if silo.ErrorCode(err) == silo.CodeUnavailable {
		return err // shutting down, or the invocation ended while the module is being compiled
	}
	if err != nil {
		return fmt.Errorf("compile %.12s: %w", a.digest, err)
	}
	in.call.Store(c)
	logw := &logWriter{rt: r, acct: key.acct, fn: key.fn, in: in}
	in.logw = logw
	skey := snapKey{acct: key.acct, digest: a.digest, pages: linearPages(a, key.lim), clock: key.clock}
	var snap *snapshot
	if a.restart {
		if snap = r.snap.take(skey, time.Now()); snap != nil {
			defer r.snap.done(snap)
		}
	}
	mc := wazero.NewModuleConfig().
		WithName("").
		WithStdout(logw).WithStderr(logw).
		WithRandSource(rand.Reader).
		WithSysNanotime().
		WithNanosleep(in.nanosleep).
		WithOsyield(func() {})
	prefault := a.dataEnd
	var fill func(experimental.LinearMemory)
	var filled chan bool // from snap.prefill, if the allocator ran it
	switch {
	case snap != nil: // memory and globals come from the snapshot
		mc, prefault = mc.WithStartFunctions(), 0
		fill = func(m experimental.LinearMemory) {
			filled = make(chan bool, 1)
			snap.prefill(m, filled)
		}
	case a.data != nil: // the allocator writes the data segments in
		mc, prefault, fill = mc.WithStartFunctions(abi.ExportInitialize), 0, a.data.writeTo
	case a.restart: // the data segments are copied by exportInitData
		mc = mc.WithStartFunctions(exportInitData, abi.ExportInitialize)
	default:
		mc = mc.WithStartFunctions(abi.ExportInitialize)
	}
	if key.clock {
		mc = mc.WithSysWalltime()
	}
	mod, err := e.instantiate(withMemoryAllocator(ctx, r.mem, prefault, fill, func(m heldMemory) { in.mem = m }), cm, mc)
	prefilled := filled != nil && <-filled // before anything uses or frees the memory
	if errors.Is(err, errShutdown) {
		return err
	}
	if err != nil {
		if c.stopped {
			return failure(silo.CodeUnavailable, err, "function %q timed out (limit %s) while starting; make its initialization faster or raise its timeout", key.fn, key.lim.Timeout)
		}
		return failure(silo.CodeInternal, err, "function %q failed to start (its init panicked, trapped or ran out of memory); see its logs", key.fn)
	}
	switch {
	case snap != nil:
		if err := snap.restore(mod, in.mem, a.globals, prefilled); err != nil {
			mod.Close(ctx)
			return fmt.Errorf("instance of %.12s from its snapshot: %w", a.digest, err)
		}
		r.snap.starts.Add(1)
		in.snap = snap
	case a.restart && r.snap.wants(skey, time.Now()):
		// Right after init, before any request: see snapshot.go.
		if s, err := capture(mod, in.mem, a.globals); err != nil {
			r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "no snapshot of the new instance", slog.String("account", string(key.acct)),
				slog.String("function", key.fn), slog.String("error", err.Error()))
		} else {
			r.snap.put(skey, s, time.Now())
			in.snap = s
		}
	}
	stackLeft, _ := mod.ExportedGlobal(stackExport).(api.MutableGlobal)
	if stackLeft == nil {
		mod.Close(ctx)
		return fmt.Errorf("instance of %.12s: no %s global", a.digest, stackExport)
	}
	in.mod = mod
	in.alloc = mod.ExportedFunction(abi.ExportAlloc)
	in.stackLeft = stackLeft
	r.live.Add(1)
	return nil
}

// linearPages is the linear memory an instance of a may grow to under lim:
// the memory limit less what the module makes the host allocate besides
// (budget.go), so that both together stay within the limit.
func linearPages(a *artifact, lim Limits) uint32 {
	if a.hostPages >= lim.MemoryPages {
		return 0
	}
	return lim.MemoryPages - a.hostPages
}

// nanosleep serves the guest's sleeps (time.Sleep, idle scheduler waits) and
// wakes up when the invocation's deadline passes.
func (in *instance) nanosleep(ns int64) {
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	var done <-chan struct{}
	if c := in.call.Load(); c != nil {
		done = c.done
		// A sleeping guest uses no CPU: its account's other invocations
		// may run meanwhile. Past the deadline the next checkpoint stops it.
		c.leaveCPU()
		defer func() {
			if !c.takeCPU() {
				c.stopped = true
			}
		}()
	}
	select {
	case <-t.C:
	case <-done:
	}
}

func (r *Runtime) release(key poolKey, in *instance) {
	in.lastUsed = time.Now()
	if in.snap != nil {
		in.snap.used.Store(in.lastUsed.UnixNano())
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.evict(context.Background(), in)
		return
	}
	p := r.pools[key]
	if p == nil {
		p = &pool{}
		r.pools[key] = p
	}
	p.idle = append(p.idle, in)
	r.mu.Unlock()
}

// discard closes an instance. It is called once per instance: by its worker
// after a bad or abandoned invocation, or for an idle instance (by sweep or
// Close), which also ends its worker.
func (r *Runtime) discard(ctx context.Context, in *instance) {
	if in.mod != nil {
		in.mod.Close(ctx)
		r.live.Add(-1)
	}
}

// evict discards an idle instance and ends its worker.
func (r *Runtime) evict(ctx context.Context, in *instance) {
	r.discard(ctx, in)
	close(in.jobs)
}

func (r *Runtime) reaper() {
	defer close(r.done)
	period := r.cfg.IdleTimeout / 2
	if period < 10*time.Millisecond {
		period = 10 * time.Millisecond
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.sweep(now)
		}
	}
}

// Sweep runs the idle sweep at once, as if the time were now: it closes
// instances idle since before now-IdleTimeout and drops the state of idle
// accounts (see Config.IdleTimeout and OnIdle). The runtime runs it by
// itself every IdleTimeout/2; tests call it with a time in the future.
func (r *Runtime) Sweep(now time.Time) { r.sweep(now) }

// sweep closes instances idle since before now-IdleTimeout, and drops the
// state of accounts left with no instance, nothing in flight and no
// invocation since now-IdleTimeout/2 (keeping their metrics compactly).
func (r *Runtime) sweep(now time.Time) {
	cutoff := now.Add(-r.cfg.IdleTimeout)
	var old []*instance
	var dropped []silo.AccountID
	r.mu.Lock()
	warm := make(map[silo.AccountID]bool, len(r.pools))
	for k, p := range r.pools {
		p.idle, old = removeOld(p.idle, old, func(in *instance) time.Time { return in.lastUsed }, cutoff)
		if len(p.idle) == 0 {
			delete(r.pools, k)
		} else {
			warm[k.acct] = true
		}
	}
	acctCutoff := now.Add(-r.cfg.IdleTimeout / 2)
	for id, a := range r.accounts {
		if !warm[id] && a.idle(acctCutoff) {
			// A fresh key: the map's was allocated with a request, and
			// would keep that request's memory (and a heap span) alive.
			r.frozen[silo.AccountID(strings.Clone(string(id)))] = a.metrics.freeze()
			delete(r.accounts, id)
			dropped = append(dropped, id)
		}
	}
	r.mu.Unlock()
	if r.cfg.OnIdle != nil {
		for _, id := range dropped {
			r.cfg.OnIdle(id, now)
		}
	}
	// Memories recycled by the previous sweep or earlier and not taken
	// since go back to the system; this sweep's evictions refill the pool.
	r.mem.trim(now.Add(-r.cfg.IdleTimeout / 4))
	r.snap.trim(now.Add(-r.cfg.SnapshotTimeout))
	for _, in := range old {
		r.evict(context.Background(), in)
	}
}

// Evict closes acct's idle instances now and returns how many it closed;
// instances running an invocation are kept. The account's next invocation
// starts a new instance. The probe suite uses it to start an instance on
// the memory another account's closed instance left (see memPool).
func (r *Runtime) Evict(acct silo.AccountID) int {
	var old []*instance
	r.mu.Lock()
	for k, p := range r.pools {
		if k.acct == acct {
			old = append(old, p.idle...)
			delete(r.pools, k)
		}
	}
	r.mu.Unlock()
	for _, in := range old {
		r.evict(context.Background(), in)
	}
	return len(old)
}

// removeOld removes from s, in place and keeping the order, the items whose
// time is before cutoff, and appends them to old.
func removeOld[T any](s, old []T, at func(T) time.Time, cutoff time.Time) (kept, removed []T) {
	keep := s[:0]
	for _, v := range s {
		if at(v).Before(cutoff) {
			old = append(old, v)
		} else {
			keep = append(keep, v)
		}
	}
	clear(s[len(keep):])
	return keep, old
}

// Stats describes the instances a Runtime holds.
type Stats struct {
	Instances      int                    // alive, busy or idle
	Idle           int                    // warm and unused
	Modules        int                    // compiled artifacts
	Accounts       int                    // accounts holding per-account state (not dropped as idle)
	PooledMemories int                    // linear memories of closed instances kept, zeroed, for new ones
	Snapshots      int                    // snapshots of initialised instances kept for new ones
	SnapshotStarts int64                  // instances started from a snapshot so far
	IdlePerAccount map[silo.AccountID]int // idle instances per account
}

// Stats returns a snapshot of the instances held. An account with no recent
// invocation holds none.
func (r *Runtime) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Instances: int(r.live.Load()), Modules: len(r.artifacts), Accounts: len(r.accounts), PooledMemories: r.mem.len(), Snapshots: r.snap.len(), SnapshotStarts: r.snap.starts.Load(), IdlePerAccount: map[silo.AccountID]int{}}
	for k, p := range r.pools {
		s.Idle += len(p.idle)
		s.IdlePerAccount[k.acct] += len(p.idle)
	}
	return s
}

// logWriter routes a guest's stdout and stderr to the log, one record per
// write, clipped, with the request ID of the invocation running (so a
// panic's output is found by the ID the client got).
type logWriter struct {
	rt   *Runtime
	acct silo.AccountID
	fn   string
	in   *instance    // its current call names the request
	n    atomic.Int32 // writes in the current invocation; reset by the worker
}

// maxLogLines bounds the log lines (stdio writes plus log host calls) one
// invocation may produce; the rest are dropped, with one line saying so.
const maxLogLines = 1000

func (w *logWriter) Write(p []byte) (int, error) {
	switch n := w.n.Add(1); {
	case n == maxLogLines+1:
		p = []byte("further output of this invocation dropped (over 1000 lines)")
	case n > maxLogLines:
		return len(p), nil
	}
	msg := strings.TrimRight(string(p[:min(len(p), 4096)]), "\n")
	if msg != "" {
		var rid string
		if c := w.in.call.Load(); c != nil {
			rid = c.reqID
		}
		w.rt.cfg.Logger.LogAttrs(context.Background(), slog.LevelInfo, msg,
			slog.String("account", string(w.acct)), slog.String("function", w.fn), slog.String("request_id", rid), slog.String("stream", "stdio"))
	}
	return len(p), nil
}
