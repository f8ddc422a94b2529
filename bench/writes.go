package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/provider/local"
)

// writesScenario: the `silo init` scaffold's hello (one table Add, a
// durable write, per request) through the gateway, against a bare net/http
// hello-world driven by the same client, at 4 and 16 clients. The gateway's
// rate limits are raised (startPlatform) so the limiter is not what is
// measured, and a request waiting for one of the runtime's concurrency
// slots waits rather than failing; every request is a durable table write,
// so this measures how the writes of one account share commits
// (provider/local/commit.go).
//
// With function concurrency 16 the same run also serves the scaffold's
// hello with its table call removed (GET /nowrite, everything else
// unchanged), so the CPU a durable write adds to a request is measured next
// to the request without it. With SILO_BENCH_CPUPROFILE the last 16-client
// round of each is profiled (.writes-<concurrency>.pprof,
// .nowrite-16.pprof); with SILO_BENCH_GOROUTINES a goroutine dump is taken
// in the middle of that round of the scaffold's hello
// (<prefix>.writes-<concurrency>.txt).
func writesScenario(ctx context.Context, cfg config) ([]row, error) {
	app := filepath.Join(cfg.dir, "scaffold")
	// The scaffold as a user gets it: silo init run from this checkout
	// (bench runs from the repository root, like go run ./bench).
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/silo", "init", app)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("silo init: %v\n%s", err, out)
	}
	var rows []row
	for _, conc := range []int{0, 16} {
		r, err := scaffoldLoad(ctx, cfg, app, conc)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

// addLoad adds run b into the total a.
func addLoad(a *loadResult, b loadResult) {
	a.ok += b.ok
	a.errs += b.errs
	a.elapsed += b.elapsed
	if a.firstErr == nil {
		a.firstErr = b.firstErr
	}
}

// loadAvg is the 1-minute load average (/proc/loadavg), or "?" where the
// system has none.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// The scaffold's table write, as silo init writes it; addNoWrite replaces
// it to build the diagnostic function.
const scaffoldAdd = `n, err := fn.Table("visits").Add("count", 1)`

// addNoWrite adds to the scaffold in app a function nowrite, the scaffold's
// hello without its table write (its count always 0), served at GET
// /nowrite with concurrency conc.
func addNoWrite(app string, conc int) error {
	src, err := os.ReadFile(filepath.Join(app, "functions/hello/main.go"))
	if err != nil {
		return err
	}
	if !strings.Contains(string(src), scaffoldAdd) {
		return fmt.Errorf("the scaffold's hello has no table write to remove (bench/writes.go expects %q)", scaffoldAdd)
	}
	dir := filepath.Join(app, "functions/nowrite")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(strings.Replace(string(src), scaffoldAdd, "n, err := int64(0), error(nil)", 1)), 0o644); err != nil {
		return err
	}
	spec := filepath.Join(app, "silo.yaml")
	b, err := os.ReadFile(spec)
	if err != nil {
		return err
	}
	s := string(b)
	for _, edit := range []struct{ after, add string }{
		{"functions:\n", fmt.Sprintf("  nowrite:\n    source: ./functions/nowrite\n    tables: {visits: read-write}\n    config: [greeting]\n    concurrency: %d\n", conc)},
		{"routes:\n", "  - {method: GET, path: /nowrite, function: nowrite}\n"},
	} {
		if !strings.Contains(s, edit.after) {
			return fmt.Errorf("%s: no %q to add the nowrite function after", spec, strings.TrimSpace(edit.after))
		}
		s = strings.Replace(s, edit.after, edit.after+edit.add, 1)
	}
	return os.WriteFile(spec, []byte(s), 0o644)
}

// scaffoldLoad serves the scaffold in app and drives its GET /hello at 4
// and 16 clients, each next to bare hello. conc > 0 declares that
// concurrency for the hello function (the spec's default is 4 invocations
// of a function at once, which bounds how many writes can share a commit)
// and adds the nowrite diagnostic (addNoWrite), measured at 16 clients.
func scaffoldLoad(ctx context.Context, cfg config, app string, conc int) ([]row, error) {
	what := "as scaffolded (function concurrency 4)"
	if conc > 0 {
		spec := filepath.Join(app, "silo.yaml")
		b, err := os.ReadFile(spec)
		if err != nil {
			return nil, err
		}
		src := "    source: ./functions/hello\n"
		if !strings.Contains(string(b), src) {
			return nil, fmt.Errorf("%s: no hello function to set the concurrency of", spec)
		}
		b = []byte(strings.Replace(string(b), src, src+fmt.Sprintf("    concurrency: %d\n", conc), 1))
		if err := os.WriteFile(spec, b, 0o644); err != nil {
			return nil, err
		}
		if err := addNoWrite(app, conc); err != nil {
			return nil, err
		}
		what = fmt.Sprintf("function concurrency %d", conc)
	}
	wcfg := cfg
	wcfg.stack = filepath.Join(app, "silo.yaml")
	lp, err := startPlatform(ctx, wcfg, fmt.Sprintf("writes-%d", conc), func(pc *platform.Config) {
		// Waiting for a concurrency slot is not a failure here: the
		// clients are closed-loop and the runtime's caps stay as they are.
		pc.Runtime.QueueWait = time.Minute
	})
	if err != nil {
		return nil, err
	}
	defer lp.Close()
	key, err := lp.tenant(ctx, "acme")
	if err != nil {
		return nil, err
	}
	helloURL, stopHello, err := helloServer()
	if err != nil {
		return nil, err
	}
	defer stopHello()
	helloReq, _ := http.NewRequest("GET", helloURL+"/", nil)

	// The paths measured next to bare hello, in this order in each round.
	type path struct {
		name, phase     string
		req             *http.Request
		got             loadResult
		cpu             time.Duration
		commits, writes int64 // the local provider's, meanwhile
	}
	prov, _ := lp.p.Provider.(*local.Provider)
	committed := func() (int64, int64) {
		if prov == nil {
			return 0, 0
		}
		return prov.Commits()
	}
	d := benchDuration()
	var rows []row
	for _, workers := range []int{4, 16} {
		paths := []*path{{name: "scaffold GET /hello req/s, one durable table write each, " + what,
			phase: fmt.Sprintf("writes-%d", conc), req: lp.request("GET", "acme", key, "/hello", "")}}
		if conc > 0 && workers == 16 {
			paths = append(paths, &path{name: "  the same hello without its table write (GET /nowrite), diagnostic",
				phase: fmt.Sprintf("nowrite-%d", conc), req: lp.request("GET", "acme", key, "/nowrite", "")})
		}
		c := newClient(workers)
		closedLoop(c, helloReq, workers, 300*time.Millisecond, 200)
		for _, p := range paths {
			if st, err := do(c, p.req); err != nil || st != 200 {
				return nil, fmt.Errorf("GET %s: status %d, %v", p.req.URL.Path, st, err)
			}
			closedLoop(c, p.req, workers, 300*time.Millisecond, 200)
		}
		load0 := loadAvg()
		var base loadResult
		var baseCPU time.Duration
		const rounds = 4
		for round := 0; round < rounds; round++ {
			last := round == rounds-1 && workers == 16
			for _, p := range paths {
				cpu0 := processCPU()
				addLoad(&base, closedLoop(c, helloReq, workers, d/rounds/time.Duration(len(paths)), 200))
				baseCPU += processCPU() - cpu0
				stop := func() {}
				if last {
					if stop, err = profile(p.phase); err != nil {
						return nil, err
					}
					if p == paths[0] {
						goroutineDump(p.phase, d/rounds/2)
					}
				}
				cpu0 = processCPU()
				c0, w0 := committed()
				addLoad(&p.got, closedLoop(c, p.req, workers, d/rounds, 200))
				p.cpu += processCPU() - cpu0
				c1, w1 := committed()
				p.commits, p.writes = p.commits+c1-c0, p.writes+w1-w0
				stop()
			}
		}
		c.CloseIdleConnections()
		if base.errs > 0 {
			return nil, fmt.Errorf("load run had errors: hello %d (%v)", base.errs, base.firstErr)
		}
		load := fmt.Sprintf("%d clients, %s; load %s → %s", workers, d, load0, loadAvg())
		bc := perRequest(baseCPU, base.ok)
		for i, p := range paths {
			if p.got.errs > 0 {
				return nil, fmt.Errorf("load run had errors: GET %s %d (%v)", p.req.URL.Path, p.got.errs, p.got.firstErr)
			}
			goal := "-"
			if workers == 16 && i == 0 {
				goal = "≥ 0.5×"
			}
			rows = append(rows, row{"writes", fmt.Sprintf("%s (%s)", p.name, load),
				fmt.Sprintf("%.0f", p.got.rps()),
				fmt.Sprintf("%.0f (bare net/http hello)", base.rps()), fmt.Sprintf("%.2f×", p.got.rps()/base.rps()), goal})
			fc := perRequest(p.cpu, p.got.ok)
			rows = append(rows, row{"writes", fmt.Sprintf("  CPU per request of GET %s (client and server, this process)", p.req.URL.Path),
				us(fc), us(bc) + " (bare net/http hello)", ratio(fc, bc), ""})
			if p.commits > 0 {
				rows = append(rows, row{"writes", fmt.Sprintf("  table writes per commit during GET %s (group commit, provider/local)", p.req.URL.Path),
					fmt.Sprintf("%.1f (%d writes in %d commits)", float64(p.writes)/float64(p.commits), p.writes, p.commits), "", "", ""})
			}
		}
	}
	return rows, nil
}

// goroutineDump writes, after wait, the goroutines of this process to
// <SILO_BENCH_GOROUTINES>.<phase>.txt when that variable is set: where
// the requests of a load phase are waiting.
func goroutineDump(phase string, wait time.Duration) {
	prefix := os.Getenv("SILO_BENCH_GOROUTINES")
	if prefix == "" {
		return
	}
	time.AfterFunc(wait, func() {
		f, err := os.Create(prefix + "." + phase + ".txt")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return
		}
		defer f.Close()
		pprof.Lookup("goroutine").WriteTo(f, 1)
	})
}
