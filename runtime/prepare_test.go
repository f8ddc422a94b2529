package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/build"
)

// onInterpreter makes newEnv's runtimes run guests on wazero's interpreter
// (TestHostileOnInterpreter sets it for its subtests).
var onInterpreter bool

// TestHostileOnInterpreter runs the hostile-guest corpus again with
// Config.Interpreter: every guard (deadline through the checkpoints, memory
// limit, call stack cap, log limits, exits and traps) holds on the
// interpreter as on compiled code. Each test keeps its own twin.
func TestHostileOnInterpreter(t *testing.T) {
	onInterpreter = true
	t.Cleanup(func() { onInterpreter = false })
	for _, c := range []struct {
		name string
		test func(*testing.T)
	}{
		{"DeepRecursionStopped", TestDeepRecursionStopped},
		{"InfiniteLoopStopped", TestInfiniteLoopStopped},
		{"SleepPastDeadlineStopped", TestSleepPastDeadlineStopped},
		{"HostCallBlockingPastDeadline", TestHostCallBlockingPastDeadline},
		{"MemoryBomb", TestMemoryBomb},
		{"TrapContained", TestTrapContained},
		{"ExitDiscardsInstance", TestExitDiscardsInstance},
		{"LogFloodCapped", TestLogFloodCapped},
		{"GoGuestRecursion", TestGoGuestRecursion},
		{"StackBudgetRestoredOnEveryExit", TestStackBudgetRestoredOnEveryExit},
		{"Residue", TestResidue},
	} {
		t.Run(c.name, c.test)
	}
}

// TestInterpreterIsUsed checks that the option reaches wazero: the same
// module runs on both engines, and only the compiler writes machine code
// to the cache directory.
func TestInterpreterIsUsed(t *testing.T) {
	for _, interp := range []bool{true, false} {
		dir := t.TempDir()
		e := newEnv(t, Config{CacheDir: dir, Interpreter: interp})
		e.must(t, "acme", Request{Path: "/echo"}, 200)
		st, err := readCacheState(dir)
		n := len(st)
		if err != nil {
			t.Fatal(err)
		}
		if got := n > 0; got == interp {
			t.Errorf("Interpreter %v: %d files in the cache, want machine code only without it", interp, n)
		}
	}
}

// TestPrepareThenCompilePrepared prepares the guest once and compiles the
// prepared module in another runtime, which serves it under the digest
// Compile would give. The twins: a prepared module that was changed, that
// lacks the instrumentation, or that was prepared under other settings is
// refused.
func TestPrepareThenCompilePrepared(t *testing.T) {
	ctx := context.Background()
	prep, err := newEnv(t, Config{}).rt.Prepare(guestWasm)
	if err != nil {
		t.Fatal(err)
	}
	if prep.Digest != Digest(guestWasm) {
		t.Fatalf("prepared digest %s, want the module's %s", prep.Digest, Digest(guestWasm))
	}
	e := newEnv(t, Config{})
	e2, err := New(Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close(ctx)
	d, err := e2.CompilePrepared(ctx, prep)
	if err != nil || d != prep.Digest {
		t.Fatalf("CompilePrepared: %s, %v; want %s", d, err, prep.Digest)
	}
	e.rt = e2
	e.must(t, "acme", Request{Path: "/echo"}, 200)

	changed := prep
	changed.Module = append([]byte(nil), prep.Module...)
	changed.Module[len(changed.Module)-1] ^= 1
	bare := prep
	bare.Module = guestWasm
	bare.Sum = Digest(guestWasm)
	other := prep
	for _, c := range []struct {
		name string
		p    Prepared
		cfg  Config
		want string
	}{
		{"changed", changed, Config{}, "not the one prepared"},
		{"not instrumented", bare, Config{}, "not instrumented"},
		{"other settings", other, Config{MaxCallStack: 1 << 20}, "other runtime settings"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.CacheDir = t.TempDir()
			rt, err := New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close(ctx)
			_, err = rt.CompilePrepared(ctx, c.p)
			if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want CodeInvalid saying %q", err, c.want)
			}
		})
	}
}

// TestSkeletonLoadsTheModulesCode: the skeleton PrepareCode made, compiled
// from the cache it wrote, runs the whole module's machine code (the guest
// answers; a skeleton's own code would trap at the first call). The twins:
// the same skeleton with a cache that lacks the code (an empty one, as on
// a machine of another CPU) or holds it damaged is refused with one error,
// and nothing wazero wrote for it stays in the cache, so a second attempt
// is refused too; a runtime without a cache, or on the interpreter (which
// would run the skeleton's own code), refuses it.
func TestSkeletonLoadsTheModulesCode(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	prep, err := e.rt.Prepare(guestWasm)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := e.rt.PrepareCode(ctx, &prep, dir); err != nil {
		t.Fatal(err)
	}
	if len(prep.Skeleton) >= len(prep.Module)/2 || prep.SkeletonSum != Digest(prep.Skeleton) {
		t.Fatalf("skeleton of %d bytes (sum %s) for a module of %d", len(prep.Skeleton), prep.SkeletonSum, len(prep.Module))
	}
	withCache := func(t *testing.T, dir string) *Runtime {
		rt, err := New(Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Close(ctx) })
		return rt
	}
	rt := withCache(t, dir)
	if d, err := rt.CompilePrepared(ctx, prep); err != nil || d != prep.Digest {
		t.Fatalf("CompilePrepared of the skeleton: %s, %v; want %s", d, err, prep.Digest)
	}
	e.rt = rt
	e.must(t, "acme", Request{Path: "/echo"}, 200)

	damaged := t.TempDir()
	st, err := readCacheState(dir)
	if err != nil || len(st) != 1 {
		t.Fatalf("PrepareCode's cache: %d files, %v; want 1", len(st), err)
	}
	for p := range st {
		rel, _ := filepath.Rel(dir, p)
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0xff
		os.MkdirAll(filepath.Join(damaged, filepath.Dir(rel)), 0o700)
		os.WriteFile(filepath.Join(damaged, rel), b, 0o600)
	}
	for _, c := range []struct {
		name string
		dir  string
		code silo.Code
	}{
		{"empty cache", t.TempDir(), silo.CodeUnavailable},
		{"damaged code", damaged, silo.CodeInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			for try := range 2 {
				_, err := withCache(t, c.dir).CompilePrepared(ctx, prep)
				if silo.ErrorCode(err) != c.code {
					t.Fatalf("try %d: %v; want %v", try, err, c.code)
				}
			}
		})
	}
	for name, cfg := range map[string]Config{"no cache": {}, "interpreter": {CacheDir: dir, Interpreter: true}} {
		t.Run(name, func(t *testing.T) {
			rt, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close(ctx)
			_, err = rt.CompilePrepared(ctx, prep)
			if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(err.Error(), "set CacheDir, without Interpreter") {
				t.Fatalf("got %v; want CodeInvalid naming CacheDir and Interpreter", err)
			}
		})
	}
}

// BenchmarkStartPhases splits what a Lambda host pays at start to make the
// example's list function runnable (go test ./runtime -run '^$' -bench
// StartPhases -benchtime 5x), each phase in a fresh runtime, in ms:
// prepare (parse, instrument, validate: what a prepared package saves),
// load (CompilePrepared from a warm file cache: wazero's decode and
// validation plus loading the machine code), decode (the same module
// compiled again on another engine of the runtime, found in memory:
// wazero's decode and validation alone), interp (CompilePrepared on the
// interpreter), compile (CompilePrepared to machine code, no cache) and
// skeleton (CompilePrepared of the skeleton PrepareCode made: the machine
// code from a warm file cache, without decoding the function bodies).
func BenchmarkStartPhases(b *testing.B) {
	ctx := context.Background()
	a, err := build.Function(ctx, filepath.Join("..", "examples", "findings", "functions", "list"), filepath.Join(os.TempDir(), "silo-test-cache", "builds"))
	if err != nil {
		b.Fatal(err)
	}
	wasm, err := os.ReadFile(a.Path)
	if err != nil {
		b.Fatal(err)
	}
	warm := b.TempDir()
	rt, err := New(Config{CacheDir: warm})
	if err != nil {
		b.Fatal(err)
	}
	p, err := rt.Prepare(wasm)
	if err == nil {
		_, err = rt.CompilePrepared(ctx, p)
	}
	rt.Close(ctx)
	if err != nil {
		b.Fatal(err)
	}
	codeDir := b.TempDir()
	sk := p
	rt, err = New(Config{})
	if err == nil {
		err = rt.PrepareCode(ctx, &sk, codeDir)
		rt.Close(ctx)
	}
	if err != nil {
		b.Fatal(err)
	}
	phases := map[string]time.Duration{}
	timed := func(name string, f func() error) {
		t0 := time.Now()
		if err := f(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		phases[name] += time.Since(t0)
	}
	fresh := func(cfg Config) *Runtime {
		rt, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return rt
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rt := fresh(Config{})
		timed("prepare", func() error { _, err := rt.Prepare(wasm); return err })
		rt.Close(ctx)
		rt = fresh(Config{CacheDir: warm})
		timed("load", func() error { _, err := rt.CompilePrepared(ctx, p); return err })
		timed("decode", func() error {
			e, err := rt.engine(ctx, 4096)
			if err == nil {
				_, err = e.compiled1(ctx, rt.artifacts[p.Digest])
			}
			return err
		})
		rt.Close(ctx)
		rt = fresh(Config{CacheDir: codeDir})
		timed("skeleton", func() error { _, err := rt.CompilePrepared(ctx, sk); return err })
		rt.Close(ctx)
		rt = fresh(Config{Interpreter: true})
		timed("interp", func() error { _, err := rt.CompilePrepared(ctx, p); return err })
		rt.Close(ctx)
		rt = fresh(Config{})
		timed("compile", func() error { _, err := rt.CompilePrepared(ctx, p); return err })
		rt.Close(ctx)
	}
	b.StopTimer()
	for name, d := range phases {
		b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), name+"-ms")
	}
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f, err := strconv.ParseFloat(strings.Fields(string(l))[0], 64); err == nil {
			b.ReportMetric(f, "load1")
		}
	}
	b.ReportMetric(float64(len(wasm))/1e6, "module-MB")
}
