package rollout_test

import (
	"context"
	"testing"
	"time"

	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
)

// After a broken release was rolled back, the next rollout's baseline is
// what the previous (healthy) release served, not the broken release's
// errors: a second bad release fails its gate, and a good one (the twin)
// passes.
func TestBaselineAfterRollback(t *testing.T) {
	awful := profile{errEvery: 2, latency: 4 * time.Millisecond} // 50% errors
	for _, tc := range []struct {
		name      string
		next      profile
		wantState rollout.State
	}{
		{"bad release after a rolled-back one fails", bad, rollout.StateFailed},
		{"good release after a rolled-back one passes", good, rollout.StateSucceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, t.TempDir(), opts{})
			src := fmtStack("", "0")
			v1 := release(t, e, src, "sha256:1111")
			v2 := release(t, e, src, "sha256:2222")
			v3 := release(t, e, src, "sha256:3333")
			seed(t, e, v1, 20, 4)
			traffic(t, e, 200, map[string]profile{v1.ID: good})
			e.onBake = func(string) {
				traffic(t, e, 400, map[string]profile{v1.ID: good, v2.ID: awful})
				e.clock.Advance(5 * time.Minute)
			}
			r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if r = drive(t, e, r.ID); r.State != rollout.StateFailed {
				t.Fatalf("broken release: %s (%s), want failed", r.State, r.Reason)
			}
			e.onBake = func(string) {
				traffic(t, e, 200, map[string]profile{v1.ID: good, v3.ID: tc.next})
				e.clock.Advance(5 * time.Minute)
			}
			r, err = e.run.Start(ctx, v3.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r = drive(t, e, r.ID)
			if r.State != tc.wantState {
				t.Fatalf("next release: %s (%s), want %s", r.State, r.Reason, tc.wantState)
			}
			v := r.Rings[1].Verdict
			if v == nil || v.PrevErrorRate > 0.01 || v.PrevRelease != v1.ID {
				t.Fatalf("canary verdict = %+v, want a baseline of release %s under 1%% errors", v, v1.ID)
			}
			want := map[string]engine.Release{v1.ID: v1}
			if tc.wantState == rollout.StateSucceeded {
				want = map[string]engine.Release{v3.ID: v3}
			}
			checkFleet(t, e, want)
		})
	}
}
