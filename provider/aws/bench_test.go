package aws_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/providertest"
)

// loadavg returns the 1-minute load average, or -1.
func loadavg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		return -1
	}
	return f
}

// rssMiB returns the resident memory of process pid in MiB, or -1.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return kb / 1024
		}
	}
	return -1
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkOnboarding onboards b.N tenants (CreateAccount and the
// eleven-resource example stack) on the emulated organization, from a warm
// pool filled beforehand and, as the baseline in the same run, on demand;
// it reports p50 and p95 per onboarding, their ratio to the baseline and
// the load average. The emulator creates an account at the first poll, so
// the pool saves here only the creation's calls, not AWS's minutes.
func BenchmarkOnboarding(b *testing.B) {
	stack := providertest.Stack(b)
	run := func(b *testing.B, pool bool) (p50, p95 time.Duration) {
		ctx := context.Background()
		size := 0
		if pool {
			size = b.N
		}
		p, _ := newAWS(b, pooled(size))
		if err := p.CreateAccount(ctx, "warm-up", silo.KindTenant); err != nil { // the OUs and the first kumo
			b.Fatal(err)
		}
		if err := p.FillPool(ctx); err != nil {
			b.Fatal(err)
		}
		took := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			id := silo.AccountID(fmt.Sprintf("t%d", i))
			start := time.Now()
			if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
				b.Fatal(err)
			}
			providertest.ApplyAll(b, p, id, stack)
			took = append(took, time.Since(start))
		}
		b.StopTimer()
		return percentile(took, 0.5), percentile(took, 0.95)
	}
	var base50, base95 time.Duration
	b.Run("on-demand", func(b *testing.B) {
		base50, base95 = run(b, false)
		b.ReportMetric(float64(base50.Milliseconds()), "p50-ms")
		b.ReportMetric(float64(base95.Milliseconds()), "p95-ms")
		b.ReportMetric(loadavg(), "load")
	})
	b.Run("warm-pool", func(b *testing.B) {
		p50, p95 := run(b, true)
		b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
		b.ReportMetric(float64(p95.Milliseconds()), "p95-ms")
		if base50 > 0 {
			b.ReportMetric(float64(p50)/float64(base50), "p50/on-demand")
			b.ReportMetric(float64(p95)/float64(base95), "p95/on-demand")
		}
		b.ReportMetric(loadavg(), "load")
	})
}

// BenchmarkFleetApply onboards $SILO_BENCH_FLEET tenants (default 20), one
// kumo process each, then applies the example stack to all of them with 8
// at a time, and reports the fleet apply's seconds, the time per account,
// the resident memory of the idle and the loaded member kumo processes,
// and the load average. The baseline in the same run is the apply of one
// account alone.
func BenchmarkFleetApply(b *testing.B) {
	n := 20
	if s := os.Getenv("SILO_BENCH_FLEET"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	stack := providertest.Stack(b)
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		p, org := newAWS(b, func(c *siloaws.Config) {})
		ids := make([]silo.AccountID, n)
		for i := range ids {
			ids[i] = silo.AccountID(fmt.Sprintf("t%d", i))
			if err := p.CreateAccount(ctx, ids[i], silo.KindTenant); err != nil {
				b.Fatal(err)
			}
		}
		idle := meanRSS(org.PIDs()[1:])
		start := time.Now()
		providertest.ApplyAll(b, p, ids[0], stack)
		one := time.Since(start)
		b.StartTimer()
		start = time.Now()
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for _, id := range ids[1:] {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				providertest.ApplyAll(b, p, id, stack)
			}()
		}
		wg.Wait()
		fleet := time.Since(start)
		b.StopTimer()
		per := fleet / time.Duration(n-1)
		b.ReportMetric(float64(n), "accounts")
		b.ReportMetric(fleet.Seconds(), "fleet-s")
		b.ReportMetric(float64(per.Milliseconds()), "ms/account")
		b.ReportMetric(float64(per)/float64(one), "per-account/alone")
		b.ReportMetric(idle, "idle-kumo-MiB")
		b.ReportMetric(meanRSS(org.PIDs()[1:]), "loaded-kumo-MiB")
		b.ReportMetric(float64(runtime.NumCPU()), "cpus")
		b.ReportMetric(loadavg(), "load")
	}
}

func meanRSS(pids []int) float64 {
	sum, k := 0.0, 0
	for _, pid := range pids {
		if r := rssMiB(pid); r > 0 {
			sum += r
			k++
		}
	}
	if k == 0 {
		return -1
	}
	return sum / float64(k)
}
