package main

// The data-plane scenarios (docs/benchmarks-dataplane.md): requests through the real
// gateway and a warm instance of the example's list function, cold start,
// host-call round trip, noisy neighbour and idle memory. Each runs the whole
// platform in process (platform.Open + Serve on 127.0.0.1:0) and drives it
// over loopback HTTP with a bounded load generator (every loop is bounded in
// count and in time), next to a baseline measured in the same run.
//
// Sizes: the defaults are CI-sized. Full sizes:
//
//	go run ./bench -scenario idle-memory -tenants 1000
//	SILO_BENCH_DURATION=10s SILO_BENCH_SAMPLES=1000 go run ./bench -scenario gateway,coldstart,noisy
//
// (-tenants is the harness's flag; the two variables stand in for flags
// main.go does not have.)

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/platform"
)

// benchDuration is how long each throughput or latency phase runs.
func benchDuration() time.Duration {
	if v := os.Getenv("SILO_BENCH_DURATION"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 && d <= 10*time.Minute {
			return d
		}
	}
	return 5 * time.Second
}

// benchSamples is how many cold starts the coldstart scenario takes.
func benchSamples() int {
	if v := os.Getenv("SILO_BENCH_SAMPLES"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 100000 {
			return n
		}
	}
	return 200
}

// flagGiven reports whether the harness was run with -name or --name.
func flagGiven(name string) bool {
	for _, a := range os.Args[1:] {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// profile starts a CPU profile of a phase when SILO_BENCH_CPUPROFILE names
// a file prefix (the harness has no -cpuprofile flag); the profile goes to
// <prefix>.<phase>.pprof, overwritten by later rounds of the same phase.
//
// With SILO_BENCH_TRACE naming a file prefix, the same phases are traced
// instead (runtime/trace, <prefix>.<phase>.trace): which goroutine wakes
// which, per request (go tool trace). A trace and a profile are not taken
// together, each disturbing the other.
func profile(phase string) (stop func(), err error) {
	if prefix := os.Getenv("SILO_BENCH_TRACE"); prefix != "" {
		f, err := os.Create(prefix + "." + phase + ".trace")
		if err != nil {
			return nil, err
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			return nil, err
		}
		return func() { trace.Stop(); f.Close() }, nil
	}
	prefix := os.Getenv("SILO_BENCH_CPUPROFILE")
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(prefix + "." + phase + ".pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// appDir is the example app the data-plane scenarios deploy: the directory
// of the harness's -stack.
func appDir(cfg config) string { return filepath.Dir(cfg.stack) }

// buildCache is shared with silotest (same location, same keys), so a
// machine that ran the tests does not build the example again.
func buildCache() string {
	if d := os.Getenv("SILO_TEST_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "silo-test-cache")
}

// livePlatform is a platform serving its gateway on 127.0.0.1:0.
type livePlatform struct {
	p    *platform.Platform
	url  string // http://127.0.0.1:port
	stop context.CancelFunc
	done chan error
}

// startPlatform opens a platform in cfg.dir/name with the example deployed,
// and serves it on a random loopback port. tune adjusts the configuration.
func startPlatform(ctx context.Context, cfg config, name string, tune func(*platform.Config)) (*livePlatform, error) {
	cache := buildCache()
	pc := platform.Config{
		DataDir:      filepath.Join(cfg.dir, name),
		Listen:       "127.0.0.1:0",
		BuildCache:   filepath.Join(cache, "builds"),
		CompileCache: filepath.Join(cache, "compiled"),
		Refresh:      time.Hour, // nothing changes behind the platform's back here
		ReapEvery:    time.Hour,
		Gateway:      gateway.Config{RatePerSecond: 1e6, Burst: 1e6, MaxConcurrent: 1024},
	}
	if tune != nil {
		tune(&pc)
	}
	p, err := platform.Open(ctx, pc)
	if err != nil {
		return nil, err
	}
	if _, err := p.Deploy(ctx, appDir(cfg)); err != nil {
		p.Close()
		return nil, fmt.Errorf("deploy %s: %w", appDir(cfg), err)
	}
	ln, err := p.Listen()
	if err != nil {
		p.Close()
		return nil, err
	}
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	lp := &livePlatform{p: p, url: "http://" + ln.Addr().String(), stop: stop, done: make(chan error, 1)}
	go func() { lp.done <- p.Serve(sctx, ln) }()
	return lp, nil
}

func (lp *livePlatform) Close() error {
	lp.stop()
	err := <-lp.done
	return errors.Join(err, lp.p.Close())
}

// tenant creates a tenant with an API key and returns a request template
// for GET /findings of it.
func (lp *livePlatform) tenant(ctx context.Context, id string) (key string, err error) {
	c, err := lp.p.CreateAccount(ctx, control.CreateRequest{ID: id, Kind: silo.KindTenant, WithKey: true})
	if err != nil {
		return "", fmt.Errorf("create tenant %s: %w", id, err)
	}
	return c.Key, nil
}

// request builds a request to the gateway for a tenant.
func (lp *livePlatform) request(method, tenant, key, path, body string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, lp.url+path, rd)
	req.Host = tenant + ".localhost"
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// newClient is the load generator's client: keep-alive HTTP/1.1, one idle
// connection per worker, loopback only.
func newClient(workers int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil || host != "127.0.0.1" {
				return nil, fmt.Errorf("load generator dials 127.0.0.1 only, not %s", addr)
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        workers,
		MaxIdleConnsPerHost: workers,
		MaxConnsPerHost:     workers,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// do sends one request and reads the whole response; it returns the status
// (0 for a transport error).
func do(c *http.Client, req *http.Request) (int, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// loadResult is what a closed-loop load run measured.
type loadResult struct {
	ok, errs int64
	statuses map[int]int64
	elapsed  time.Duration
	firstErr error

	quiet     []time.Duration // the quiet tenant's latencies meanwhile (noisy)
	quietErrs int
}

func (r loadResult) rps() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// maxRequestsPerRun bounds each load run in count as well as in time.
const maxRequestsPerRun = 20_000_000

// closedLoop runs workers goroutines, each sending req (cloned) back to back
// on its own keep-alive connection, for d; a request counts as ok when its
// status is want.
func closedLoop(c *http.Client, req *http.Request, workers int, d time.Duration, want int) loadResult {
	var ok, errs, sent atomic.Int64
	var mu sync.Mutex
	res := loadResult{statuses: map[int]int64{}}
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[int]int64{}
			r := req.Clone(context.Background())
			for time.Now().Before(deadline) && sent.Add(1) <= maxRequestsPerRun {
				st, err := do(c, r)
				local[st]++
				if err == nil && st == want {
					ok.Add(1)
					continue
				}
				errs.Add(1)
				if err == nil {
					err = fmt.Errorf("status %d", st)
				}
				mu.Lock()
				if res.firstErr == nil {
					res.firstErr = err
				}
				mu.Unlock()
			}
			mu.Lock()
			for k, v := range local {
				res.statuses[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.ok, res.errs = ok.Load(), errs.Load()
	return res
}

// helloServer is the baseline: a bare net/http hello-world on loopback.
func helloServer() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello\n")
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// gatewayScenario: requests/s through the gateway and a warm instance of the
// example's list function, against a bare net/http hello-world driven by the
// same client, workers and duration. The two alternate in four rounds so a
// change of machine load touches both (the CPU profile covers the last).
func gatewayScenario(ctx context.Context, cfg config) ([]row, error) {
	const workers = 16
	d := benchDuration()
	lp, err := startPlatform(ctx, cfg, "dp-gateway", nil)
	if err != nil {
		return nil, err
	}
	defer lp.Close()
	key, err := lp.tenant(ctx, "acme")
	if err != nil {
		return nil, err
	}
	c := newClient(workers)
	defer c.CloseIdleConnections()
	if st, err := do(c, lp.request("POST", "acme", key, "/findings", `{"severity":"high","app":"github"}`)); err != nil || st != 201 {
		return nil, fmt.Errorf("ingest a finding: status %d, %v", st, err)
	}
	gwReq := lp.request("GET", "acme", key, "/findings", "")
	if st, err := do(c, gwReq); err != nil || st != 200 {
		return nil, fmt.Errorf("GET /findings: status %d, %v", st, err)
	}
	helloURL, stopHello, err := helloServer()
	if err != nil {
		return nil, err
	}
	defer stopHello()
	helloReq, _ := http.NewRequest("GET", helloURL+"/", nil)
	// The gateway without a function: authenticated, routed, no route (404).
	noRoute := lp.request("GET", "acme", key, "/no-such-route", "")

	// Warm both (connections, instances, caches) for a moment.
	closedLoop(c, helloReq, workers, 300*time.Millisecond, 200)
	closedLoop(c, gwReq, workers, 300*time.Millisecond, 200)

	var base, gw, bare loadResult
	add := func(a *loadResult, b loadResult) {
		a.ok += b.ok
		a.errs += b.errs
		a.elapsed += b.elapsed
		if a.firstErr == nil {
			a.firstErr = b.firstErr
		}
	}
	const rounds = 4
	var baseCPU, gwCPU time.Duration
	for round := 0; round < rounds; round++ {
		cpu0 := processCPU()
		add(&base, closedLoop(c, helloReq, workers, d/rounds, 200))
		baseCPU += processCPU() - cpu0
		stopProfile := func() {}
		if round == rounds-1 {
			if stopProfile, err = profile("gateway"); err != nil {
				return nil, err
			}
		}
		cpu0 = processCPU()
		add(&gw, closedLoop(c, gwReq, workers, d/rounds, 200))
		gwCPU += processCPU() - cpu0
		stopProfile()
	}
	add(&bare, closedLoop(c, noRoute, workers, d/2, 404))
	if base.errs > 0 || gw.errs > 0 || bare.errs > 0 {
		return nil, fmt.Errorf("load run had errors: hello %d (%v), gateway %d (%v), no route %d (%v)", base.errs, base.firstErr, gw.errs, gw.firstErr, bare.errs, bare.firstErr)
	}
	s := lp.p.Runtime.Stats()
	return []row{
		{"gateway", fmt.Sprintf("GET /findings req/s (%d workers, %s, warm list fn)", workers, d), fmt.Sprintf("%.0f", gw.rps()),
			fmt.Sprintf("%.0f (bare net/http hello)", base.rps()), fmt.Sprintf("%.2f×", gw.rps()/base.rps()), "≥ 0.65×"},
		{"gateway", "GET /findings: CPU per request (client and server, this process)", us(perRequest(gwCPU, gw.ok)),
			us(perRequest(baseCPU, base.ok)) + " (bare net/http hello)", ratio(perRequest(gwCPU, gw.ok), perRequest(baseCPU, base.ok)), ""},
		{"gateway", fmt.Sprintf("authenticated request, no route (404), req/s (%s)", d/2), fmt.Sprintf("%.0f", bare.rps()),
			fmt.Sprintf("%.0f (bare net/http hello)", base.rps()), fmt.Sprintf("%.2f×", bare.rps()/base.rps()), "(gateway alone, no function)"},
		{"gateway", "instances after the run", strconv.Itoa(s.Instances), "", "", ""},
	}, nil
}

// coldstartScenario: a new instance of the list function from the compiled
// cache to its first response, end to end through the gateway, against a
// warm call of the same function right after. A 20 ms runtime IdleTimeout
// evicts the instance between samples; the scenario waits until the runtime
// holds no instance before each cold call. It measures three times: right
// after the eviction, when the new instance gets the closed one's memory,
// zeroed (a serving node, where instances come and go), and starts from
// the snapshot its account's first instance gave (runtime/snapshot.go);
// after the runtime has given its pooled memories back, when the new
// instance maps fresh pages (still from the snapshot); and after the
// snapshot was dropped too (the first instance after a quiet spell, which
// runs the data segments and the Go runtime's init, and takes no snapshot).
func coldstartScenario(ctx context.Context, cfg config) ([]row, error) {
	const quietIdle = 20 * time.Millisecond // the runtime's IdleTimeout
	n := benchSamples()
	lp, err := startPlatform(ctx, cfg, "dp-coldstart", func(pc *platform.Config) { pc.Runtime.IdleTimeout = quietIdle })
	if err != nil {
		return nil, err
	}
	defer lp.Close()
	key, err := lp.tenant(ctx, "acme")
	if err != nil {
		return nil, err
	}
	c := newClient(1)
	defer c.CloseIdleConnections()
	if st, err := do(c, lp.request("POST", "acme", key, "/findings", `{"severity":"high","app":"github"}`)); err != nil || st != 200 && st != 201 {
		return nil, fmt.Errorf("ingest a finding: status %d, %v", st, err)
	}
	req := lp.request("GET", "acme", key, "/findings", "")
	var rows []row
	for _, phase := range []string{"recycled", "fresh", "quiet"} {
		fresh, quiet := phase != "recycled", phase == "quiet"
		stopProfile, err := profile("coldstart-" + phase)
		if err != nil {
			return nil, err
		}
		var cold, warm []time.Duration
		var fromSnapshot int64
		limit := time.Now().Add(time.Duration(n)*200*time.Millisecond + 30*time.Second)
		for i := 0; i < n+5 && time.Now().Before(limit); i++ {
			// Wait (bounded) for the eviction of every instance, for
			// fresh, for the pool to be given back too, and for quiet,
			// for the snapshot to be dropped as well.
			waiting := func() bool {
				s := lp.p.Runtime.Stats()
				return s.Instances > 0 || fresh && s.PooledMemories > 0 || quiet && s.Snapshots > 0
			}
			for w := 0; w < 500 && waiting(); w++ {
				time.Sleep(2 * time.Millisecond)
			}
			if waiting() {
				s := lp.p.Runtime.Stats()
				return nil, fmt.Errorf("%d instances, %d pooled memories and %d snapshots still held 1 s past the idle timeout", s.Instances, s.PooledMemories, s.Snapshots)
			}
			if quiet {
				// Long enough for the runtime to forget the last start
				// too: the next instance is a first one, which takes no
				// snapshot (the second in a while does; its cost is in
				// BenchmarkColdStart/capture).
				time.Sleep(5 * quietIdle)
			}
			starts := lp.p.Runtime.Stats().SnapshotStarts
			t0 := time.Now()
			st, err := do(c, req)
			dc := time.Since(t0)
			if err != nil || st != 200 {
				return nil, fmt.Errorf("cold GET /findings: status %d, %v", st, err)
			}
			t0 = time.Now()
			st, err = do(c, req)
			dw := time.Since(t0)
			if err != nil || st != 200 {
				return nil, fmt.Errorf("warm GET /findings: status %d, %v", st, err)
			}
			if i < 5 {
				continue // warm-up: connection, directory, page cache
			}
			fromSnapshot += lp.p.Runtime.Stats().SnapshotStarts - starts
			cold = append(cold, dc)
			warm = append(warm, dw)
		}
		stopProfile()
		if len(cold) == 0 {
			return nil, fmt.Errorf("no cold start measured")
		}
		what := map[string]string{
			"recycled": "memory recycled",
			"fresh":    "fresh memory, after the memory pool was given back",
			"quiet":    "after a quiet spell: fresh memory, no snapshot",
		}[phase]
		what += fmt.Sprintf("; %d of %d from a snapshot", fromSnapshot, len(cold))
		goal := "≤ 2 ms"
		if quiet {
			goal = "(reported)"
		}
		rows = append(rows,
			row{"coldstart", fmt.Sprintf("first response of a new instance (%s), p50 (%d samples)", what, len(cold)), ms(pct(cold, 50)), ms(pct(warm, 50)) + " (warm call)", ratio(pct(cold, 50), pct(warm, 50)), ""},
			row{"coldstart", fmt.Sprintf("first response of a new instance (%s), p99", what), ms(pct(cold, 99)), ms(pct(warm, 99)) + " (warm call)", ratio(pct(cold, 99), pct(warm, 99)), goal},
		)
	}
	return rows, nil
}
