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
		n, err := cacheEntries(dir)
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

// TestProbeCache: a cache that already holds the probe (here: from an
// earlier probe, as a package carries it from the machine it was built
// on) reports a hit; an empty one, and one whose entries were compiled
// elsewhere under another key, a miss.
func TestProbeCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if hit, err := ProbeCache(ctx, dir); err != nil || hit {
		t.Fatalf("first probe: %v, %v; want a miss", hit, err)
	}
	if hit, err := ProbeCache(ctx, dir); err != nil || !hit {
		t.Fatalf("second probe: %v, %v; want a hit", hit, err)
	}
	// Another machine's entries: the same files under other names (another
	// key: other CPU features or wazero version).
	other := t.TempDir()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			os.MkdirAll(filepath.Join(other, filepath.Dir(rel)), 0o700)
			b, _ := os.ReadFile(p)
			os.WriteFile(filepath.Join(other, rel+"0"), b, 0o600)
		}
		return err
	})
	if hit, err := ProbeCache(ctx, other); err != nil || hit {
		t.Fatalf("probe of another machine's cache: %v, %v; want a miss", hit, err)
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
// interpreter) and compile (CompilePrepared to machine code, no cache).
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
