package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
)

// cliScaleScenario: `silo tenant show` as a process, on a data dir of 50
// accounts against one of 5,000 (the example stack, onboarded through the
// platform as silo tenant create does), alternating between the two so a
// change of machine load touches both. A command about one tenant should
// not cost in proportion to the fleet. With SILO_BENCH_BASELINE_BIN naming
// another silo binary (an older build), the same commands run with it too,
// on the same data dirs, in the same run.
func cliScaleScenario(ctx context.Context, cfg config) ([]row, error) {
	bin := filepath.Join(cfg.dir, "silo-bin")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/silo").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build silo: %v\n%s", err, out)
	}
	bins := []struct{ name, path string }{{"this build", bin}}
	if b := os.Getenv("SILO_BENCH_BASELINE_BIN"); b != "" {
		bins = append(bins, struct{ name, path string }{"baseline build", b})
	}
	sizes := []int{50, 5000}
	dirs := map[int]string{}
	for _, n := range sizes {
		name := fmt.Sprintf("cli-%d", n)
		if err := onboardPlatform(ctx, cfg, name, n); err != nil {
			return nil, err
		}
		dirs[n] = filepath.Join(cfg.dir, name)
	}
	stack, err := filepath.Abs(cfg.stack)
	if err != nil {
		return nil, err
	}
	const samples = 15
	times := map[string][]time.Duration{}
	load0 := loadAvg()
	for i := 0; i < samples; i++ {
		for _, b := range bins {
			for _, n := range sizes {
				start := time.Now()
				cmd := exec.CommandContext(ctx, b.path, "--data-dir", dirs[n], "--file", stack, "tenant", "show", "t25")
				if out, err := cmd.CombinedOutput(); err != nil {
					return nil, fmt.Errorf("%s: silo tenant show t25 on %d accounts: %v\n%s", b.name, n, err, out)
				}
				k := fmt.Sprintf("%s/%d", b.name, n)
				times[k] = append(times[k], time.Since(start))
			}
		}
	}
	load := fmt.Sprintf("load %s → %s", load0, loadAvg())
	var rows []row
	for _, b := range bins {
		small, big := median(times[b.name+"/50"]), median(times[b.name+"/5000"])
		goal := "≤ 1.2×"
		if b.name != "this build" {
			goal = "(before)"
		}
		rows = append(rows, row{"cli-scale",
			fmt.Sprintf("silo tenant show, p50 of %d processes, 5,000 accounts (%s, %s)", samples, b.name, load),
			fmtDur(big), fmtDur(small) + " (50 accounts)", fmt.Sprintf("%.2f×", float64(big)/float64(small)), goal})
	}
	return rows, nil
}

// onboardPlatform opens a platform in cfg.dir/name with the example
// deployed and creates tenants t0 … t(n-1), four at a time.
func onboardPlatform(ctx context.Context, cfg config, name string, n int) error {
	lp, err := startPlatform(ctx, cfg, name, nil)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	next := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range next {
				if _, err := lp.p.CreateAccount(ctx, control.CreateRequest{ID: "t" + strconv.Itoa(i), Kind: silo.KindTenant}); err != nil {
					errs <- fmt.Errorf("create tenant t%d: %w", i, err)
					return
				}
			}
		})
	}
	var ferr error
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case ferr = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ferr == nil && len(errs) > 0 {
		ferr = <-errs
	}
	return errors.Join(ferr, lp.Close())
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
