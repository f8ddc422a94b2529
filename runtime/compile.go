package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/sdk/fn/abi"
)

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
// CodeUnavailable after Close, or when ctx ends while the module is being
// compiled (by this call or another one, for whom the compilation goes on).
func (r *Runtime) Compile(ctx context.Context, wasm []byte) (string, error) {
	if len(wasm) > r.cfg.MaxModuleSize {
		return "", silo.Errorf(silo.CodeInvalid, "function module is %d bytes, over the %d byte limit; make it smaller (e.g. build with -ldflags=-s, drop dependencies)", len(wasm), r.cfg.MaxModuleSize)
	}
	digest := Digest(wasm)
	if r.loaded(digest) {
		return digest, nil
	}
	a, err := r.prepare(wasm, digest)
	if err != nil {
		return "", err
	}
	return r.load(ctx, a)
}

// Compiled reports whether the module with this digest is compiled and
// kept by this Runtime (Compile returned it), so that an invocation of it
// does not wait for a compilation. Safe for concurrent use.
func (r *Runtime) Compiled(digest string) bool { return r.loaded(digest) }

// loaded reports whether the module digest is compiled and kept.
func (r *Runtime) loaded(digest string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.artifacts[digest] != nil
}

// prepare validates and instruments a module: the part of Compile that
// does not depend on the machine.
func (r *Runtime) prepare(wasm []byte, digest string) (*artifact, error) {
	m, err := parseModule(wasm)
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "function module is not valid wasm: %v; build it with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared", err)
	}
	inst, err := instrument(m, fuel, int32(r.cfg.MaxCallStack))
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "function module cannot be instrumented: %v", err)
	}
	if err := r.validate(m); err != nil {
		return nil, err
	}
	a := &artifact{digest: digest, wasm: inst, dataEnd: dataEnd(m), hostPages: hostPages(hostBytes(m))}
	if r.cfg.SnapshotMemory > 0 {
		// A module that cannot be prepared is still run, from its init
		// every time.
		if rw, globals, segs, err := restartable(m, inst); err == nil {
			a.wasm, a.restart, a.globals, a.segs = rw, true, globals, segs
		}
	}
	if len(m.memories) == 1 {
		a.minPages = uint32(m.memories[0].min)
	}
	return a, nil
}

// load compiles an instrumented artifact and keeps it. It compiles on the
// engine an invocation under the default limits uses, so that the first
// such invocation does not decode the module a second time.
func (r *Runtime) load(ctx context.Context, a *artifact) (string, error) {
	e, err := r.engine(ctx, max(linearPages(a, r.cfg.Limits), 1))
	if err != nil {
		return "", err
	}
	cm, err := e.compiled1(ctx, a)
	if errors.Is(err, errNoCode) || silo.ErrorCode(err) == silo.CodeUnavailable {
		return "", err // no code for a skeleton, shutting down, or ctx ended while the compilation goes on
	}
	if err != nil {
		return "", silo.Errorf(silo.CodeInvalid, "function module does not compile: %v", err)
	}
	if err := checkExports(cm); err != nil {
		return "", err
	}
	if a.restart {
		a.data = newDataImage(a.segs, uint64(a.minPages)*65536)
	}
	a.segs = nil // they hold the instrumented module's bytes
	r.mu.Lock()
	r.artifacts[a.digest] = a
	r.mu.Unlock()
	return a.digest, nil
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
	abi.ImportKVAdd:      {params: []byte{i32, i32, i32, i32, i64, i32, i32}, results: []byte{i64}},
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
