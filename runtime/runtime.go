package runtime

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

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

	live atomic.Int64 // instances alive, busy or idle
	mem  *memPool     // linear memories of closed instances, for reuse
	cpus *cpus        // the accounts' CPU shares

	stop chan struct{}
	done chan struct{}
}

// engine is one wazero runtime; there is one per distinct memory limit
// because wazero sets the limit per runtime. All share one compilation cache.
type engine struct {
	rt       wazero.Runtime
	mu       sync.Mutex
	compiled map[string]wazero.CompiledModule
}

type artifact struct {
	digest    string
	wasm      []byte // instrumented
	dataEnd   uint64 // end of the data segments: prefaulted at instantiation
	hostPages uint32 // hostBytes in pages, taken off the memory limit
	minPages  uint32 // the memory's declared minimum
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
		errs = append(errs, e.rt.Close(ctx))
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
	rc := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(r.cache).
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
	e := &engine{rt: rt, compiled: map[string]wazero.CompiledModule{}}
	r.engines[pages] = e
	return e, nil
}

func (e *engine) compiled1(ctx context.Context, a *artifact) (wazero.CompiledModule, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cm := e.compiled[a.digest]; cm != nil {
		return cm, nil
	}
	cm, err := e.rt.CompileModule(ctx, a.wasm)
	if err != nil {
		return nil, err
	}
	e.compiled[a.digest] = cm
	return cm, nil
}

// Digest returns the artifact digest of a module: the lower-case hex SHA-256
// of its bytes, as Compile and internal/build compute it.
func Digest(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return hex.EncodeToString(sum[:])
}

// Compile validates a module, instruments it and compiles it to machine code,
// which is cached on disk (CacheDir) by digest and shared by every account.
// It returns the module's digest, which names it in Invocation.Digest.
// Compiling a module already compiled is cheap. Call it at deploy, never on
// the request path.
//
// # Errors
//
// CodeInvalid, listing every finding, when the module is too large (checked
// before decoding), is not wasm, imports anything outside the "silo" host
// module and the allowed WASI calls, declares a table without a maximum that
// it grows or a table or memory above the caps, would make the host
// allocate more than Config.MaxInstanceHeap per instance or has more
// functions, types, locals or block nesting than the compile-time caps
// (budget.go), has a function whose one frame is estimated above
// Config.MaxCallStack (stack.go), names a local or global it does not
// declare, uses instructions the instrumenter does not know (threads),
// or lacks the silo exports.
// CodeUnavailable after Close.
func (r *Runtime) Compile(ctx context.Context, wasm []byte) (string, error) {
	if len(wasm) > r.cfg.MaxModuleSize {
		return "", silo.Errorf(silo.CodeInvalid, "function module is %d bytes, over the %d byte limit; make it smaller (e.g. build with -ldflags=-s, drop dependencies)", len(wasm), r.cfg.MaxModuleSize)
	}
	digest := Digest(wasm)
	r.mu.Lock()
	_, ok := r.artifacts[digest]
	r.mu.Unlock()
	if ok {
		return digest, nil
	}
	m, err := parseModule(wasm)
	if err != nil {
		return "", silo.Errorf(silo.CodeInvalid, "function module is not valid wasm: %v; build it with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared", err)
	}
	inst, err := instrument(m, fuel, int32(r.cfg.MaxCallStack))
	if err != nil {
		return "", silo.Errorf(silo.CodeInvalid, "function module cannot be instrumented: %v", err)
	}
	if err := r.validate(m); err != nil {
		return "", err
	}
	a := &artifact{digest: digest, wasm: inst, dataEnd: dataEnd(m), hostPages: hostPages(hostBytes(m))}
	if len(m.memories) == 1 {
		a.minPages = uint32(m.memories[0].min)
	}
	e, err := r.engine(ctx, r.cfg.Limits.MemoryPages)
	if err != nil {
		return "", err
	}
	cm, err := e.compiled1(ctx, a)
	if err != nil {
		return "", silo.Errorf(silo.CodeInvalid, "function module does not compile: %v", err)
	}
	if err := checkExports(cm); err != nil {
		return "", err
	}
	r.mu.Lock()
	r.artifacts[digest] = a
	r.mu.Unlock()
	return digest, nil
}

// allowedWASI are the WASI calls Go's wasip1 port needs. Without preopened
// directories, sockets or stdin they reach nothing: fd_write goes to the log,
// random_get to crypto/rand, clocks as documented in doc.go.
var allowedWASI = map[string]bool{
	"args_get": true, "args_sizes_get": true, "environ_get": true, "environ_sizes_get": true,
	"clock_time_get": true, "clock_res_get": true, "random_get": true,
	"proc_exit": true, "sched_yield": true, "poll_oneoff": true,
	"fd_write": true, "fd_read": true, "fd_close": true, "fd_seek": true,
	"fd_fdstat_get": true, "fd_fdstat_set_flags": true, "fd_filestat_get": true,
	"fd_prestat_get": true, "fd_prestat_dir_name": true,
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostSigs are the signatures of the silo host imports.
var hostSigs = map[string]funcType{
	abi.ImportTake:       sig(2, i64),
	abi.ImportKVGet:      sig(6, i64),
	abi.ImportKVPut:      sig(6, i64),
	abi.ImportKVDelete:   sig(4, i64),
	abi.ImportKVScan:     sig(9, i64),
	abi.ImportBlobGet:    sig(6, i64),
	abi.ImportBlobPut:    sig(6, i64),
	abi.ImportBlobDelete: sig(4, i64),
	abi.ImportBlobList:   sig(7, i64),
	abi.ImportConfigGet:  sig(4, i64),
	abi.ImportSecretGet:  sig(4, i64),
	abi.ImportExportGet:  sig(6, i64),
	abi.ImportExportScan: sig(9, i64),
	abi.ImportLog:        sig(5, 0),
	abi.ImportLogEnabled: sig(1, i32),
}

func sig(nI32 int, result byte) funcType {
	t := funcType{params: []byte(strings.Repeat(string(rune(i32)), nI32))}
	if result != 0 {
		t.results = []byte{result}
	}
	return t
}

func (t funcType) String() string {
	name := func(b []byte) string {
		var s []string
		for _, c := range b {
			s = append(s, api.ValueTypeName(c))
		}
		return "(" + strings.Join(s, ",") + ")"
	}
	return name(t.params) + "->" + name(t.results)
}

func (r *Runtime) validate(m *module) error {
	var findings []string
	add := func(format string, args ...any) { findings = append(findings, fmt.Sprintf(format, args...)) }
	for _, im := range m.imports {
		what := im.module + "." + im.name
		if im.kind != 0 {
			add("imports %s, which is not a function; modules may import only functions", what)
			continue
		}
		switch im.module {
		case hostModule:
			want, ok := hostSigs[im.name]
			if !ok {
				add("imports %s, which silo does not provide", what)
				continue
			}
			if int(im.typ) >= len(m.types) {
				add("imports %s with a bad type index", what)
				continue
			}
			if got := m.types[im.typ]; string(got.params) != string(want.params) || string(got.results) != string(want.results) {
				add("imports %s with signature %v, want %v; rebuild with the current sdk/fn", what, got, want)
			}
		case "wasi_snapshot_preview1":
			if !allowedWASI[im.name] {
				add("imports WASI %s, which functions may not use (no files, sockets or other capabilities are granted)", im.name)
			}
		default:
			add("imports %s from module %q; only %q and the basic WASI calls are available", what, im.module, hostModule)
		}
	}
	if len(m.memories) > 1 {
		add("declares %d memories; at most one is allowed", len(m.memories))
	}
	for _, l := range m.memories {
		if l.min > uint64(r.cfg.MaxMemoryPages) {
			add("needs %d memory pages at start, over the %d page cap", l.min, r.cfg.MaxMemoryPages)
		}
	}
	for i, l := range m.tables {
		switch {
		case l.min > uint64(r.cfg.MaxTableSize):
			add("table %d starts with %d entries, over the %d cap", i, l.min, r.cfg.MaxTableSize)
		case l.hasMax && l.max > uint64(r.cfg.MaxTableSize):
			add("table %d may grow to %d entries, over the %d cap; declare a smaller maximum", i, l.max, r.cfg.MaxTableSize)
		case !l.hasMax && m.growsTable(uint32(i)):
			add("table %d has no maximum and the module grows it (table.grow); declare a maximum of at most %d", i, r.cfg.MaxTableSize)
		}
	}
	r.checkBudget(m, add)
	if len(findings) > 0 {
		return silo.Errorf(silo.CodeInvalid, "function module refused: %s", strings.Join(findings, "; "))
	}
	return nil
}

func checkExports(cm wazero.CompiledModule) error {
	var findings []string
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		findings = append(findings, `it does not export its memory as "memory"`)
	}
	if _, ok := cm.ExportedFunctions()["_start"]; ok {
		findings = append(findings, "it is a command module (exports _start); build it with -buildmode=c-shared")
	}
	f, ok := cm.ExportedFunctions()[abi.ExportAlloc]
	if !ok || !sameTypes(f.ParamTypes(), []api.ValueType{i32}) || !sameTypes(f.ResultTypes(), []api.ValueType{i32}) {
		findings = append(findings, "it does not export silo_alloc(i32) i32")
	}
	if len(findings) > 0 {
		return silo.Errorf(silo.CodeInvalid, "function module refused: %s; build it with sdk/fn", strings.Join(findings, "; "))
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool { return string(a) == string(b) }

// Invocation is one call of a function.
type Invocation struct {
	Account  silo.AccountID
	Function string // the function's name in the stack
	Digest   string // from Compile
	Handler  string // export to call; default "handle"
	Limits   Limits // zero fields take Config.Limits
	// WallClock grants the real wall clock. Without it the guest's time.Now
	// reads a fixed date (2022-01-01) and only the monotonic clock is real.
	WallClock bool
	// Release, if set, is the release the account serves the invocation
	// under; its metrics are kept per release too (Runtime.ReleaseMetrics).
	Release string
	// Host is the account's data plane, already scoped and authorized.
	Host    Host
	Request Request
}

// Request is the HTTP-shaped request given to the guest.
type Request struct {
	ID     string // request ID; attached to every guest log line
	Method string
	Path   string
	Params map[string]string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Response is the guest's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Invoke runs one request through a warm or new instance of the function in
// the account's sandbox. Instances are pooled per (account, function, digest,
// limits) and never shared across accounts or digests.
//
// Invoke returns by the invocation's deadline (the earlier of ctx's and
// Limits.Timeout) even if the guest or a host call is stuck; a stuck guest is
// stopped at its next checkpoint and its instance discarded, and until it has
// stopped it holds its concurrency slots.
//
// # Errors
//
// CodeInvalid for a bad invocation, a handler the module does not export, or
// a memory limit too small for the module's host allocations (budget.go)
// plus its initial memory;
// CodeNotFound for a digest not compiled by this Runtime; CodeTooMany when the
// function's (Limits.Concurrency) or the account's (Config.AccountConcurrency)
// concurrency cap stays full for Config.QueueWait; CodeUnavailable
// when the invocation times out or the runtime is closing; CodeInternal
// (message safe to show) when the guest traps, exits or runs out of memory.
// A response with status 500 is not an error.
func (r *Runtime) Invoke(ctx context.Context, inv Invocation) (Response, error) {
	start := time.Now()
	if inv.Account == "" || inv.Function == "" || inv.Host == nil {
		return Response{}, silo.Errorf(silo.CodeInvalid, "runtime: invocation needs an account, a function name and a host")
	}
	if inv.Handler == "" {
		inv.Handler = abi.ExportHandle
	}
	lim := inv.Limits
	if lim.MemoryPages == 0 {
		lim.MemoryPages = r.cfg.Limits.MemoryPages
	}
	if lim.Timeout <= 0 {
		lim.Timeout = r.cfg.Limits.Timeout
	}
	if lim.Concurrency <= 0 {
		lim.Concurrency = r.cfg.Limits.Concurrency
	}
	if lim.MemoryPages > r.cfg.MaxMemoryPages {
		return Response{}, silo.Errorf(silo.CodeInvalid, "function %q asks for %d memory pages, over the %d page cap", inv.Function, lim.MemoryPages, r.cfg.MaxMemoryPages)
	}
	acct := r.account(inv.Account)
	resp, err := r.invoke(ctx, acct, inv, lim)
	acct.metrics.record(inv.Release, time.Since(start), len(inv.Request.Body), len(resp.Body), resp.Status, err)
	r.unref(acct)
	return resp, err
}

func (r *Runtime) invoke(ctx context.Context, acct *account, inv Invocation, lim Limits) (Response, error) {
	r.mu.Lock()
	a := r.artifacts[inv.Digest]
	r.mu.Unlock()
	if a == nil {
		return Response{}, silo.Errorf(silo.CodeNotFound, "function %q: module %.12s is not loaded; deploy (compile) it first", inv.Function, inv.Digest)
	}
	if linearPages(a, lim) < max(a.minPages, 1) {
		return Response{}, silo.Errorf(silo.CodeInvalid, "function %q needs %d KiB of host memory for its tables, globals and segments plus %d KiB of linear memory, over its memory limit of %d KiB; raise its memory or declare smaller tables",
			inv.Function, a.hostPages*64, a.minPages*64, lim.MemoryPages*64)
	}
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()

	sem, err := r.acquireSlots(ctx, acct, inv, lim)
	if err != nil {
		return Response{}, err
	}

	// The job, its call and its copy of the invocation are one allocation.
	now := time.Now()
	j := &job{inv: inv, art: a, sem: sem}
	j.c = &j.call
	c := j.c
	*c = call{
		rt: r, host: inv.Host, acct: inv.Account, fn: inv.Function, reqID: inv.Request.ID,
		cpu: &acct.cpu, done: ctx.Done(), deadline: now.Add(lim.Timeout), yieldAt: now.Add(timeSlice),
	}
	if d, ok := ctx.Deadline(); ok && d.Before(c.deadline) {
		c.deadline = d
	}
	key := poolKey{acct: inv.Account, fn: inv.Function, digest: inv.Digest, lim: lim, clock: inv.WallClock}
	in, err := r.take(key)
	if err != nil {
		sem.release()
		return Response{}, err
	}
	j.ctx = context.WithValue(ctx, callKey{}, c)
	in.jobs <- j
	select {
	case <-in.done:
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobRunning, jobAbandoned) {
			// The worker stops the guest at its next checkpoint (or when a
			// stuck host call returns), then discards the instance and
			// frees the slot.
			return Response{}, r.ctxError(ctx, inv, lim)
		}
		<-in.done // finished just now
	}
	if j.err == nil && !c.stopped {
		r.release(key, in)
	}
	return j.resp, j.err
}

// slots are the two concurrency slots an invocation holds: one of its
// function's (Limits.Concurrency) and one of its account's
// (Config.AccountConcurrency).
type slots struct{ fn, acct chan struct{} }

func (s slots) release() {
	<-s.fn
	<-s.acct
}

// acquireSlots takes a function slot and an account slot, waiting at most
// Config.QueueWait for both.
func (r *Runtime) acquireSlots(ctx context.Context, acct *account, inv Invocation, lim Limits) (slots, error) {
	s := slots{fn: acct.sem(inv.Function, lim.Concurrency), acct: acct.all}
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	// The message naming the full cap is formatted only when the wait
	// times out, not on every invocation.
	take := func(ch chan struct{}, fnCap bool, n int) error {
		select {
		case ch <- struct{}{}:
			return nil
		default:
		}
		if t == nil {
			t = time.NewTimer(r.cfg.QueueWait)
		}
		select {
		case ch <- struct{}{}:
			return nil
		case <-t.C:
			what := "account " + string(inv.Account)
			if fnCap {
				what = fmt.Sprintf("function %q of account %s", inv.Function, inv.Account)
			}
			return silo.Errorf(silo.CodeTooMany, "%s is running %d invocations already; retry later", what, n)
		case <-ctx.Done():
			return r.ctxError(ctx, inv, lim)
		}
	}
	if err := take(s.fn, true, lim.Concurrency); err != nil {
		return slots{}, err
	}
	if err := take(s.acct, false, cap(s.acct)); err != nil {
		<-s.fn
		return slots{}, err
	}
	return s, nil
}

// job is one invocation handed to an instance's worker goroutine.
type job struct {
	ctx   context.Context
	c     *call // &call
	call  call
	inv   Invocation
	art   *artifact
	sem   slots
	resp  Response
	err   error
	state atomic.Int32
}

const (
	jobRunning int32 = iota
	jobFinished
	jobAbandoned
)

func (r *Runtime) ctxError(ctx context.Context, inv Invocation, lim Limits) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return failure(silo.CodeUnavailable, ctx.Err(), "function %q timed out (limit %s); make it faster or raise its timeout", inv.Function, lim.Timeout)
	}
	return failure(silo.CodeUnavailable, ctx.Err(), "function %q was cancelled (the client went away or the server is stopping)", inv.Function)
}

// worker runs an instance's invocations one at a time on one goroutine,
// whose stack stays grown between invocations. The first job instantiates
// the module. The worker ends when the instance is discarded: after a
// failed or stopped invocation, an abandoned one, or eviction (jobs closed).
func (r *Runtime) worker(in *instance) {
	for j := range in.jobs {
		if !j.c.takeCPU() {
			j.err = r.ctxError(j.ctx, j.inv, in.key.lim)
		}
		// The worker holds the instance's linear memory while it runs
		// code on it, so that closing the module meanwhile (Close) does not
		// take the memory from under the guest (heldMemory).
		held := false
		if j.err == nil && in.mod == nil {
			j.err = r.instantiate(j.ctx, in, j.art, j.c)
			held = in.mem != nil // allocated held
		} else if j.err == nil && in.mem != nil {
			if held = in.mem.hold(); !held {
				j.err = silo.Errorf(silo.CodeUnavailable, "the function runtime is shutting down; try again")
			}
		}
		if j.err == nil {
			in.logw.n.Store(0)
			in.call.Store(j.c)
			j.resp, j.err = r.exec(j.ctx, in, j.c, j.inv)
			in.call.Store(nil)
		}
		if held {
			in.mem.unhold()
		}
		j.c.leaveCPU()
		bad := j.err != nil || j.c.stopped
		if bad {
			r.discard(context.Background(), in)
		}
		j.sem.release()
		if !j.state.CompareAndSwap(jobRunning, jobFinished) {
			if !bad {
				r.discard(context.Background(), in)
			}
			return // abandoned: nobody waits
		}
		in.done <- struct{}{}
		if bad {
			return
		}
	}
}

func (r *Runtime) exec(ctx context.Context, in *instance, c *call, inv Invocation) (Response, error) {
	h := in.handlers[inv.Handler]
	if h == nil {
		f := in.mod.ExportedFunction(inv.Handler)
		if f == nil || !sameTypes(f.Definition().ParamTypes(), []api.ValueType{i32, i32}) || !sameTypes(f.Definition().ResultTypes(), []api.ValueType{i64}) {
			return Response{}, silo.Errorf(silo.CodeInvalid, "function %q does not export handler %q(i32, i32) i64", inv.Function, inv.Handler)
		}
		h = f
		in.handlers[inv.Handler] = f
	}
	req := abi.Request{
		ID: inv.Request.ID, Method: inv.Request.Method, Path: inv.Request.Path,
		Params: inv.Request.Params, Query: inv.Request.Query, Header: inv.Request.Header, Body: inv.Request.Body,
	}
	size := abi.RequestSize(&req)
	if size > r.cfg.MaxRequestSize {
		return Response{}, silo.Errorf(silo.CodeInvalid, "request to %q is %d bytes encoded, over the %d byte limit", inv.Function, size, r.cfg.MaxRequestSize)
	}
	in.buf = abi.AppendRequest(in.buf[:0], &req)
	if cap(in.buf) > 1<<20 {
		defer func() { in.buf = nil }()
	}
	in.stack[0] = uint64(len(in.buf))
	in.stackLeft.Set(uint64(r.cfg.MaxCallStack))
	if err := in.alloc.CallWithStack(ctx, in.stack[:]); err != nil {
		return Response{}, r.guestError(inv, in, c, err)
	}
	ptr := uint32(in.stack[0])
	mem := in.mod.Memory()
	if !mem.Write(ptr, in.buf) {
		return Response{}, silo.Errorf(silo.CodeInternal, "function %q returned a bad request buffer from silo_alloc", inv.Function)
	}
	in.stack[0], in.stack[1] = uint64(ptr), uint64(len(in.buf))
	in.stackLeft.Set(uint64(r.cfg.MaxCallStack))
	if err := h.CallWithStack(ctx, in.stack[:]); err != nil {
		return Response{}, r.guestError(inv, in, c, err)
	}
	if c.stopped {
		return Response{}, r.ctxError(ctx, inv, in.key.lim)
	}
	packed := in.stack[0]
	rp, rl := uint32(packed>>32), uint32(packed)
	if int(rl) > r.cfg.MaxResponseSize {
		return Response{}, silo.Errorf(silo.CodeInternal, "function %q returned a %d byte response, over the %d byte limit", inv.Function, rl, r.cfg.MaxResponseSize)
	}
	b, ok := mem.Read(rp, rl)
	if !ok {
		return Response{}, silo.Errorf(silo.CodeInternal, "function %q returned a response outside its memory", inv.Function)
	}
	ar, err := abi.DecodeResponse(b)
	if err != nil {
		return Response{}, failure(silo.CodeInternal, err, "function %q returned a malformed response; rebuild it with the current sdk/fn", inv.Function)
	}
	resp := Response{Status: ar.Status, Body: append([]byte(nil), ar.Body...)}
	if ar.Header != nil {
		resp.Header = http.Header(ar.Header)
	}
	if resp.Status < 100 || resp.Status > 999 {
		return Response{}, silo.Errorf(silo.CodeInternal, "function %q returned HTTP status %d", inv.Function, resp.Status)
	}
	return resp, nil
}

// failure returns a *silo.Error whose message is the sentence, safe to
// show to a client (no wasm error text or stack trace), and whose cause is
// err, for the operator's log.
func failure(c silo.Code, err error, format string, args ...any) error {
	return &silo.Error{Code: c, Message: fmt.Sprintf(format, args...), Err: err}
}

func (r *Runtime) guestError(inv Invocation, in *instance, c *call, err error) error {
	lim := in.key.lim
	if c.stopped {
		return failure(silo.CodeUnavailable, err, "function %q timed out (limit %s) and was stopped; make it faster or raise its timeout", inv.Function, lim.Timeout)
	}
	// The detail (the wasm error and the guest's stack) goes to the log,
	// which is the function's own: the client gets one sentence.
	r.cfg.Logger.LogAttrs(context.Background(), slog.LevelError, "function failed",
		slog.String("account", string(inv.Account)), slog.String("function", inv.Function),
		slog.String("request_id", inv.Request.ID), slog.String("error", err.Error()))
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		// Close closed the module under the call: wazero reports it as
		// an exit when the call returns.
		return failure(silo.CodeUnavailable, err, "the function runtime is shutting down; try again")
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return failure(silo.CodeInternal, err, "function %q exited with code %d (out of memory or a fatal error); see its logs", inv.Function, exit.ExitCode())
	}
	if int32(uint32(in.stackLeft.Get())) < 0 {
		return failure(silo.CodeInternal, err, "function %q recursed deeper than its call stack allows (%s of frames); make its recursion shallower or iterative", inv.Function, sizeString(uint64(r.cfg.MaxCallStack)))
	}
	return failure(silo.CodeInternal, err, "function %q crashed (it trapped); see its logs", inv.Function)
}

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
	if err != nil {
		return fmt.Errorf("compile %.12s: %w", a.digest, err)
	}
	in.call.Store(c)
	logw := &logWriter{rt: r, acct: key.acct, fn: key.fn, in: in}
	in.logw = logw
	mc := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(abi.ExportInitialize).
		WithStdout(logw).WithStderr(logw).
		WithRandSource(rand.Reader).
		WithSysNanotime().
		WithNanosleep(in.nanosleep).
		WithOsyield(func() {})
	if key.clock {
		mc = mc.WithSysWalltime()
	}
	mod, err := e.rt.InstantiateModule(withMemoryAllocator(ctx, r.mem, a.dataEnd, func(m heldMemory) { in.mem = m }), cm, mc)
	if err != nil {
		if c.stopped {
			return failure(silo.CodeUnavailable, err, "function %q timed out (limit %s) while starting; make its initialization faster or raise its timeout", key.fn, key.lim.Timeout)
		}
		return failure(silo.CodeInternal, err, "function %q failed to start (its init panicked, trapped or ran out of memory); see its logs", key.fn)
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
	IdlePerAccount map[silo.AccountID]int // idle instances per account
}

// Stats returns a snapshot of the instances held. An account with no recent
// invocation holds none.
func (r *Runtime) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Instances: int(r.live.Load()), Modules: len(r.artifacts), Accounts: len(r.accounts), PooledMemories: r.mem.len(), IdlePerAccount: map[silo.AccountID]int{}}
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
