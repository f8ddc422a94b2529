package platform_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// TestGatesJudgeEveryServer runs two servers on one PostgreSQL database
// and one data dir; only the first runs the rollout. During the canary's
// bake the first server's gateway serves healthy requests, enough for
// min_requests on their own, and the second's serves the requests that
// make a broken release fail. The gate judges the requests of both: the
// broken release fails it and is rolled back; the same traffic on a
// healthy release promotes it.
func TestGatesJudgeEveryServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		suffix string
		want   rollout.State
	}{
		{"broken release served by the other server fails", "-broken", rollout.StateFailed},
		{"healthy release promotes", "-fine", rollout.StateSucceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gatesJudgeEveryServer(t, tc.suffix, tc.want)
		})
	}
}

func gatesJudgeEveryServer(t *testing.T, suffix string, want rollout.State) {
	dsn := pgtest.Fresh(t)
	dir := filepath.Join(t.TempDir(), "silo")
	clock := rollout.NewManualClock(silotest.Start)
	a := openServer(t, dsn, dir, clock)
	b := openServer(t, dsn, dir, clock)
	ctx := context.Background()

	app := silotest.CopyExample(t)
	breakable(t, app, "")
	spec := filepath.Join(app, "silo.yaml")
	src := mustReadFile(t, spec)
	i := strings.Index(src, "\nrollout:")
	if i < 0 {
		t.Fatal("the example has no rollout section; update the test")
	}
	writeFile(t, spec, src[:i]+`
rollout:
  rings:
    - name: canary
      select: {kind: tenant, params: {plan: pro}}
      bake: 1m
      gates: {max_error_rate: 0.05, min_requests: 20}
    - name: everyone
      select: {kind: tenant}
      bake: 0s
`)
	v1, err := a.p.Deploy(ctx, app)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	c, err := a.p.CreateAccount(ctx, control.CreateRequest{ID: "acme", Params: map[string]string{"plan": "pro"}, WithKey: true})
	if err != nil {
		t.Fatal(err)
	}
	key := c.Key
	// get sends GET path to acme through s until the function answers
	// (a 503 while the server still compiles the new release's module
	// is no answer of the function, and is not counted).
	get := func(s *node, path string) int {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			code, body := s.get(t, "acme", key, path)
			if code != http.StatusServiceUnavailable {
				return code
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: 503 %s", path, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, s := range []*node{a, b} {
		if code := get(s, "/findings?fail=1"); code != http.StatusOK {
			t.Fatalf("before the rollout: %d, want 200 (%s ignores ?fail)", code, v1.Release.ID)
		}
	}

	breakable(t, app, suffix)
	rel, err := a.p.Build(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	a.startRunner() // b's runner never runs: a judges the gate
	r, err := a.p.Runner.Start(ctx, rel.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitRollout(t, a.p.Runner, r.ID, "canary baking", func(r rollout.Rollout) bool {
		return ringPhase(r, "canary") == rollout.PhaseBaking && !ring(t, r, "canary").BakeUntil.IsZero()
	})
	// a serves 30 healthy requests: enough for min_requests alone. b
	// serves 30 that a broken release fails.
	const n = 30
	for range n {
		if code := get(a, "/findings"); code != http.StatusOK {
			t.Fatalf("through a during the bake: %d, want 200", code)
		}
	}
	failed := 0
	for range n {
		if code := get(b, "/findings?fail=1"); code != http.StatusOK {
			failed++
		}
	}
	if wantFailed := map[bool]int{true: n, false: 0}[suffix == "-broken"]; failed != wantFailed {
		t.Fatalf("through b during the bake: %d of %d failed, want %d", failed, n, wantFailed)
	}
	// Wait until b has published what it served (every second).
	deadline := time.Now().Add(time.Minute)
	for {
		var sum uint64
		if err := a.db.View(ctx, func(tx store.Tx) error {
			ms, err := tx.ReleaseMetrics("acme", rel.ID)
			for _, m := range ms {
				sum += m.Requests
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if sum >= 2*n { // a's and b's publications, each at most what it served
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the servers published %d requests of acme under %s, want %d", sum, rel.ID, 2*n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	clock.Advance(time.Minute)
	r = waitRollout(t, a.p.Runner, r.ID, "done", func(r rollout.Rollout) bool { return r.State != rollout.StateRunning })
	if r.State != want {
		t.Fatalf("rollout: %s (%s), want %s", r.State, r.Reason, want)
	}
	v := ring(t, r, "canary").Verdict
	if v == nil || v.Requests != 2*n || v.ErrorRate != float64(failed)/(2*n) {
		t.Fatalf("canary verdict %+v, want %d requests (both servers') with %d failed", v, 2*n, failed)
	}
	wantRelease := rel.ID
	if want == rollout.StateFailed {
		wantRelease = v1.Release.ID
	}
	acct, err := a.p.Plane.Account(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if acct.Release != wantRelease {
		t.Errorf("acme runs %s after the rollout, want %s", acct.Release, wantRelease)
	}
}

// ring returns the status of r's ring name.
func ring(t *testing.T, r rollout.Rollout, name string) rollout.RingStatus {
	t.Helper()
	for _, rs := range r.Rings {
		if rs.Name == name {
			return rs
		}
	}
	t.Fatalf("rollout %s has no ring %s", r.ID, name)
	return rollout.RingStatus{}
}
