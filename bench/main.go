// Command bench is silo's benchmark harness: it runs the scenarios whose
// figures docs/benchmarks.md reports, each next to a baseline measured in the
// same run, and prints a table.
//
//	go run ./bench                          # CI-sized run of every scenario
//	go run ./bench -tenants 10000           # the documented full size
//	go run ./bench -scenario onboard,plan
//	go run ./bench -scenario writes,cli-scale        # table writes; a command on 50 vs 5,000 accounts
//	go run ./bench -burn -scenario gateway,noisy     # next to one busy-loop process per core
//
// Microbenchmarks live in Benchmark* functions next to their packages
// (go test -bench . ./runtime ./gateway ./isolation ...); this harness runs the
// fleet-sized scenarios that need many accounts on disk.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strings"
	"text/tabwriter"
)

// row is one line of the results table.
type row struct {
	scenario, metric, value, baseline, ratio, goal string
}

type scenario struct {
	name string
	run  func(ctx context.Context, cfg config) ([]row, error)
}

type config struct {
	tenants int
	dir     string
	stack   string
}

func main() {
	burnIfAsked()
	quietClientIfAsked()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var which string
	fs.IntVar(&cfg.tenants, "tenants", 1000, "fleet size for the fleet scenarios (the documented figures use 10000)")
	fs.StringVar(&cfg.dir, "dir", "", "work directory (default: a temporary directory, removed afterwards)")
	fs.StringVar(&cfg.stack, "stack", "examples/findings/silo.yaml", "the stack onboarded")
	fs.StringVar(&which, "scenario", "all", "comma-separated scenarios: "+strings.Join(names(), ","))
	var burn bool
	fs.BoolVar(&burn, "burn", false, "run the scenarios next to one CPU-burning process (a busy loop) per core")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.dir == "" {
		d, err := os.MkdirTemp("", "silo-bench-*")
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer os.RemoveAll(d)
		cfg.dir = d
	}
	if burn {
		stop, err := startBurners()
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer stop()
	}
	load0 := loadAvg()
	var rows []row
	for _, s := range scenarios {
		if which != "all" && !strings.Contains(","+which+",", ","+s.name+",") {
			continue
		}
		fmt.Fprintf(stderr, "running %s...\n", s.name)
		r, err := s.run(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "bench %s: %v\n", s.name, err)
			return 1
		}
		rows = append(rows, r...)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tMETRIC\tVALUE\tBASELINE (same run)\tRATIO\tGOAL")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.scenario, r.metric, r.value, orDash(r.baseline), orDash(r.ratio), orDash(r.goal))
	}
	tw.Flush()
	neighbour := "none"
	if burn {
		neighbour = fmt.Sprintf("one busy-loop process per core (%d)", goruntime.NumCPU())
	}
	fmt.Fprintf(stdout, "load average (1 min): %s before, %s after; CPU-burning neighbour: %s\n", load0, loadAvg(), neighbour)
	return 0
}

func names() []string {
	var out []string
	for _, s := range scenarios {
		out = append(out, s.name)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
