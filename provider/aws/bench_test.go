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
// kumo process each, 8 onboardings at a time, then applies the example
// stack to all of them with 8 at a time, and reports the fleet apply's
// seconds, the time per account, the memory of the member kumo processes
// idle and loaded (mean resident set, which counts the shared binary in
// every process, and the sum of their proportional set sizes, which
// counts it once), the onboarding's seconds and the load average. The
// baseline in the same run is the apply of one account alone.
// $SILO_BENCH_KUMO_ENV (space-separated, such as "GOGC=25") is added to
// the member kumo processes' environment.
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
		org.SetMemberEnv(strings.Fields(os.Getenv("SILO_BENCH_KUMO_ENV"))...)
		ids := make([]silo.AccountID, n)
		for i := range ids {
			ids[i] = silo.AccountID(fmt.Sprintf("t%d", i))
		}
		start := time.Now()
		// The first onboarding alone creates the OUs.
		if err := p.CreateAccount(ctx, ids[0], silo.KindTenant); err != nil {
			b.Fatal(err)
		}
		eachBounded(8, ids[1:], func(id silo.AccountID) {
			if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
				b.Error(err)
			}
		})
		if b.Failed() {
			b.FailNow()
		}
		onboard := time.Since(start)
		idle, idlePss := meanRSS(org.PIDs()[1:]), sumPssMiB(org.PIDs()[1:])
		start = time.Now()
		providertest.ApplyAll(b, p, ids[0], stack)
		one := time.Since(start)
		b.StartTimer()
		start = time.Now()
		eachBounded(8, ids[1:], func(id silo.AccountID) { providertest.ApplyAll(b, p, id, stack) })
		fleet := time.Since(start)
		b.StopTimer()
		per := fleet / time.Duration(n-1)
		b.ReportMetric(float64(n), "accounts")
		b.ReportMetric(onboard.Seconds(), "onboard-s")
		b.ReportMetric(fleet.Seconds(), "fleet-s")
		b.ReportMetric(float64(per.Milliseconds()), "ms/account")
		b.ReportMetric(float64(per)/float64(one), "per-account/alone")
		b.ReportMetric(idle, "idle-kumo-RSS-MiB")
		b.ReportMetric(meanRSS(org.PIDs()[1:]), "loaded-kumo-RSS-MiB")
		b.ReportMetric(idlePss/1024, "idle-kumo-Pss-sum-GiB")
		b.ReportMetric(sumPssMiB(org.PIDs()[1:])/1024, "loaded-kumo-Pss-sum-GiB")
		b.ReportMetric(float64(runtime.NumCPU()), "cpus")
		b.ReportMetric(loadavg(), "load")
	}
}

// eachBounded calls f for every id, at most k at a time, and returns when
// all calls have.
func eachBounded(k int, ids []silo.AccountID, f func(silo.AccountID)) {
	sem := make(chan struct{}, k)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(id)
		}()
	}
	wg.Wait()
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

// sumPssMiB returns the sum of the processes' proportional set sizes in
// MiB (a page shared by k processes counts 1/k in each), or -1 if none
// could be read.
func sumPssMiB(pids []int) float64 {
	sum, k := 0.0, 0
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
				kb, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
				sum += kb / 1024
				k++
			}
		}
	}
	if k == 0 {
		return -1
	}
	return sum
}
