package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

var scenarios = []scenario{
	{"fleet", fleetScenario}, {"gateway", gatewayScenario}, {"entry", entryScenario}, {"coldstart", coldstartScenario}, {"hostcall", hostcallScenario}, {"noisy", noisyScenario}, {"idle-memory", idleMemoryScenario},
	{"metering", meteringScenario}, {"usage-size", usageSizeScenario}, {"writes", writesScenario}, {"cli-scale", cliScaleScenario},
}

// fleet is an opened control plane on a fresh data dir.
type fleet struct {
	params map[string]string // values for the stack's required parameters
	store  *sqlite.Store
	prov   *local.Provider
	eng    *engine.Engine
	rel    engine.Release
}

func openFleet(ctx context.Context, cfg config, name string) (*fleet, error) {
	dir := filepath.Join(cfg.dir, name)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		return nil, err
	}
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		return nil, err
	}
	stack, err := spec.Load(cfg.stack)
	if err != nil {
		return nil, err
	}
	// Function artifacts are built and compiled at deploy, not at
	// onboarding; the provider records their digests, so stand-in digests
	// measure onboarding exactly.
	arts := map[string]string{}
	for name := range stack.Functions {
		arts[name] = "sha256:" + strings.Repeat("ab", 32)
	}
	for name := range stack.Production.Functions {
		arts[engine.ArtifactKey(true, name)] = "sha256:" + strings.Repeat("cd", 32)
	}
	rel, _, err := engine.NewRelease(stack, arts, time.Now())
	if err != nil {
		return nil, err
	}
	params := map[string]string{}
	for name, p := range stack.Params {
		if p.Required {
			params[name] = "bench"
		}
	}
	f := &fleet{params: params, store: st, prov: prov, eng: engine.New(engine.Config{Store: st, Provider: prov, Concurrency: 4}), rel: rel}
	_, err = f.eng.CreateAccount(ctx, silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction}, rel)
	return f, err
}

func (f *fleet) Close() { f.prov.Close(); f.store.Close() }

func tenantID(i int) string { return "t" + strconv.Itoa(i) }

// fleetScenario measures onboarding latency, the time to create the whole
// fleet, a no-change plan over all of it, and the resident memory of a
// control plane holding it.
func fleetScenario(ctx context.Context, cfg config) ([]row, error) {
	f, err := openFleet(ctx, cfg, "fleet")
	if err != nil {
		return nil, err
	}
	defer f.Close()

	// Baseline: one durable (fsync'd) control-plane write transaction.
	var base []time.Duration
	for i := 0; i < 200; i++ {
		t0 := time.Now()
		if err := f.store.Update(ctx, func(tx store.Tx) error { return tx.PutSetting("bench", strconv.Itoa(i)) }); err != nil {
			return nil, err
		}
		base = append(base, time.Since(t0))
	}

	// Onboarding, one tenant at a time.
	const sample = 200
	n := cfg.tenants
	var lat []time.Duration
	start := time.Now()
	for i := 0; i < sample && i < n; i++ {
		t0 := time.Now()
		if _, err := f.eng.CreateAccount(ctx, silo.Account{ID: silo.AccountID(tenantID(i)), Kind: silo.KindTenant, Params: f.params}, f.rel); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	// The rest of the fleet, four at a time.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := sample
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				if _, err := f.eng.CreateAccount(ctx, silo.Account{ID: silo.AccountID(tenantID(i)), Kind: silo.KindTenant, Params: f.params}, f.rel); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	total := time.Since(start)

	// No-change plan over the whole fleet, and the baseline: the same plan
	// without the content-hash shortcut (read recorded state, diff each).
	// The control-plane log's size at its start is reported with it: the
	// plan reads every page the log holds from the log.
	walAtPlan := fileSize(filepath.Join(cfg.dir, "fleet", "state.db-wal"))
	stopProfile, err := profile("plan")
	if err != nil {
		return nil, err
	}
	cpu0 := processCPU()
	t0 := time.Now()
	changed := 0
	err = f.eng.PlanFleet(ctx, f.rel, store.Filter{}, func(p silo.Plan, err error) error {
		if err != nil {
			return err
		}
		if p.Touches() {
			changed++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	planAll := time.Since(t0)
	planCPU := processCPU() - cpu0
	stopProfile()
	if changed != 0 {
		return nil, fmt.Errorf("no-change plan found %d accounts to change", changed)
	}
	t0 = time.Now()
	err = f.eng.PlanFleet(ctx, f.rel, store.Filter{}, func(p silo.Plan, err error) error {
		if err != nil {
			return err
		}
		var a silo.Account
		var rs []silo.Resource
		if err := f.store.View(ctx, func(tx store.Tx) error {
			var err error
			if a, err = tx.Account(p.Account); err != nil {
				return err
			}
			rs, err = tx.Resources(p.Account)
			return err
		}); err != nil {
			return err
		}
		d, err := engine.Desired(f.rel.Stack, f.rel.Artifacts, a)
		if err != nil {
			return err
		}
		if ch, _ := engine.Diff(d, rs); len(ch) != 0 {
			return fmt.Errorf("full diff of %s found changes", a.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	fullDiff := time.Since(t0)

	runtime.GC()
	rss := residentBytes()
	perPlan := planAll / time.Duration(n+1)
	perFull := fullDiff / time.Duration(n+1)
	return []row{
		{"onboard", "one tenant, p50", ms(pct(lat, 50)), ms(pct(base, 50)) + " (1 durable txn)", ratio(pct(lat, 50), pct(base, 50)), "≤ 5 ms (quiet machine)"},
		{"onboard", "one tenant, p95", ms(pct(lat, 95)), ms(pct(base, 95)) + " (1 durable txn)", ratio(pct(lat, 95), pct(base, 95)), "≤ 50 ms"},
		{"fleet", fmt.Sprintf("create %d tenants", n), total.Round(time.Millisecond).String(), "", "", "≤ 60 s for 10,000"},
		{"plan", fmt.Sprintf("no-change plan --all, %d accounts", n+1), planAll.Round(time.Millisecond).String(), fullDiff.Round(time.Millisecond).String() + " (full diff)", ratio(planAll, fullDiff), "≤ 1 s for 10,000"},
		{"plan", "per account", us(perPlan), us(perFull) + " (full diff)", ratio(perPlan, perFull), ""},
		{"plan", "no-change plan --all: CPU of this process", planCPU.Round(time.Millisecond).String(), "", "", ""},
		{"plan", "control-plane log (state.db-wal) at the plan's start", fmt.Sprintf("%.1f MiB", float64(walAtPlan)/(1<<20)), "", "", ""},
		{"memory", fmt.Sprintf("RSS holding %d idle tenants", n), fmt.Sprintf("%.0f MiB", float64(rss)/(1<<20)), "", "", "≤ 300 MiB for 10,000"},
	}, nil
}

// fileSize is the size of the file at path, 0 if it does not exist.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }
func ratio(a, b time.Duration) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// residentBytes reads VmRSS from /proc (Linux).
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
