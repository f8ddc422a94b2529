package main

// The usage scenarios (docs/benchmarks.md, "Usage metering"):
//
//	go run ./bench -scenario metering         # gateway req/s with metering on and off, against hello
//	go run ./bench -scenario usage-size -tenants 10000   # bytes stored for 90 days of hourly usage

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// meteringScenario runs the gateway scenario's request (GET /findings, a
// warm function) against two platforms in one process, one metering and
// one not, alternating with the bare net/http hello in the same run, and
// reports each against hello and metering on against off. It also checks
// that the meter counted every request it served.
func meteringScenario(ctx context.Context, cfg config) ([]row, error) {
	const workers = 16
	d := benchDuration()
	on, err := startPlatform(ctx, cfg, "usage-on", nil)
	if err != nil {
		return nil, err
	}
	defer on.Close()
	off, err := startPlatform(ctx, cfg, "usage-off", func(pc *platform.Config) { pc.Usage.Off = true })
	if err != nil {
		return nil, err
	}
	defer off.Close()
	c := newClient(workers)
	defer c.CloseIdleConnections()
	reqs := map[*livePlatform]*http.Request{}
	for _, lp := range []*livePlatform{on, off} {
		key, err := lp.tenant(ctx, "acme")
		if err != nil {
			return nil, err
		}
		if st, err := do(c, lp.request("POST", "acme", key, "/findings", `{"severity":"high","app":"github"}`)); err != nil || st != 201 {
			return nil, fmt.Errorf("ingest a finding: status %d, %v", st, err)
		}
		reqs[lp] = lp.request("GET", "acme", key, "/findings", "")
	}
	helloURL, stopHello, err := helloServer()
	if err != nil {
		return nil, err
	}
	defer stopHello()
	helloReq, _ := http.NewRequest("GET", helloURL+"/", nil)
	closedLoop(c, helloReq, workers, 300*time.Millisecond, 200)
	closedLoop(c, reqs[on], workers, 300*time.Millisecond, 200)
	closedLoop(c, reqs[off], workers, 300*time.Millisecond, 200)
	if err := on.p.Usage.Flush(ctx); err != nil {
		return nil, err
	}
	before, err := storedRequests(ctx, on.p.Store)
	if err != nil {
		return nil, err
	}

	var hello, mOn, mOff loadResult
	add := func(a *loadResult, b loadResult) {
		a.ok, a.errs, a.elapsed = a.ok+b.ok, a.errs+b.errs, a.elapsed+b.elapsed
		if a.firstErr == nil {
			a.firstErr = b.firstErr
		}
	}
	// Many short rounds, each running hello, then on and off back to back
	// in alternating order, so that load from other jobs falls on both
	// sides alike; the per-round on/off ratios give a median and spread.
	const rounds = 24
	var ratios []float64
	for round := range rounds {
		first, second := on, off
		if round%2 == 1 {
			first, second = off, on
		}
		add(&hello, closedLoop(c, helloReq, workers, d/rounds, 200))
		got := map[*livePlatform]loadResult{}
		for _, lp := range []*livePlatform{first, second} {
			got[lp] = closedLoop(c, reqs[lp], workers, d/rounds, 200)
		}
		add(&mOn, got[on])
		add(&mOff, got[off])
		ratios = append(ratios, got[on].rps()/got[off].rps())
	}
	sort.Float64s(ratios)
	q := func(f float64) float64 { return ratios[int(f*float64(len(ratios)-1))] }
	if hello.errs > 0 || mOn.errs > 0 || mOff.errs > 0 {
		return nil, fmt.Errorf("load run had errors: hello %d (%v), on %d (%v), off %d (%v)", hello.errs, hello.firstErr, mOn.errs, mOn.firstErr, mOff.errs, mOff.firstErr)
	}
	if err := on.p.Usage.Flush(ctx); err != nil {
		return nil, err
	}
	after, err := storedRequests(ctx, on.p.Store)
	if err != nil {
		return nil, err
	}
	if after-before != mOn.ok {
		return nil, fmt.Errorf("the meter stored %d requests, the load generator got %d responses", after-before, mOn.ok)
	}
	return []row{
		{"metering", fmt.Sprintf("GET /findings req/s, metering on (%d workers, %s)", workers, mOn.elapsed.Round(time.Millisecond)), fmt.Sprintf("%.0f", mOn.rps()),
			fmt.Sprintf("%.0f (bare net/http hello)", hello.rps()), fmt.Sprintf("%.3f×", mOn.rps()/hello.rps()), ""},
		{"metering", fmt.Sprintf("GET /findings req/s, metering off (%s)", mOff.elapsed.Round(time.Millisecond)), fmt.Sprintf("%.0f", mOff.rps()),
			fmt.Sprintf("%.0f (bare net/http hello)", hello.rps()), fmt.Sprintf("%.3f×", mOff.rps()/hello.rps()), ""},
		{"metering", "gateway ratio, on against off, whole run", fmt.Sprintf("%.3f", mOn.rps()/mOff.rps()), "1 (metering off)",
			fmt.Sprintf("%+.1f%%", (mOn.rps()/mOff.rps()-1)*100), "within ±2%"},
		{"metering", fmt.Sprintf("on/off per round (%d rounds): median [p25, p75]", rounds), fmt.Sprintf("%.3f [%.3f, %.3f]", q(0.5), q(0.25), q(0.75)), "1 (metering off)",
			fmt.Sprintf("%+.1f%%", (q(0.5)-1)*100), "within ±2%"},
		{"metering", "requests stored by the meter = responses received", fmt.Sprintf("%d = %d", after-before, mOn.ok), "", "", "equal"},
	}, nil
}

// storedRequests sums every stored request.
func storedRequests(ctx context.Context, st store.Store) (int64, error) {
	var n int64
	err := st.View(ctx, func(tx store.Tx) error {
		days, err := tx.Usage(store.UsageQuery{})
		for _, d := range days {
			n += d.Total.Requests
		}
		return err
	})
	return n, err
}

// usageSizeScenario fills a fresh SQLite control-plane store with 90 days
// of hourly usage, every hour of every day, for cfg.tenants tenants with
// one function each (the worst case: no tenant ever idle), through the
// store's AddUsage as the meter writes it, and reports the file's size.
func usageSizeScenario(ctx context.Context, cfg config) ([]row, error) {
	const days = 90
	dir := filepath.Join(cfg.dir, "usage-size")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "state.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ds := make([]store.UsageDelta, cfg.tenants)
	for i := range ds {
		ds[i].Account, ds[i].Function = silo.AccountID(fmt.Sprintf("tenant-%05d", i)), "ingest"
	}
	// Each tenant also holds two tables and a bucket (as the example stack
	// does), sampled every hour, each sample a different size.
	ss := make([]store.StoredSample, 0, 3*cfg.tenants)
	for i := range ds {
		for _, r := range [][2]string{{store.StoredTable, "findings"}, {store.StoredTable, "sessions"}, {store.StoredBucket, "uploads"}} {
			ss = append(ss, store.StoredSample{Account: ds[i].Account, Kind: r[0], Name: r[1]})
		}
	}
	began := time.Now()
	for h := range days * 24 {
		for i := range ds {
			// Plausible hourly figures that differ per tenant and hour.
			n := int64(1 + (i*7+h*13)%5000)
			ds[i].Counters = store.Counters{Requests: n, Errors: n / 50, DurationMicros: n * 4200, MemoryMiBMicros: n * 4200 * 64, BytesIn: n * 310, BytesOut: n * 2900}
		}
		for j := range ss { // 1 MiB to 1 GiB, growing by the hour
			ss[j].Bytes = int64(1+(j*7919)%1024)<<20 + int64(h)*int64(1+j%97)*4096
		}
		if err := st.Update(ctx, func(tx store.Tx) error {
			at := start.Add(time.Duration(h) * time.Hour)
			if err := tx.AddUsage(at, ds); err != nil {
				return err
			}
			return tx.SetStored(at, ss)
		}); err != nil {
			st.Close()
			return nil, err
		}
	}
	fill := time.Since(began)
	if err := st.Close(); err != nil { // checkpoints the WAL into the file
		return nil, err
	}
	var size int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(path + suffix); err == nil {
			size += fi.Size()
		}
	}
	rows := int64(cfg.tenants) * days
	return []row{
		{"usage-size", fmt.Sprintf("SQLite bytes for %d tenants × %d days of hourly usage (1 function, 2 tables and a bucket, every hour)", cfg.tenants, days),
			fmt.Sprintf("%.1f MiB", float64(size)/(1<<20)), "1 GiB", fmt.Sprintf("%.3f×", float64(size)/(1<<30)), "well under 1× at 10000 tenants"},
		{"usage-size", "bytes per tenant-day (24 hourly roll-ups of a function and 3 stored-bytes samples)", fmt.Sprintf("%.0f", float64(size)/float64(rows)), "", "", ""},
		{"usage-size", "time to write it (one transaction per hour of all tenants)", fill.Round(time.Second).String(), "", "", ""},
	}, nil
}
