package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/runtime"
)

// How the host makes the module runnable at start. The package (provider/aws,
// lambdapkg.go) may hold, besides the module, what "silo-lambda prepare" made
// of it on a machine of the function's architecture: the module validated
// and instrumented, and its machine code in a wazero compilation cache. The
// host then loads that code (pathPrecompiled). Without it (a package built on
// a machine of another architecture, code for other CPU features, or code
// that does not load) the host compiles the module for wazero's interpreter,
// which is quick, serves on it at once, compiles the module to machine code
// in the background and serves every invocation that starts after that on
// the machine code (pathInterpreter, then pathCompiled).
const (
	pathPrecompiled = "precompiled" // machine code from the package
	pathCompiled    = "compiled"    // machine code compiled in this process
	pathInterpreter = "interpreter" // wazero's interpreter
)

// envEngine chooses the engine: "" (the default) as above; "compiler"
// compiles to machine code before serving, ignoring the package's code;
// "interpreter" serves on the interpreter only. The last two are for
// measurements and tests.
const envEngine = "SILO_LAMBDA_ENGINE"

// The package's prepared part (written by prepare, read by readPrepared).
const (
	preparedDir      = "prepared"
	preparedManifest = "prepared/manifest.json"
	preparedModule   = "prepared/function.wasm"
	preparedSkeleton = "prepared/skeleton.wasm" // of the prepared module (runtime.Runtime.PrepareCode)
	preparedCode     = "prepared/code"          // a wazero compilation cache
)

// manifest describes the prepared part of a package.
type manifest struct {
	// BuildID is the Go build ID of the host that prepared the module: the
	// host uses the prepared module only if it is the same build.
	BuildID  string           `json:"build_id"`
	Prepared runtime.Prepared `json:"prepared"`
}

// code is a runtime holding the function's module, and how it got there.
type code struct {
	rt     *runtime.Runtime
	digest string
	path   string
	dir    string // the compilation cache linking the package's code, if any

	mu     sync.RWMutex // held for reading by every invocation on rt
	closed bool
}

// beforeBackgroundCompile, if set, runs before the background compilation;
// tests use it to hold the switch to machine code.
var beforeBackgroundCompile func()

// runtimeConfig is the runtime's configuration for a function with spec fs,
// the same at start and in prepare.
func runtimeConfig(fs silo.FunctionSpec, log *slog.Logger) (runtime.Config, uint32) {
	pages := uint32(0)
	if fs.Memory > 0 {
		pages = uint32((fs.Memory + 65535) / 65536)
	}
	cfg := runtime.Config{
		Logger: log,
		// Lambda freezes an idle container; an instance is kept for as
		// long as the container lives.
		IdleTimeout: time.Hour,
		// The invocations' limits, so that the module is compiled on the
		// engine they run on (one wazero runtime per memory limit).
		Limits: runtime.Limits{Concurrency: 1, MemoryPages: pages},
		// Lambda hands a container one invocation at a time, so one that
		// finds the slot taken waits only for the guest before it, which
		// is answered at its deadline and stopped soon after (on a slow
		// CPU share, not always within the runtime's default wait): it
		// waits for that guest instead of being refused.
		QueueWait: max(fs.Timeout, time.Second),
	}
	if pages > 4096 {
		cfg.MaxMemoryPages = pages
	}
	return cfg, pages
}

// start makes the module runnable as described above and sets h.code.
func (h *host) start(ctx context.Context, b bundle, engine string) error {
	t0 := time.Now()
	ready := func(c *code) {
		h.code.Store(c)
		h.log.LogAttrs(ctx, slog.LevelInfo, "module ready", slog.String("account", string(h.acct)), slog.String("function", h.fn),
			slog.String("code", c.path), slog.Bool("prepared", b.prepared != nil), slog.Int64("took_ms", time.Since(t0).Milliseconds()))
	}
	switch engine {
	case "compiler":
		b.code = ""
		c, err := h.compile(ctx, b, false, pathCompiled)
		if err != nil {
			return err
		}
		ready(c)
		return nil
	case "interpreter":
		b.code = ""
		c, err := h.compile(ctx, b, true, pathInterpreter)
		if err != nil {
			return err
		}
		ready(c)
		return nil
	case "":
	default:
		return silo.Errorf(silo.CodeInvalid, "%s is %q; leave it empty or set compiler or interpreter", envEngine, engine)
	}
	if b.code != "" {
		c, err := h.compile(ctx, b, false, pathPrecompiled)
		if err == nil {
			ready(c)
			return nil
		}
		h.log.LogAttrs(ctx, slog.LevelWarn, "the package's machine code is not usable; compiling", slog.String("account", string(h.acct)),
			slog.String("function", h.fn), slog.Any("err", err))
		b.code = ""
	}
	c, err := h.compile(ctx, b, true, pathInterpreter)
	if err != nil {
		return err
	}
	ready(c)
	h.compiling.Add(1)
	go func() {
		defer h.compiling.Done()
		if beforeBackgroundCompile != nil {
			beforeBackgroundCompile()
		}
		t0 := time.Now()
		c, err := h.compile(context.Background(), b, false, pathCompiled)
		if err != nil {
			h.log.LogAttrs(context.Background(), slog.LevelError, "compile in the background; staying on the interpreter", slog.String("account", string(h.acct)),
				slog.String("function", h.fn), slog.Any("err", err))
			return
		}
		if !h.swap(c) {
			c.rt.Close(context.Background())
			return
		}
		h.log.LogAttrs(context.Background(), slog.LevelInfo, "switched to machine code", slog.String("account", string(h.acct)),
			slog.String("function", h.fn), slog.String("code", c.path), slog.Int64("took_ms", time.Since(t0).Milliseconds()))
	}()
	return nil
}

// compile loads the module into a new runtime: on the interpreter, or as
// machine code, from the package's code if b.code is set (through the
// prepared module's skeleton: the runtime refuses it if that code is not
// for this machine). Without the package's code it takes the prepared
// module if the package holds one the runtime takes, else the module.
func (h *host) compile(ctx context.Context, b bundle, interpreter bool, path string) (*code, error) {
	cfg, _ := runtimeConfig(b.Spec, h.log)
	cfg.Interpreter = interpreter
	if b.code != "" {
		dir, err := linkCode(b.code)
		if err != nil {
			return nil, err
		}
		cfg.CacheDir = dir
	}
	rt, err := runtime.New(cfg)
	if err != nil {
		os.RemoveAll(cfg.CacheDir)
		return nil, fmt.Errorf("start the runtime: %w", err)
	}
	var digest string
	if b.prepared != nil {
		p := *b.prepared
		if b.code == "" {
			p.Skeleton = nil
			p.Module, err = b.preparedModule()
		}
		if err == nil {
			digest, err = rt.CompilePrepared(ctx, p)
		}
		if err != nil && b.code == "" {
			h.log.LogAttrs(ctx, slog.LevelWarn, "the package's prepared module is refused; using the module", slog.String("account", string(h.acct)),
				slog.String("function", h.fn), slog.Any("err", err))
		}
	}
	if digest == "" && b.code == "" {
		var wasm []byte
		if wasm, err = b.wasm(); err == nil {
			digest, err = rt.Compile(ctx, wasm)
		}
	}
	if err != nil {
		rt.Close(ctx)
		os.RemoveAll(cfg.CacheDir)
		if b.code != "" {
			return nil, err
		}
		return nil, &silo.Error{Code: silo.ErrorCode(err), Err: err,
			Message: fmt.Sprintf("function %s of account %s: compile its module: %s", h.fn, h.acct, silo.UserMessage(err))}
	}
	return &code{rt: rt, digest: digest, path: path, dir: cfg.CacheDir}, nil
}

// close closes the code's runtime once its invocations have finished, and
// reports false if it was closed already.
func (c *code) close() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	c.rt.Close(context.Background())
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
	return true
}

// swap makes c serve every invocation that starts from now on, and closes
// the code it replaces once its invocations have finished. It reports
// false if the host is closed.
func (h *host) swap(c *code) bool {
	old := h.code.Load()
	old.mu.Lock()
	if old.closed {
		old.mu.Unlock()
		return false
	}
	h.code.Store(c)
	old.mu.Unlock()
	old.close()
	return true
}

// acquire returns the code to run an invocation on, held until release.
func (h *host) acquire() *code {
	for {
		c := h.code.Load()
		c.mu.RLock()
		if !c.closed {
			return c
		}
		c.mu.RUnlock()
		if h.code.Load() == c { // closed with the host
			c.mu.RLock()
			return c
		}
	}
}

// linkCode makes a writable compilation cache directory that holds links to
// the package's code (Lambda's task root is read-only, and wazero writes to
// its cache on a miss). The caller removes it.
func linkCode(src string) (string, error) {
	dir, err := os.MkdirTemp("", "silo-code-")
	if err != nil {
		return "", fmt.Errorf("make a compilation cache: %w", err)
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o700)
		}
		return os.Symlink(p, filepath.Join(dir, rel))
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("link the package's code: %w", err)
	}
	return dir, nil
}

// readPrepared returns the package's prepared module (without its Module:
// readModule reads it) and code directory if the package holds them and
// they were made by this very build for this module (the spec's artifact);
// else nil and "". The prepared module holds its skeleton when the
// package holds code. Anything else is logged and ignored: the host then
// prepares the module itself.
func readPrepared(root string, fs silo.FunctionSpec, log *slog.Logger) (_ *runtime.Prepared, codeDir string) {
	b, err := os.ReadFile(filepath.Join(root, preparedManifest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ""
	}
	refuse := func(why string, err error) (*runtime.Prepared, string) {
		log.Warn("the package's prepared module is not used: "+why, "err", err)
		return nil, ""
	}
	var m manifest
	if err != nil || json.Unmarshal(b, &m) != nil {
		return refuse("its manifest does not read", err)
	}
	id, err := buildID()
	if err != nil || id != m.BuildID {
		return refuse("another build of the host prepared it", err)
	}
	if m.Prepared.Digest != fs.Artifact {
		return refuse("it was prepared from another module", nil)
	}
	codeDir = filepath.Join(root, preparedCode)
	if st, err := os.Stat(codeDir); err != nil || !st.IsDir() || m.Prepared.SkeletonSum == "" {
		return &m.Prepared, ""
	}
	if m.Prepared.Skeleton, err = os.ReadFile(filepath.Join(root, preparedSkeleton)); err != nil {
		log.Warn("the package's machine code is not used: the prepared module's skeleton is missing", "err", err)
		return &m.Prepared, ""
	}
	return &m.Prepared, codeDir
}

// readModule reads the package's prepared module.
func readModule(root string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(root, preparedModule))
	if err != nil {
		return nil, fmt.Errorf("read the prepared module: %w", err)
	}
	return b, nil
}

// buildID returns the Go build ID of the running executable (its ELF
// note), which differs between any two builds of different code.
func buildID() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := elf.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil {
		return "", errors.New("the executable has no Go build ID")
	}
	note, err := s.Data()
	// An ELF note: name size, description size, type, "Go\0\0", the ID.
	if err != nil || len(note) < 16 || !bytes.Equal(note[12:16], []byte("Go\x00\x00")) {
		return "", fmt.Errorf("the executable's Go build ID does not read: %v", err)
	}
	return string(bytes.TrimRight(note[16:], "\x00")), nil
}

// prepare is "silo-lambda prepare DIR", run when the function is packaged on
// a machine of its architecture: it reads the package's function.wasm and
// function.json in DIR, as the host would, and writes the prepared part
// into DIR: the module validated and instrumented, its machine code, and
// the manifest naming this build.
func prepare(ctx context.Context, dir string) error {
	var fs silo.FunctionSpec
	spec, err := os.ReadFile(filepath.Join(dir, "function.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(spec, &fs); err != nil {
		return fmt.Errorf("read function.json: %w", err)
	}
	wasm, err := os.ReadFile(filepath.Join(dir, "function.wasm"))
	if err != nil {
		return err
	}
	id, err := buildID()
	if err != nil {
		return err
	}
	cfg, _ := runtimeConfig(fs, slog.New(slog.DiscardHandler))
	rt, err := runtime.New(cfg)
	if err != nil {
		return err
	}
	defer rt.Close(ctx)
	p, err := rt.Prepare(wasm)
	if err != nil {
		return err
	}
	if err := rt.PrepareCode(ctx, &p, filepath.Join(dir, preparedCode)); err != nil {
		return err
	}
	m, err := json.Marshal(manifest{BuildID: id, Prepared: p})
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{preparedModule: p.Module, preparedSkeleton: p.Skeleton, preparedManifest: m} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
