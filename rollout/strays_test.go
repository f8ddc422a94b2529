package rollout_test

import (
	"context"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
)

// An account moved off the target release after its ring was verified
// (here the production account, moved back once the canary ring is
// promoted) is caught before the rollout says succeeded: the rollout
// fails and returns every ring. The twin: left alone, it succeeds.
func TestFinishCatchesAMovedAccount(t *testing.T) {
	for _, move := range []bool{false, true} {
		name := map[bool]string{false: "nothing moved succeeds", true: "production moved back fails"}[move]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var e *env
			var v1 engine.Release
			moved := false
			e = newEnv(t, t.TempDir(), opts{hook: func(ev rollout.Event) {
				if !move || moved || ev.Point != "phase" || ev.Ring != "canary" || ev.Detail != string(rollout.PhasePromoted) {
					return
				}
				moved = true
				var a silo.Account
				if err := e.store.View(ctx, func(tx store.Tx) error {
					var err error
					a, err = tx.Account(silo.ProductionID)
					return err
				}); err != nil {
					t.Error(err)
					return
				}
				p, err := e.eng.PlanAccount(ctx, a, v1)
				if err == nil {
					err = e.eng.Apply(ctx, p)
				}
				if err != nil {
					t.Error(err)
				}
			}})
			src := fmtStack("", "0")
			v1 = release(t, e, src, "sha256:1111")
			v2 := release(t, e, src, "sha256:2222")
			seed(t, e, v1, 6, 2)
			traffic(t, e, 200, map[string]profile{v1.ID: good})
			e.onBake = func(string) {
				traffic(t, e, 100, map[string]profile{v1.ID: good, v2.ID: good})
				e.clock.Advance(5 * time.Minute)
			}
			r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r = drive(t, e, r.ID)
			want, on := rollout.StateSucceeded, v2
			if move {
				want, on = rollout.StateFailed, v1
			}
			if r.State != want {
				t.Fatalf("rollout: %s (%s), want %s", r.State, r.Reason, want)
			}
			if move && !strings.Contains(r.Reason, `production (ring production) runs release "`+v1.ID+`"`) {
				t.Errorf("reason %q does not name production on %s", r.Reason, v1.ID)
			}
			for id, rel := range releases(t, e) {
				if rel != on.ID {
					t.Errorf("%s on %s, want %s", id, rel, on.ID)
				}
			}
			checkFleet(t, e, map[string]engine.Release{on.ID: on})
		})
	}
}
