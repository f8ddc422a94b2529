package runtime

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	goruntime "runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/sdk/fn/abi"
)

// go test ./runtime -run '^$' -bench . -benchmem

// BenchmarkInvokeWarm is a full Invoke of a trivial Go handler on a warm
// instance: encode, slot, goroutine, alloc + handle calls, decode, metrics.
func BenchmarkInvokeWarm(b *testing.B) {
	e := newEnv(b, Config{})
	req := Request{Method: "GET", Path: "/ping"}
	e.must(b, "acme", req, 200)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		resp, err := e.invoke(b, "acme", req)
		if err != nil || resp.Status != 200 {
			b.Fatal(resp.Status, err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportQuantiles(b, lat)
}

// BenchmarkInvokeWarmParallel is BenchmarkInvokeWarm from GOMAXPROCS
// goroutines (one instance each).
func BenchmarkInvokeWarmParallel(b *testing.B) {
	e := newEnv(b, Config{})
	req := Request{Method: "GET", Path: "/ping"}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := e.invoke(b, "acme", req)
			if err != nil || resp.Status != 200 {
				b.Error(resp.Status, err)
				return
			}
		}
	})
}

// rawInstance instantiates wasm in a plain wazero runtime (no limits, no
// instrumentation unless wasm is instrumented) with WASI and the silo host
// module, as a baseline.
func rawInstance(b *testing.B, wasm []byte) (api.Module, func()) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	r := &Runtime{cfg: Config{}}
	r.cfg.setDefaults()
	if err := r.instantiateHost(ctx, rt); err != nil {
		b.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("").
		WithStartFunctions("_initialize").WithRandSource(rand.Reader).WithSysNanotime())
	if err != nil {
		b.Fatal(err)
	}
	return mod, func() { rt.Close(ctx) }
}

func instrumented(b *testing.B, wasm []byte) []byte {
	m, err := parseModule(wasm)
	if err != nil {
		b.Fatal(err)
	}
	out, err := instrument(m, fuel, defaultCallStack)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkRawWazeroCall is the baseline: raw wazero calls into the same
// module, original and instrumented: the no-op export, and the /ping handler
// (silo_alloc + write + handle, as Invoke does, without the runtime around it).
//
// echo is /echo (fn.JSON of a map of six strings) with the header fields a
// client sends through the gateway: the SDK's request decoding and JSON
// encoding as a typical handler meets them.
func BenchmarkRawWazeroCall(b *testing.B) {
	req := abi.AppendRequest(nil, &abi.Request{Method: "GET", Path: "/ping"})
	echo := abi.AppendRequest(nil, &abi.Request{ID: "01JEYQ7Z4V9M2K8T3N6P5R1S0A", Method: "GET", Path: "/echo",
		Params: map[string]string{"id": "42"}, Query: map[string][]string{"q": {"x"}},
		Header: map[string][]string{"User-Agent": {"Go-http-client/1.1"}, "Accept-Encoding": {"gzip"}, "X-Test": {"<t&t>"},
			"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"}}})
	for _, v := range []struct {
		name string
		wasm []byte
	}{{"original", guestWasm}, {"instrumented", instrumented(b, guestWasm)}} {
		mod, done := rawInstance(b, v.wasm)
		defer done()
		ctx := context.WithValue(context.Background(), callKey{}, &call{deadline: time.Now().Add(time.Hour), yieldAt: time.Now().Add(time.Hour)})
		b.Run("nop/"+v.name, func(b *testing.B) {
			f := mod.ExportedFunction("nop")
			stack := make([]uint64, 1)
			for i := 0; i < b.N; i++ {
				if err := f.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, c := range []struct {
			name string
			req  []byte
		}{{"ping", req}, {"echo", echo}} {
			b.Run(c.name+"/"+v.name, func(b *testing.B) {
				// The guest runs on this goroutine's thread: its CPU time
				// is the thread's (load-robust, unlike ns/op).
				goruntime.LockOSThread()
				defer goruntime.UnlockOSThread()
				cpu0 := threadCPU()
				alloc, h := mod.ExportedFunction("silo_alloc"), mod.ExportedFunction("handle")
				st := make([]uint64, 2)
				for i := 0; i < b.N; i++ {
					st[0] = uint64(len(c.req))
					if err := alloc.CallWithStack(ctx, st); err != nil {
						b.Fatal(err)
					}
					p := uint32(st[0])
					mod.Memory().Write(p, c.req)
					st[0], st[1] = uint64(p), uint64(len(c.req))
					if err := h.CallWithStack(ctx, st); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// rawInstances instantiates n instances of wasm in one plain wazero runtime
// (one compiled module, as the runtime shares it between the instances of
// a function) with WASI and the silo host module.
func rawInstances(b *testing.B, wasm []byte, n int) []api.Module {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	b.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	r := &Runtime{cfg: Config{}}
	r.cfg.setDefaults()
	if err := r.instantiateHost(ctx, rt); err != nil {
		b.Fatal(err)
	}
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	mods := make([]api.Module, n)
	for i := range mods {
		mods[i], err = rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(fmt.Sprint("guest-", i)).
			WithStartFunctions("_initialize").WithRandSource(rand.Reader).WithSysNanotime())
		if err != nil {
			b.Fatal(err)
		}
	}
	return mods
}

// gatewayHeader is the header a request carries through the gateway from a
// Go client, as the runtime hands it to a guest.
var gatewayHeader = map[string][]string{"User-Agent": {"Go-http-client/1.1"}, "Accept-Encoding": {"gzip"},
	"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Host": {"acme.localhost"}, "X-Forwarded-Proto": {"http"}}

// BenchmarkGuestRequest is a guest's share of a request as the gateway
// sends it (request ID, forwarded header fields): raw wazero calls of
// silo_alloc and handle into the instrumented test guest, with the env's
// real host (DataHost on the local provider) answering host calls.
// cpu-ns/op is the CPU time of the calling thread, which runs the guest
// and its host calls (load-robust, unlike ns/op; the local provider's
// committer, which a table write waits for, runs elsewhere).
//
//   - const: a handler that returns fn.JSON of a constant map (bench
//     -scenario entry's Go guest);
//   - scaffold: the silo init scaffold's hello (one table Add, one fn.Log
//     line, one fn.Config read, fn.JSON);
//   - scaffold-nowrite: the same without the Add.
//
// "1-instance" sends every request to one instance; "16-instances" takes
// them in turn, as a busy function's requests spread over its pool: each
// instance's heap is then colder in the processor's caches.
func BenchmarkGuestRequest(b *testing.B) {
	e := newEnv(b, Config{Logger: slog.New(slog.DiscardHandler)})
	mods := rawInstances(b, instrumented(b, guestWasm), 16)
	host := &e.hosts["acme"].(*blockingHost).DataHost
	host.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	c := &call{rt: e.rt, host: host, acct: "acme", fn: "api", cpu: &cpuShare{cpus: &cpus{shared: 1, alone: 1}},
		deadline: time.Now().Add(time.Hour), yieldAt: time.Now().Add(time.Hour)}
	ctx := context.WithValue(context.Background(), callKey{}, c)
	type fns struct{ alloc, handle api.Function }
	var exports []fns
	for _, m := range mods {
		exports = append(exports, fns{m.ExportedFunction("silo_alloc"), m.ExportedFunction("handle")})
	}
	for _, v := range []struct {
		path      string
		instances int
	}{{"/const", 1}, {"/const", 16}, {"/scaffold-nowrite", 1}, {"/scaffold-nowrite", 16}, {"/scaffold", 1}} {
		req := abi.AppendRequest(nil, &abi.Request{ID: "01JEYQ7Z4V9M2K8T3N6P5R1S0A", Method: "GET", Path: v.path, Header: gatewayHeader})
		name := fmt.Sprintf("%s/%d-instance", v.path[1:], v.instances)
		if v.instances > 1 {
			name += "s"
		}
		b.Run(name, func(b *testing.B) {
			goruntime.LockOSThread()
			defer goruntime.UnlockOSThread()
			st := make([]uint64, 2)
			cpu0 := threadCPU()
			for i := 0; i < b.N; i++ {
				mod, f := mods[i%v.instances], exports[i%v.instances]
				c.logs = 0
				if !c.takeCPU() {
					b.Fatal("no CPU slot")
				}
				st[0] = uint64(len(req))
				if err := f.alloc.CallWithStack(ctx, st); err != nil {
					b.Fatal(err)
				}
				p := uint32(st[0])
				mod.Memory().Write(p, req)
				st[0], st[1] = uint64(p), uint64(len(req))
				if err := f.handle.CallWithStack(ctx, st); err != nil {
					b.Fatal(err)
				}
				c.leaveCPU()
				if resp, ok := mod.Memory().Read(uint32(st[0]>>32), uint32(st[0])); !ok || len(resp) == 0 || resp[0] != 200&0x7f|0x80 {
					b.Fatalf("%s: not a 200 response: %q", v.path, resp)
				}
			}
			b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// staticConfigHost is the real DataHost with Config answered from memory, to
// separate the runtime's host round trip from the provider's own cost (the
// local provider reads its config file on every call).
type staticConfigHost struct{ *DataHost }

func (staticConfigHost) Config(context.Context, string) (string, error) { return "hello", nil }

// BenchmarkHostCallConfig calls an export that makes one config_get host call
// through sdk/fn next to the no-op export; the difference is the host round
// trip (guest SDK + ABI + runtime + Host).
func BenchmarkHostCallConfig(b *testing.B) {
	e := newEnv(b, Config{})
	mod, done := rawInstance(b, instrumented(b, guestWasm))
	defer done()
	real := e.hosts["acme"].(*blockingHost).DataHost
	for _, v := range []struct {
		name, export string
		host         Host
	}{
		{"nop", "nop", &real},
		{"config/static", "config1", staticConfigHost{&real}},
		{"config/local-provider", "config1", &real},
	} {
		b.Run(v.name, func(b *testing.B) {
			c := &call{rt: e.rt, host: v.host, acct: "acme", fn: "api", deadline: time.Now().Add(time.Hour),
				cpu: &cpuShare{cpus: &cpus{shared: 1, alone: 1}}}
			ctx := context.WithValue(context.Background(), callKey{}, c)
			f := mod.ExportedFunction(v.export)
			stack := make([]uint64, 1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := f.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkColdStart measures a new instance from compiled (cached) code to
// its first response: instantiate, Go runtime init, handler. "recycled"
// gets the zeroed memory of the instance closed just before (as on a
// serving node, where instances come and go); "fresh" maps a new one, as
// the first cold start after a quiet spell does. "snapshot" starts the
// instance from the snapshot the first one gave (snapshot.go), "init"
// runs the data segments and _initialize (snapshots off), "first" does it
// with snapshots on but none kept (the first instance after a quiet
// spell: its data segments come from the artifact's image,
// memory_data.go), "capture" runs them and takes a snapshot (the second
// instance of a key in a while).
func BenchmarkColdStart(b *testing.B) {
	for _, mode := range []string{"snapshot", "init", "first", "capture"} {
		snap := mode == "snapshot"
		for _, fresh := range []bool{false, true} {
			name := mode + "/" + map[bool]string{false: "recycled", true: "fresh"}[fresh]
			b.Run(name, func(b *testing.B) {
				cfg := Config{}
				if mode == "init" {
					cfg.SnapshotMemory = -1
				}
				e := newEnv(b, cfg)
				req := Request{Path: "/ping"}
				e.must(b, "acme", req, 200)
				e.rt.Evict("acme")
				e.must(b, "acme", req, 200) // the second instance takes the snapshot
				starts := e.rt.Stats().SnapshotStarts
				key := snapKey{acct: "acme", digest: e.guest, pages: linearPages(e.rt.artifacts[e.guest], e.rt.cfg.Limits)}
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					e.rt.sweep(time.Now().Add(time.Second + e.rt.cfg.IdleTimeout))
					if fresh {
						e.rt.mem.trim(time.Now().Add(time.Hour))
					}
					switch mode {
					case "capture":
						e.rt.snap.trim(time.Now().Add(time.Hour))
						e.rt.snap.wants(key, time.Now()) // as if an instance had started before
					case "first":
						e.rt.snap.trim(time.Now().Add(time.Hour)) // the snapshot and the last start forgotten
					}
					b.StartTimer()
					t0 := time.Now()
					e.must(b, "acme", req, 200)
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				// Quantiles: the low ones move less with the machine's load.
				slices.Sort(lat)
				for _, q := range []int{10, 50, 99} {
					b.ReportMetric(float64(lat[len(lat)*q/100].Microseconds()), fmt.Sprintf("p%d-µs", q))
				}
				if got, want := e.rt.Stats().SnapshotStarts-starts, map[bool]int64{true: int64(b.N), false: 0}[snap]; got != want {
					b.Fatalf("%d instances started from a snapshot, want %d", got, want)
				}
			})
		}
	}
}

// BenchmarkCompile measures Compile of the Go guest in a fresh runtime with
// a warm disk cache (what a restarted server pays per artifact).
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		rt, err := New(Config{CacheDir: cacheDir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rt.Compile(ctx, guestWasm); err != nil {
			b.Fatal(err)
		}
		rt.Close(ctx)
	}
}

// BenchmarkRecursion is the price of the checkpoints on the worst case for
// them: 2^20 calls of a tiny recursive function, raw versus instrumented.
func BenchmarkRecursion(b *testing.B) {
	wasm := recursionModule(20)
	for _, v := range []struct {
		name string
		wasm []byte
	}{{"original", wasm}, {"instrumented", instrumented(b, wasm)}} {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
			defer rt.Close(ctx)
			r := &Runtime{}
			r.cfg.setDefaults()
			if err := r.instantiateHost(ctx, rt); err != nil {
				b.Fatal(err)
			}
			mod, err := rt.InstantiateWithConfig(ctx, v.wasm, wazero.NewModuleConfig().WithName(""))
			if err != nil {
				b.Fatal(err)
			}
			f := mod.ExportedFunction("handle")
			c := &call{rt: r, deadline: time.Now().Add(time.Hour), yieldAt: time.Now().Add(time.Hour)}
			cctx := context.WithValue(ctx, callKey{}, c)
			stack := make([]uint64, 2)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := f.CallWithStack(cctx, stack); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(1<<21), "ns/wasm-call")
		})
	}
}

var _ = fmt.Sprint
var _ silo.AccountID

// BenchmarkInvokeWarmStuckNeighbours is BenchmarkInvokeWarm for one tenant
// while another runs 2×GOMAXPROCS+1 guests stuck in infinite loops: the
// ratio to BenchmarkInvokeWarm is what a noisy neighbour costs.
func BenchmarkInvokeWarmStuckNeighbours(b *testing.B) {
	e := newEnv(b, Config{})
	n := 2*goruntime.GOMAXPROCS(0) + 1
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.rt.Invoke(ctx, Invocation{Account: "acme", Function: "api", Digest: e.guest, Host: e.hosts["acme"],
				Limits: Limits{Timeout: time.Hour}, Request: Request{Path: "/loop"}})
		}()
	}
	for {
		s := e.rt.Stats()
		if s.Instances-s.Idle >= n {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	req := Request{Method: "GET", Path: "/ping"}
	e.must(b, "globex", req, 200)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		resp, err := e.invoke(b, "globex", req)
		if err != nil || resp.Status != 200 {
			b.Fatal(resp.Status, err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportQuantiles(b, lat)
	cancel()
	wg.Wait()
}

func reportQuantiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)*999/1000].Microseconds()), "p999-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}

// BenchmarkInstrument is the deploy-time rewrite of the Go guest alone
// (parse and instrument).
func BenchmarkInstrument(b *testing.B) {
	for i := 0; i < b.N; i++ {
		m, err := parseModule(guestWasm)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := instrument(m, fuel, defaultCallStack); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileCold is wazero compiling the instrumented Go guest with
// no cache (what the first deploy of a module pays).
func BenchmarkCompileCold(b *testing.B) {
	wasm := instrumented(b, guestWasm)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
		if _, err := rt.CompileModule(ctx, wasm); err != nil {
			b.Fatal(err)
		}
		rt.Close(ctx)
	}
}
