package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/tetratelabs/wazero"

	silo "github.com/silo-run/silo"
)

// instrumentVersion names the instrumenter's output format; it is part of
// Prepared.Settings. Change it whenever instrument's output changes.
const instrumentVersion = 2

// Prepared is a module validated and instrumented by Prepare, with what
// Invoke needs to know of it: the part of Compile that depends neither on
// the machine nor on the engine, done once ahead (the Lambda host does it
// when the function is packaged) instead of at every start. It marshals to
// JSON without Module, which the caller keeps next to it.
type Prepared struct {
	Digest    string `json:"digest"` // of the module given to Prepare, as Compile returns it
	Module    []byte `json:"-"`      // the instrumented module
	Sum       string `json:"sum"`    // the SHA-256 of Module
	DataEnd   uint64 `json:"data_end"`
	HostPages uint32 `json:"host_pages"`
	MinPages  uint32 `json:"min_pages"`
	// Restart is set when Module was rewritten so that instances may
	// start from a snapshot (Config.SnapshotMemory); Globals then names
	// the exports of its mutable globals.
	Restart bool     `json:"restart,omitempty"`
	Globals []string `json:"globals,omitempty"`
	// Settings are the runtime's settings the module was checked and
	// instrumented under; CompilePrepared refuses it under others.
	Settings string `json:"settings"`
}

// settings names what Prepare's output depends on besides the module: the
// instrumenter and the caps the module was checked against.
func (r *Runtime) settings() string {
	c := r.cfg
	return fmt.Sprintf("instrument v%d, fuel %d, call stack %d, module %d, table %d, heap %d, memory %d, snapshots %t",
		instrumentVersion, fuel, c.MaxCallStack, c.MaxModuleSize, c.MaxTableSize, c.MaxInstanceHeap, c.MaxMemoryPages, c.SnapshotMemory > 0)
}

// Prepare validates and instruments a module as Compile does, without
// compiling it.
//
// # Errors
//
// Those of Compile for a module Compile refuses.
func (r *Runtime) Prepare(wasm []byte) (Prepared, error) {
	if len(wasm) > r.cfg.MaxModuleSize {
		return Prepared{}, silo.Errorf(silo.CodeInvalid, "function module is %d bytes, over the %d byte limit; make it smaller (e.g. build with -ldflags=-s, drop dependencies)", len(wasm), r.cfg.MaxModuleSize)
	}
	a, err := r.prepare(wasm, Digest(wasm))
	if err != nil {
		return Prepared{}, err
	}
	return Prepared{Digest: a.digest, Module: a.wasm, Sum: Digest(a.wasm), DataEnd: a.dataEnd, HostPages: a.hostPages,
		MinPages: a.minPages, Restart: a.restart, Globals: a.globals, Settings: r.settings()}, nil
}

// CompilePrepared compiles a module Prepare prepared, without validating or
// instrumenting it again, and returns its digest (that of the module given
// to Prepare). It checks that p was prepared under this runtime's settings,
// that Module is the module prepared (its SHA-256) and that it bears the
// instrumentation (the checkpoint import and the stack budget export).
//
// # Notes
//
// It cannot tell a module instrumented by another program with the same
// settings from one this program instrumented: the caller must know that
// p comes from Prepare of the same build (the Lambda host checks the build
// ID the package names).
//
// # Errors
//
// CodeInvalid if p was prepared under other settings, is not what was
// prepared or does not compile; CodeUnavailable after Close.
func (r *Runtime) CompilePrepared(ctx context.Context, p Prepared) (string, error) {
	if p.Settings != r.settings() {
		return "", silo.Errorf(silo.CodeInvalid, "the prepared module was checked under other runtime settings (%s, here %s); prepare it again", p.Settings, r.settings())
	}
	if Digest(p.Module) != p.Sum {
		return "", silo.Errorf(silo.CodeInvalid, "the prepared module is not the one prepared (its SHA-256 differs); prepare it again")
	}
	if r.loaded(p.Digest) {
		return p.Digest, nil
	}
	m, err := parseModule(p.Module)
	if err != nil {
		return "", silo.Errorf(silo.CodeInvalid, "the prepared module is not valid wasm: %v; prepare it again", err)
	}
	if !bearsInstrumentation(m) {
		return "", silo.Errorf(silo.CodeInvalid, "the prepared module is not instrumented; prepare it again")
	}
	return r.load(ctx, &artifact{digest: p.Digest, wasm: p.Module, dataEnd: p.DataEnd, hostPages: p.HostPages, minPages: p.MinPages,
		restart: p.Restart, globals: p.Globals})
}

// bearsInstrumentation reports whether m bears instrument's marks: it imports the
// checkpoint and exports the stack budget.
func bearsInstrumentation(m *module) bool {
	var checkpoint, stack bool
	for _, im := range m.imports {
		checkpoint = checkpoint || im.module == hostModule && im.name == importCheckpoint && im.kind == 0
	}
	for _, e := range m.exports {
		stack = stack || e.name == stackExport && e.kind == 3
	}
	return checkpoint && stack
}

// probeModule is the smallest module with code: one function that returns.
var probeModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // types: () -> ()
	0x03, 0x02, 0x01, 0x00, // functions: one of type 0
	0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: no locals, end
}

// ProbeCache compiles a probe module into the compilation cache in dir
// (Config.CacheDir) and reports whether the cache already held its code.
// Machine code is cached under a key of the module, the wazero version and
// the CPU features the code may use, so when ProbeCache found the probe in
// a cache filled on another machine (where it was run too), the modules
// compiled there with the same build are found as well; when it did not,
// they will not be (another CPU or wazero version), and ProbeCache has
// added the probe.
//
// # Errors
//
// Those of the file system, if dir cannot be read or written.
func ProbeCache(ctx context.Context, dir string) (bool, error) {
	before, err := cacheEntries(dir)
	if err != nil {
		return false, err
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return false, fmt.Errorf("open compilation cache %s: %w", dir, err)
	}
	defer c.Close(ctx)
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(c).WithCloseOnContextDone(false))
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, probeModule); err != nil {
		return false, fmt.Errorf("compile the probe module into %s: %w", dir, err)
	}
	after, err := cacheEntries(dir)
	return after == before, err
}

// cacheEntries counts the files and links under dir.
func cacheEntries(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("read compilation cache %s: %w", dir, err)
	}
	return n, nil
}
