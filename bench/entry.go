package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// entryStack is the stack of the entry scenario: a Go function whose
// handler returns a constant (fn.JSON) and a minimal hand-assembled module
// whose handle export returns a constant response, each behind a route.
const entryStack = `version: 1
name: entry

functions:
  constgo:
    source: ./functions/hello
  constwasm:
    source: ./functions/const.wasm

routes:
  - {method: GET, path: /go, function: constgo}
  - {method: GET, path: /wasm, function: constwasm}
`

const entryGo = `// Command hello answers every request with the same small JSON object.
package main

import "github.com/silo-run/silo/sdk/fn"

func init() {
	fn.Handle(func(r *fn.Request) *fn.Response {
		return fn.JSON(200, map[string]bool{"ok": true})
	})
}

func main() {}
`

// entryScenario: what entering a function costs through the gateway. A
// bare net/http hello (the baseline) alternates in four rounds with the
// gateway and a Go guest whose handler returns a constant, the gateway and
// a constant .wasm, and the gateway with no route (no function), all from
// the same client with 16 workers. The Go function is the silo init
// scaffold's, its handler replaced. With SILO_BENCH_CPUPROFILE the last
// round of the Go guest and of the .wasm are profiled (.entry-go.pprof,
// .entry-wasm.pprof).
func entryScenario(ctx context.Context, cfg config) ([]row, error) {
	const workers = 16
	app := filepath.Join(cfg.dir, "entry")
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/silo", "init", app)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("silo init: %v\n%s", err, out)
	}
	wasm, err := hostcallModule()
	if err != nil {
		return nil, err
	}
	for name, b := range map[string][]byte{
		"silo.yaml":               []byte(entryStack),
		"functions/hello/main.go": []byte(entryGo),
		"functions/const.wasm":    wasm,
	} {
		if err := os.WriteFile(filepath.Join(app, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	ecfg := cfg
	ecfg.stack = filepath.Join(app, "silo.yaml")
	lp, err := startPlatform(ctx, ecfg, "dp-entry", nil)
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
	paths := []struct {
		name string
		req  *http.Request
		want int
	}{
		{"gateway + Go guest, constant fn.JSON handler", lp.request("GET", "acme", key, "/go", ""), 200},
		{"gateway + constant .wasm (hand-assembled, 1 page of code)", lp.request("GET", "acme", key, "/wasm", ""), 200},
		{"gateway alone (authenticated, no route: 404)", lp.request("GET", "acme", key, "/no-such-route", ""), 404},
	}
	c := newClient(workers)
	defer c.CloseIdleConnections()
	for _, p := range paths {
		if st, err := do(c, p.req); err != nil || st != p.want {
			return nil, fmt.Errorf("%s: status %d, %v", p.name, st, err)
		}
		closedLoop(c, p.req, workers, 300*time.Millisecond, p.want)
	}
	closedLoop(c, helloReq, workers, 300*time.Millisecond, 200)

	d := benchDuration()
	load0 := loadAvg()
	var base loadResult
	var baseCPU time.Duration
	got := make([]loadResult, len(paths))
	gotCPU := make([]time.Duration, len(paths))
	const rounds = 4
	for round := 0; round < rounds; round++ {
		for i, p := range paths {
			cpu0 := processCPU()
			addLoad(&base, closedLoop(c, helloReq, workers, d/rounds, 200))
			baseCPU += processCPU() - cpu0
			stop := func() {}
			if round == rounds-1 && i < 2 {
				if stop, err = profile([]string{"entry-go", "entry-wasm"}[i]); err != nil {
					return nil, err
				}
			}
			cpu0 = processCPU()
			addLoad(&got[i], closedLoop(c, p.req, workers, d/rounds, p.want))
			gotCPU[i] += processCPU() - cpu0
			stop()
		}
	}
	if base.errs > 0 {
		return nil, fmt.Errorf("hello had %d errors (%v)", base.errs, base.firstErr)
	}
	goals := []string{"≥ 0.75×", "≥ 0.85×", "-"}
	load := fmt.Sprintf("load %s → %s", load0, loadAvg())
	var rows []row
	for i, p := range paths {
		if got[i].errs > 0 {
			return nil, fmt.Errorf("%s had %d errors (%v)", p.name, got[i].errs, got[i].firstErr)
		}
		rows = append(rows, row{"entry", fmt.Sprintf("%s req/s (%d workers, %s; %s)", p.name, workers, d, load),
			fmt.Sprintf("%.0f", got[i].rps()), fmt.Sprintf("%.0f (bare net/http hello)", base.rps()),
			fmt.Sprintf("%.2f×", got[i].rps()/base.rps()), goals[i]})
		fnCPU, helloCPU := perRequest(gotCPU[i], got[i].ok), perRequest(baseCPU, base.ok)
		rows = append(rows, row{"entry", p.name + ": CPU per request (client and server, this process)",
			us(fnCPU), us(helloCPU) + " (bare net/http hello)", ratio(fnCPU, helloCPU), ""})
	}
	return rows, nil
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func perRequest(cpu time.Duration, n int64) time.Duration {
	if n <= 0 {
		return 0
	}
	return cpu / time.Duration(n)
}
