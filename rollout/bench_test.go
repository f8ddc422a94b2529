package rollout_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
)

func benchTenants(def int) int {
	if n, err := strconv.Atoi(os.Getenv("SILO_BENCH_TENANTS")); err == nil && n > 0 {
		return n
	}
	return def
}

func ungated() string {
	return replaceOnce(replaceOnce(fmtStack("", "0"), "      bake: 5m\n", ""),
		"      gates: {max_error_rate: 0.05, max_p99_increase: 0.5, min_requests: 100}\n", "")
}

// BenchmarkRollout rolls a one-function change out to SILO_BENCH_TENANTS
// (default 10,000) local tenants with no bake, then starts the same release
// again, which every tenant runs: Start plans each (for data it would
// destroy) and records nothing (rollout.UpToDate).
//
//	go test -run '^$' -bench BenchmarkRollout -benchtime 1x ./rollout
func BenchmarkRollout(b *testing.B) {
	n := benchTenants(10000)
	e := newEnv(b, b.TempDir(), opts{wall: true})
	v1 := release(b, e, ungated(), "sha256:1111")
	seed(b, e, v1, n, n/20)
	ctx := context.Background()
	var change, same time.Duration
	for i := 0; i < b.N; i++ {
		v := release(b, e, ungated(), "sha256:"+strconv.Itoa(1000+i))
		t0 := time.Now()
		r, err := e.run.Start(ctx, v.ID, rollout.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if r = drive(b, e, r.ID); r.State != rollout.StateSucceeded {
			b.Fatalf("%s: %s", r.State, r.Reason)
		}
		change += time.Since(t0)
		t0 = time.Now()
		if _, err = e.run.Start(ctx, v.ID, rollout.Options{}); !errors.As(err, new(*rollout.UpToDate)) {
			b.Fatalf("Start of the current release = %v, want *rollout.UpToDate", err)
		}
		same += time.Since(t0)
	}
	b.ReportMetric(change.Seconds()/float64(b.N), "s/change-rollout")
	b.ReportMetric(same.Seconds()/float64(b.N), "s/no-change-deploy")
	b.ReportMetric(float64(n), "tenants")
}

// BenchmarkDetectToRollback measures the time from the end of the canary's
// bake to the canary being rolled back, for a release with 20% errors.
func BenchmarkDetectToRollback(b *testing.B) {
	n := benchTenants(200)
	e := newEnv(b, b.TempDir(), opts{})
	src := fmtStack("", "0")
	v1 := release(b, e, src, "sha256:1111")
	v2 := release(b, e, src, "sha256:2222")
	seed(b, e, v1, n, n/20)
	traffic(b, e, 200, map[string]profile{v1.ID: good})
	var detect time.Time
	e.onBake = func(string) {
		traffic(b, e, 100, map[string]profile{v1.ID: good, v2.ID: bad})
		e.clock.Advance(5 * time.Minute)
		detect = time.Now()
	}
	ctx := context.Background()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if r = drive(b, e, r.ID); r.State != rollout.StateFailed {
			b.Fatalf("%s: %s", r.State, r.Reason)
		}
		total += time.Since(detect)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/detect-to-rollback")
	b.ReportMetric(float64(n/20), "canary-tenants")
}

var resumedRe = regexp.MustCompile(`resumed-after: (\d+)`)

// BenchmarkResume SIGKILLs the runner of a SILO_BENCH_TENANTS (default
// 1,000) tenant rollout at random moments and reports the time from the
// restarted process's start to its first finished account step (journal
// recovery + lease + re-scan), p50 and p99 over the kills.
func BenchmarkResume(b *testing.B) {
	n := benchTenants(1000)
	dir := b.TempDir()
	e := newEnv(b, dir, opts{})
	v1 := release(b, e, ungated(), "sha256:1111")
	v2 := release(b, e, ungated(), "sha256:2222")
	seed(b, e, v1, n, n/20)
	if _, err := e.run.Start(context.Background(), v2.ID, rollout.Options{}); err != nil {
		b.Fatal(err)
	}
	e.prov.Close()
	e.store.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var resumes []time.Duration
	for i := 0; i < max(b.N, 20); i++ {
		at := 1 + rng.IntN(n*6/40)
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "SILO_KILL_DIR="+dir, "SILO_KILL_AT="+strconv.Itoa(at), "SILO_KILL_REPORT=1")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()) {
			b.Fatalf("%v\n%s", err, out)
		}
		if m := resumedRe.FindSubmatch(out); m != nil && i > 0 {
			ns, _ := strconv.ParseInt(string(m[1]), 10, 64)
			resumes = append(resumes, time.Duration(ns))
		}
		if err == nil {
			break
		}
	}
	if len(resumes) == 0 {
		b.Fatal("no resume measured")
	}
	slices.Sort(resumes)
	b.ReportMetric(float64(resumes[len(resumes)/2].Milliseconds()), "ms/resume-p50")
	b.ReportMetric(float64(resumes[(len(resumes)*99)/100].Milliseconds()), "ms/resume-p99")
	b.ReportMetric(float64(len(resumes)), "kills")
	_ = engine.Release{}
}
