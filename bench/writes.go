package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/silo-run/silo/platform"
)

// writesScenario: the `silo init` scaffold's hello (one table read and one
// table write per request) through the gateway, against a bare net/http
// hello-world driven by the same client, at 4 and 16 clients. The gateway's
// rate limits are raised (startPlatform) so the limiter is not what is
// measured, and a request waiting for one of the runtime's concurrency
// slots waits rather than failing; every request is a durable table write, so this measures how
// the writes of one account share commits (provider/local/commit.go).
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

// scaffoldLoad serves the scaffold in app and drives its GET /hello at 4
// and 16 clients, each next to bare hello. conc > 0 declares that
// concurrency for the hello function (the spec's default is 4 invocations
// of a function at once, which bounds how many writes can share a commit).
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
	fnReq := lp.request("GET", "acme", key, "/hello", "")

	d := benchDuration()
	var rows []row
	for _, workers := range []int{4, 16} {
		c := newClient(workers)
		if st, err := do(c, fnReq); err != nil || st != 200 {
			return nil, fmt.Errorf("GET /hello: status %d, %v", st, err)
		}
		closedLoop(c, helloReq, workers, 300*time.Millisecond, 200)
		closedLoop(c, fnReq, workers, 300*time.Millisecond, 200)
		load0 := loadAvg()
		var base, fn loadResult
		const rounds = 4
		for round := 0; round < rounds; round++ {
			addLoad(&base, closedLoop(c, helloReq, workers, d/rounds, 200))
			addLoad(&fn, closedLoop(c, fnReq, workers, d/rounds, 200))
		}
		c.CloseIdleConnections()
		if base.errs > 0 || fn.errs > 0 {
			return nil, fmt.Errorf("load run had errors: hello %d (%v), scaffold hello %d (%v)", base.errs, base.firstErr, fn.errs, fn.firstErr)
		}
		goal := "-"
		if workers == 16 {
			goal = "≥ 0.5×"
		}
		rows = append(rows, row{"writes",
			fmt.Sprintf("scaffold GET /hello req/s, one durable table write each, %s (%d clients, %s; load %s → %s)", what, workers, d, load0, loadAvg()),
			fmt.Sprintf("%.0f", fn.rps()),
			fmt.Sprintf("%.0f (bare net/http hello)", base.rps()), fmt.Sprintf("%.2f×", fn.rps()/base.rps()), goal})
	}
	return rows, nil
}
