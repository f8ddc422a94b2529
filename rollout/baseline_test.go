package rollout_test

import (
	"context"
	"slices"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
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
			f := newFleet(t, fmtStack("", "0"), 20, 4, "sha256:1111", "sha256:2222", "sha256:3333")
			e, v1, v2, v3 := f.env, f.rels[0], f.rels[1], f.rels[2]
			f.traffic(t, 200)
			f.behave[v2.ID], f.bakeN = awful, 400
			startRollout(t, e, v2, rollout.Options{}, rollout.StateFailed) // the broken release
			f.behave[v3.ID], f.bakeN = tc.next, 200
			r := startRollout(t, e, v3, rollout.Options{}, tc.wantState) // the next release
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

// A rollout of the current release to the accounts that lag behind it
// judges them against what they ran before: the verdict names that
// release (or, when they ran several, each one), and its figures are
// those releases', never the target's. An account that lags on its
// parameters alone (it runs the target already) is left out of the
// baseline: the gates never compare a release with itself.
func TestCatchUpBaselineIsWhatTheLaggingAccountsRan(t *testing.T) {
	slow, fast := profile{latency: 20 * time.Millisecond}, profile{latency: 4 * time.Millisecond}
	for _, tc := range []struct {
		name string
		// lag puts the lagging accounts in place; v0, v1 and v2 are the
		// releases (v2 current).
		lag      func(t *testing.T, e *env, v0, v1, v2 engine.Release)
		wantPrev func(v0, v1 engine.Release) (string, []string)
	}{
		{"they ran one release", func(t *testing.T, e *env, v0, v1, v2 engine.Release) {
			lagOn(t, e, "t-lag1", v1)
			lagOn(t, e, "t-lag2", v1)
		}, func(v0, v1 engine.Release) (string, []string) { return v1.ID, nil }},
		{"they ran two releases", func(t *testing.T, e *env, v0, v1, v2 engine.Release) {
			lagOn(t, e, "t-lag1", v1)
			lagOn(t, e, "t-lag2", v0)
		}, func(v0, v1 engine.Release) (string, []string) {
			return "", []string{min(v0.ID, v1.ID), max(v0.ID, v1.ID)}
		}},
		{"one of them runs the target already", func(t *testing.T, e *env, v0, v1, v2 engine.Release) {
			lagOn(t, e, "t-lag1", v1)
			lagOn(t, e, "t-lag2", v2)
			ctx := context.Background()
			if err := e.store.Update(ctx, func(tx store.Tx) error {
				a, err := tx.Account("t-lag2")
				if err != nil {
					return err
				}
				a.Params["region"] = "us" // recorded, not applied: only its config lags
				return tx.UpdateAccount(a)
			}); err != nil {
				t.Fatal(err)
			}
		}, func(v0, v1 engine.Release) (string, []string) { return v1.ID, nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// v1 (current) and v0 are slow, v2 fast.
			f := newReleases(t, fmtStack("", "0"), "sha256:0000", "sha256:1111", "sha256:2222")
			e, v0, v1, v2 := f.env, f.rels[0], f.rels[1], f.rels[2]
			seed(t, e, v1, 4, 1)
			f.behave, f.bakeN = map[string]profile{v0.ID: slow, v1.ID: slow, v2.ID: fast}, 200
			f.traffic(t, 200)
			startRollout(t, e, v2, rollout.Options{}, rollout.StateSucceeded)

			tc.lag(t, e, v0, v1, v2)
			f.traffic(t, 200)
			r := startRollout(t, e, v2, rollout.Options{}, rollout.StateSucceeded)
			if r.Previous != v2.ID {
				t.Fatalf("catch-up rollout: previous %s, want the current release %s", r.Previous, v2.ID)
			}
			canary := r.Rings[1]
			v := canary.Verdict
			if v == nil || canary.Applied != 2 {
				t.Fatalf("canary ring: %+v, want a verdict on the 2 accounts it moved", canary)
			}
			prev, prevs := tc.wantPrev(v0, v1)
			if v.PrevRelease != prev || !slices.Equal(v.PrevReleases, prevs) {
				t.Errorf("verdict compared against %q %v, want %q %v", v.PrevRelease, v.PrevReleases, prev, prevs)
			}
			if v.PrevRelease == v2.ID || slices.Contains(v.PrevReleases, v2.ID) || slices.Contains(canary.BaselineReleases, v2.ID) {
				t.Errorf("verdict compares release %s with itself: %+v, baseline of %v", v2.ID, v, canary.BaselineReleases)
			}
			if v.PrevP99 < 15*time.Millisecond {
				t.Errorf("prev p99 %s, want the lagging accounts' ≈ 20ms (not the target's 4ms)", v.PrevP99)
			}
		})
	}
}

// lagOn creates canary tenant id on rel, which is not the current
// release: a rollout of the current release is for it.
func lagOn(t *testing.T, e *env, id silo.AccountID, rel engine.Release) {
	t.Helper()
	if _, err := e.eng.CreateAccount(context.Background(), silo.Account{ID: id, Kind: silo.KindTenant, Params: map[string]string{"ring": "canary"}}, rel); err != nil {
		t.Fatal(err)
	}
}
