package runtime

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

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
	// Skeleton, set by PrepareCode, is Module without its function bodies
	// (skeleton.go): when it is set, CompilePrepared loads Module's machine
	// code from the cache through it and does not read Module. It marshals
	// without Skeleton, which the caller keeps next to it.
	Skeleton    []byte `json:"-"`
	SkeletonSum string `json:"skeleton_sum,omitempty"` // the SHA-256 of Skeleton
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
// If p.Skeleton is set (PrepareCode), it loads the module's machine code
// from the compilation cache (Config.CacheDir) through the skeleton instead,
// with the same checks on the skeleton, and fails if the cache does not
// hold that code for this machine.
//
// # Notes
//
// It cannot tell a module instrumented by another program with the same
// settings from one this program instrumented, nor machine code compiled
// by another program: the caller must know that p and the cache come from
// the same build (the Lambda host checks the build ID the package names).
//
// # Errors
//
// CodeInvalid if p was prepared under other settings, is not what was
// prepared or does not compile; CodeUnavailable if the cache holds no code
// for p's skeleton on this machine (another CPU, another wazero version), or
// after Close.
func (r *Runtime) CompilePrepared(ctx context.Context, p Prepared) (string, error) {
	if p.Settings != r.settings() {
		return "", silo.Errorf(silo.CodeInvalid, "the prepared module was checked under other runtime settings (%s, here %s); prepare it again", p.Settings, r.settings())
	}
	wasm, sum := p.Module, p.Sum
	if p.Skeleton != nil {
		if r.cfg.CacheDir == "" || r.cfg.Interpreter {
			return "", silo.Errorf(silo.CodeInvalid, "the prepared module's machine code is in a compilation cache, which this runtime does not use; set CacheDir, without Interpreter")
		}
		wasm, sum = p.Skeleton, p.SkeletonSum
	}
	if Digest(wasm) != sum {
		return "", silo.Errorf(silo.CodeInvalid, "the prepared module is not the one prepared (its SHA-256 differs); prepare it again")
	}
	if r.loaded(p.Digest) {
		return p.Digest, nil
	}
	m, err := parseModule(wasm)
	if err != nil {
		return "", silo.Errorf(silo.CodeInvalid, "the prepared module is not valid wasm: %v; prepare it again", err)
	}
	if !bearsInstrumentation(m) {
		return "", silo.Errorf(silo.CodeInvalid, "the prepared module is not instrumented; prepare it again")
	}
	return r.load(ctx, &artifact{digest: p.Digest, wasm: wasm, skeleton: p.Skeleton != nil, dataEnd: p.DataEnd, hostPages: p.HostPages,
		minPages: p.MinPages, restart: p.Restart, globals: p.Globals})
}

// PrepareCode compiles p's module to machine code and writes it into dir, a
// compilation cache (Config.CacheDir) for a runtime of this configuration on
// a machine like this one, filed under the key of p's skeleton; it sets
// p.Skeleton and p.SkeletonSum. dir may hold other code. CompilePrepared of
// p with dir as its cache then loads that code without decoding the
// module's function bodies.
//
// # Errors
//
// Those of CompilePrepared for p without a skeleton, and of the file system.
func (r *Runtime) PrepareCode(ctx context.Context, p *Prepared, dir string) error {
	skel, err := skeleton(p.Module)
	if err != nil {
		return silo.Errorf(silo.CodeInvalid, "the prepared module is not valid wasm: %v; prepare it again", err)
	}
	scratch, err := os.MkdirTemp("", "silo-prepare-")
	if err != nil {
		return fmt.Errorf("prepare machine code: %w", err)
	}
	defer os.RemoveAll(scratch)
	// Each compiled alone into an empty cache: the one file it gets is its
	// code, filed under its key.
	compileInto := func(name string, compile func(*Runtime) error) (string, error) {
		cfg := r.cfg
		cfg.CacheDir, cfg.Interpreter = filepath.Join(scratch, name), false
		rt, err := New(cfg)
		if err != nil {
			return "", err
		}
		err = compile(rt)
		rt.Close(ctx)
		if err != nil {
			return "", err
		}
		st, err := readCacheState(cfg.CacheDir)
		if err != nil {
			return "", err
		}
		files := slices.Collect(maps.Keys(st))
		if len(files) != 1 {
			return "", fmt.Errorf("prepare machine code: the cache holds %d files, want 1", len(files))
		}
		return filepath.Rel(cfg.CacheDir, files[0])
	}
	whole := *p
	whole.Skeleton = nil
	code, err := compileInto("whole", func(rt *Runtime) error { _, err := rt.CompilePrepared(ctx, whole); return err })
	if err != nil {
		return err
	}
	key, err := compileInto("skeleton", func(rt *Runtime) error {
		e, err := rt.engine(ctx, max(linearPages(&artifact{hostPages: p.HostPages}, rt.cfg.Limits), 1))
		if err != nil {
			return err
		}
		cm, err := e.rt.CompileModule(ctx, skel)
		if err != nil {
			return fmt.Errorf("compile the skeleton: %w", err)
		}
		return cm.Close(ctx)
	})
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(scratch, "whole", code))
	if err != nil {
		return fmt.Errorf("prepare machine code: %w", err)
	}
	dst := filepath.Join(dir, key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("prepare machine code: %w", err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("prepare machine code: %w", err)
	}
	p.Skeleton, p.SkeletonSum = skel, Digest(skel)
	return nil
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
