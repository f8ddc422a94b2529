package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/sdk/fn/abi"
)

const (
	hostModule       = abi.HostModule
	importCheckpoint = abi.ImportCheckpoint

	// fuel is how many function entries and loop iterations a guest runs
	// between two checkpoints (calls into the host that check the deadline
	// and give the Go scheduler a chance to run other goroutines).
	fuel = 1 << 16

	// timeSlice is how long an invocation runs before its checkpoints start
	// yielding the P to other goroutines (every checkpoint, about every
	// 100 µs of guest code, from then on). Most invocations finish well
	// within it and are never descheduled halfway; a runaway guest yields
	// as often as before once it has used it.
	timeSlice = 500 * time.Microsecond
)

// Config configures a Runtime. Zero fields take the defaults noted.
type Config struct {
	// CacheDir holds compiled machine code keyed by module digest, shared by
	// every account and kept across restarts. "" keeps it in memory only.
	CacheDir string
	// Interpreter runs guests on wazero's interpreter instead of compiling
	// them to machine code: Compile takes a fraction of the time, guests run
	// many times slower. Every guard holds on both (they are in the
	// instrumented module and the runtime, not in the engine). The Lambda
	// host uses it to serve while it compiles. Default false.
	Interpreter bool
	// Logger receives guest logs and runtime events. Default: slog.Default().
	Logger *slog.Logger
	// IdleTimeout is how long an unused instance is kept warm. Default 1m.
	// An account's own state (concurrency slots; its metrics are kept
	// compactly) is dropped by the same sweep once it has no instance left,
	// nothing in flight and no invocation for IdleTimeout/2.
	IdleTimeout time.Duration
	// OnIdle, if set, is called by the idle sweep for every account whose
	// state the sweep has just dropped, before the sweep closes the
	// account's last idle instances (so Stats().Instances reaching 0 means
	// the calls were made). It is called with no lock held, one account at a
	// time, and must not block for long. The platform uses it to drop the
	// rest of an idle account's data-plane state at the same moment; now is
	// the sweep's time (see Sweep).
	OnIdle func(acct silo.AccountID, now time.Time)
	// MaxModuleSize caps the size of a module given to Compile; it is
	// checked before the module is decoded. Default 32 MiB.
	MaxModuleSize int
	// MaxTableSize caps the declared maximum of every table. Default 65536.
	MaxTableSize uint32
	// MaxInstanceHeap caps what one instance of a module may make the host
	// allocate outside its linear memory (tables, globals, element and data
	// segments, imports; see budget.go), as estimated from the module at
	// Compile. Invoke also counts it against the function's memory limit.
	// Default 16 MiB.
	MaxInstanceHeap int
	// MaxMemoryPages caps Limits.MemoryPages (64 KiB pages). Default 4096
	// (256 MiB).
	MaxMemoryPages uint32
	// MaxCallStack caps the sum of the estimated sizes of a guest's stack
	// frames during one call (stack.go): a guest recursing deeper traps.
	// The stack a call makes the host allocate is at most 4 times this.
	// Default 2 MiB (a depth of about 3,700 for a simple recursive Go
	// function); at most 256 MiB.
	MaxCallStack int
	// Limits applies to the zero fields of Invocation.Limits.
	// Default: 512 pages (32 MiB), 10s, 16 concurrent invocations.
	Limits Limits
	// AccountConcurrency caps the invocations of one account running at
	// once, across its functions. Default 64.
	AccountConcurrency int
	// AccountCPU caps how many of one account's invocations run guest code
	// at the same moment while another account's invocations run or wait
	// to (an account alone may use every P); an invocation waiting in a
	// host call that does I/O (tables, buckets, exports, secrets) or
	// sleeping does not count. Default GOMAXPROCS-1, at least 1: one
	// account never holds every P, so other accounts' guests and the
	// gateway keep a core however many of its invocations spin.
	AccountCPU int
	// QueueWait is how long Invoke waits for a free concurrency slot (of the
	// function and of the account) before failing with silo.CodeTooMany.
	// Default 100ms.
	QueueWait time.Duration
	// MaxRequestSize and MaxResponseSize cap encoded requests, responses and
	// host-call results. Default 16 MiB each.
	MaxRequestSize  int
	MaxResponseSize int
	// SnapshotMemory caps the bytes held by snapshots of initialised
	// instances (snapshot.go): once an account's second new instance of a
	// function in a while has run its init, later new instances start from
	// a copy of it instead of running the init again. Default 128 MiB;
	// negative turns snapshots off.
	SnapshotMemory int
	// SnapshotTimeout is how long a snapshot is kept while no instance
	// starts from it or serves an invocation. Default 4×IdleTimeout.
	SnapshotTimeout time.Duration
}

// Limits bounds one function's invocations.
type Limits struct {
	MemoryPages uint32        // linear memory cap, in 64 KiB pages
	Timeout     time.Duration // per invocation, including instantiation of a cold instance
	Concurrency int           // invocations of this function in this account at once
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = time.Minute
	}
	if c.MaxModuleSize <= 0 {
		c.MaxModuleSize = 32 << 20
	}
	if c.MaxTableSize == 0 {
		c.MaxTableSize = 65536
	}
	if c.MaxInstanceHeap <= 0 {
		c.MaxInstanceHeap = 16 << 20
	}
	if c.MaxMemoryPages == 0 {
		c.MaxMemoryPages = 4096
	}
	if c.MaxCallStack <= 0 {
		c.MaxCallStack = defaultCallStack
	}
	if c.Limits.MemoryPages == 0 {
		c.Limits.MemoryPages = 512
	}
	if c.Limits.Timeout <= 0 {
		c.Limits.Timeout = 10 * time.Second
	}
	if c.Limits.Concurrency <= 0 {
		c.Limits.Concurrency = 16
	}
	if c.AccountConcurrency <= 0 {
		c.AccountConcurrency = 64
	}
	if c.AccountCPU <= 0 {
		c.AccountCPU = max(1, goruntime.GOMAXPROCS(0)-1)
	}
	if c.QueueWait <= 0 {
		c.QueueWait = 100 * time.Millisecond
	}
	if c.MaxRequestSize <= 0 {
		c.MaxRequestSize = 16 << 20
	}
	if c.MaxResponseSize <= 0 {
		c.MaxResponseSize = 16 << 20
	}
	if c.SnapshotMemory == 0 {
		c.SnapshotMemory = 128 << 20
	}
	if c.SnapshotTimeout <= 0 {
		c.SnapshotTimeout = 4 * c.IdleTimeout
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c.setDefaults()
	if c.Limits.MemoryPages > c.MaxMemoryPages {
		return silo.Errorf(silo.CodeInvalid, "runtime: default memory limit %d pages exceeds MaxMemoryPages %d; lower it or raise the cap", c.Limits.MemoryPages, c.MaxMemoryPages)
	}
	if c.MaxCallStack > maxCallStack {
		return silo.Errorf(silo.CodeInvalid, "runtime: MaxCallStack %d exceeds %d (256 MiB); lower it", c.MaxCallStack, maxCallStack)
	}
	if c.MaxMemoryPages > 65536 {
		return silo.Errorf(silo.CodeInvalid, "runtime: MaxMemoryPages %d exceeds the 4 GiB wasm32 limit (65536 pages)", c.MaxMemoryPages)
	}
	return nil
}

// Runtime runs function modules. It is safe for concurrent use.
type Runtime struct {
	cfg   Config
	cache wazero.CompilationCache

	mu        sync.Mutex
	engines   map[uint32]*engine // by linear memory limit in pages
	artifacts map[string]*artifact
	pools     map[poolKey]*pool
	accounts  map[silo.AccountID]*account
	frozen    map[silo.AccountID]*frozenMetrics // metrics of dropped accounts
	closed    bool

	cacheMu sync.RWMutex // compilations (read) against a skeleton's (write): engine.compiled1

	live atomic.Int64 // instances alive, busy or idle
	mem  *memPool     // linear memories of closed instances, for reuse
	snap *snapStore   // snapshots of initialised instances
	cpus *cpus        // the accounts' CPU shares

	stop chan struct{}
	done chan struct{}
}

// engine is one wazero runtime; there is one per distinct memory limit
// because wazero sets the limit per runtime. All share one compilation cache.
type engine struct {
	rt       wazero.Runtime
	cacheDir string        // Config.CacheDir
	cacheMu  *sync.RWMutex // the Runtime's: write-locked by a skeleton's compilation (compiled1)

	mu        sync.Mutex
	compiled  map[string]wazero.CompiledModule
	compiling map[string]*compilation // by digest (+"/skeleton"): under way

	// life orders compiling and instantiating (read side) before closing
	// (write side): wazero's runtime must not be closed while it compiles
	// or instantiates (its store's maps are dropped under the call).
	life   sync.RWMutex
	closed bool
}

// errShutdown is the error of work that reaches an engine once Close has
// closed it.
var errShutdown = silo.Errorf(silo.CodeUnavailable, "the function runtime is shutting down; try again")

// errNoCode: the compilation cache holds no machine code for a skeleton
// (skeleton.go) on this machine.
var errNoCode = silo.Errorf(silo.CodeUnavailable, "the compilation cache holds no machine code for the prepared module on this machine (it was compiled for another CPU or wazero version); compile the module")

// compileHook, if set, runs before each compilation; tests use it to
// close the runtime while a compilation is under way.
var compileHook func()

// close closes the engine's wazero runtime once no compilation or
// instantiation is under way.
func (e *engine) close(ctx context.Context) error {
	e.life.Lock()
	defer e.life.Unlock()
	e.closed = true
	return e.rt.Close(ctx)
}

// instantiate instantiates cm unless the engine is closed.
func (e *engine) instantiate(ctx context.Context, cm wazero.CompiledModule, mc wazero.ModuleConfig) (api.Module, error) {
	e.life.RLock()
	defer e.life.RUnlock()
	if e.closed {
		return nil, errShutdown
	}
	return e.rt.InstantiateModule(ctx, cm, mc)
}

type artifact struct {
	digest    string
	wasm      []byte // instrumented
	skeleton  bool   // wasm is a skeleton: compile only from the cache (skeleton.go)
	dataEnd   uint64 // end of the data segments: prefaulted at instantiation
	hostPages uint32 // hostBytes in pages, taken off the memory limit
	minPages  uint32 // the memory's declared minimum
	// restart: instances may start from a snapshot (snapshot.go); globals
	// names the exports of the module's mutable globals.
	restart bool
	globals []string
	// data: the data segments to map into a new memory instead of
	// running exportInitData (memory_data.go), or nil; segs: what
	// restartable found, until load makes data of them.
	data *dataImage
	segs []dataSeg
}

type poolKey struct {
	acct   silo.AccountID
	fn     string
	digest string
	lim    Limits
	clock  bool
}

type pool struct {
	idle []*instance
}

// New returns a Runtime. Close it to free its instances and background
// goroutine.
//
// # Errors
//
// CodeInvalid if cfg does not validate; an internal error if CacheDir cannot
// be used.
func New(cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	r := &Runtime{
		cfg:       cfg,
		engines:   map[uint32]*engine{},
		artifacts: map[string]*artifact{},
		pools:     map[poolKey]*pool{},
		accounts:  map[silo.AccountID]*account{},
		frozen:    map[silo.AccountID]*frozenMetrics{},
		mem:       newMemPool(),
		snap:      newSnapStore(max(cfg.SnapshotMemory, 0)),
		cpus:      &cpus{shared: cfg.AccountCPU, alone: max(cfg.AccountCPU, goruntime.GOMAXPROCS(0))},
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("open compilation cache %s: %w", cfg.CacheDir, err)
		}
		r.cache = c
	} else {
		r.cache = wazero.NewCompilationCache()
	}
	go r.reaper()
	return r, nil
}

// Close closes every instance and the compiled code. An invocation whose
// guest is running fails (CodeUnavailable) when the guest returns or its
// deadline stops it; until then the guest runs on its own memory, which
// is released then. Close is idempotent.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mem.close() // instances closed from here on unmap their memories at once
	r.snap.close()
	pools := r.pools
	r.pools = map[poolKey]*pool{}
	engines := r.engines
	r.mu.Unlock()
	close(r.stop)
	<-r.done
	for _, p := range pools {
		for _, in := range p.idle {
			r.evict(ctx, in)
		}
	}
	var errs []error
	for _, e := range engines {
		errs = append(errs, e.close(ctx))
	}
	errs = append(errs, r.cache.Close(ctx))
	return errors.Join(errs...)
}

func (r *Runtime) engine(ctx context.Context, pages uint32) (*engine, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, silo.Errorf(silo.CodeUnavailable, "the function runtime is shutting down; try again")
	}
	if e := r.engines[pages]; e != nil {
		return e, nil
	}
	rc := wazero.NewRuntimeConfigCompiler()
	if r.cfg.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	rc = rc.WithCompilationCache(r.cache).
		WithMemoryLimitPages(pages).
		WithCloseOnContextDone(false) // our own checkpoints stop guests; see doc.go
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("instantiate wasi: %w", err)
	}
	if err := r.instantiateHost(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("instantiate host module: %w", err)
	}
	e := &engine{rt: rt, cacheDir: r.cfg.CacheDir, cacheMu: &r.cacheMu, compiled: map[string]wazero.CompiledModule{}, compiling: map[string]*compilation{}}
	r.engines[pages] = e
	return e, nil
}

// compiled1 returns the engine's compiled module of a, compiling it if
// need be. One compilation runs per module and engine, on a goroutine of
// its own; every caller asking for the module meanwhile waits for it, each
// until its own ctx is done, and the compilation goes on for the others.
// Compilations of different modules run at once (wazero's Runtime compiles
// concurrently: its hammer tests do so), except a skeleton's, which runs
// alone in the runtime (skeleton.go: it checks that the cache directory did
// not change under it).
//
// # Errors
//
// errShutdown once the engine is closed; CodeUnavailable, wrapping ctx's
// error, when ctx ends first; errNoCode, or the compilation's error.
func (e *engine) compiled1(ctx context.Context, a *artifact) (wazero.CompiledModule, error) {
	e.life.RLock()
	closed := e.closed
	e.life.RUnlock()
	if closed {
		return nil, errShutdown
	}
	key := a.digest
	if a.skeleton {
		key += "/skeleton"
	}
	e.mu.Lock()
	if cm := e.compiled[a.digest]; cm != nil {
		e.mu.Unlock()
		return cm, nil
	}
	f := e.compiling[key]
	if f == nil {
		f = &compilation{done: make(chan struct{})}
		e.compiling[key] = f
		go e.compile(context.WithoutCancel(ctx), a, key, f)
	}
	e.mu.Unlock()
	select {
	case <-f.done:
		return f.cm, f.err
	case <-ctx.Done():
		return nil, &silo.Error{Code: silo.CodeUnavailable, Message: "the function module is still being compiled; try again shortly",
			Err: fmt.Errorf("wait for the compilation of %.12s: %w", a.digest, ctx.Err())}
	}
}

// compilation is one compilation of a module by an engine; done is closed
// once cm or err is set.
type compilation struct {
	done chan struct{}
	cm   wazero.CompiledModule
	err  error
}

// compile compiles a for f and keeps the module, which then serves every
// later caller.
func (e *engine) compile(ctx context.Context, a *artifact, key string, f *compilation) {
	defer close(f.done)
	f.cm, f.err = e.compileModule(ctx, a)
	e.mu.Lock()
	delete(e.compiling, key)
	if f.err == nil {
		e.compiled[a.digest] = f.cm
	}
	e.mu.Unlock()
}

func (e *engine) compileModule(ctx context.Context, a *artifact) (wazero.CompiledModule, error) {
	e.life.RLock()
	defer e.life.RUnlock()
	if e.closed {
		return nil, errShutdown
	}
	if a.skeleton {
		e.cacheMu.Lock()
		defer e.cacheMu.Unlock()
	} else {
		e.cacheMu.RLock()
		defer e.cacheMu.RUnlock()
	}
	if compileHook != nil {
		compileHook()
	}
	var before cacheState
	if a.skeleton {
		var err error
		if before, err = readCacheState(e.cacheDir); err != nil {
			return nil, err
		}
	}
	cm, err := e.rt.CompileModule(ctx, a.wasm)
	if err != nil {
		return nil, err
	}
	if a.skeleton {
		if same, err := before.unchanged(e.cacheDir); !same || err != nil {
			cm.Close(ctx)
			return nil, errors.Join(errNoCode, err, before.forget(e.cacheDir))
		}
	}
	return cm, nil
}
