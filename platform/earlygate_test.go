package platform_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
)

// TestGatesFailARingDuringItsBake: the canary's gates (the example's: at
// most 2% errors, at least 10 requests, a one-minute bake) are read every
// 5 seconds of the bake on what the ring served so far. A release that
// fails two requests in three fails its ring at the first reading, 5
// seconds into the bake, and is rolled back without the clock moving on;
// the twin, a release over 2% so far (1 failure in 30) that later traffic
// brings under it, is not failed early: it bakes the full minute and
// passes.
func TestGatesFailARingDuringItsBake(t *testing.T) {
	for _, tc := range []struct {
		name      string
		suffix    string
		failEvery int // every failEvery-th request of the first 30 asks to fail
		after     int // healthy requests after the first reading
		early     bool
	}{
		{"a clearly failing release is rolled back at the first reading", "-broken", 1, 0, true},
		{"a release that may still pass bakes fully", "-broken-a-little", 30, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			readings := make(chan string, 64)
			p := silotest.New(t, silotest.WithConfig(func(c *platform.Config) {
				c.RolloutHook = func(e rollout.Event) {
					if e.Point == "gates" && e.Ring == "canary" {
						select {
						case readings <- e.Detail:
						default:
						}
					}
				}
			}))
			app := silotest.CopyExample(t)
			breakable(t, app, "")
			v1 := p.Deploy(t, app).Release.ID
			acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"))
			ctx := context.Background()
			pp := p.Platform()

			breakable(t, app, tc.suffix)
			rel, err := pp.Build(ctx, app)
			if err != nil {
				t.Fatal(err)
			}
			r, err := pp.Runner.Start(ctx, rel.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r = waitRollout(t, pp.Runner, r.ID, "canary baking", func(r rollout.Rollout) bool {
				return ringPhase(r, "canary") == rollout.PhaseBaking && !ring(t, r, "canary").BakeUntil.IsZero()
			})
			bakeUntil := ring(t, r, "canary").BakeUntil
			failed := 0
			for i := 1; i <= 30; i++ {
				path := "/findings"
				if i%tc.failEvery == 0 {
					path += "?fail=1"
				}
				if acme.GET(t, path).Status != 200 {
					failed++
				}
			}
			if want := 30 / tc.failEvery; failed != want {
				t.Fatalf("%d of 30 requests failed, want %d", failed, want)
			}

			p.Clock().Advance(5 * time.Second)
			var got string
			select {
			case got = <-readings:
			case <-time.After(time.Minute): // a bound on waiting, not a measurement
				t.Fatal("the canary's gates were not read 5s into its bake")
			}
			if want := map[bool]string{true: rollout.Fail, false: "baking"}[tc.early]; got != want {
				t.Fatalf("the reading 5s into the bake: %q, want %q", got, want)
			}
			if tc.early {
				r = waitRollout(t, pp.Runner, r.ID, "done", func(r rollout.Rollout) bool { return r.State != rollout.StateRunning })
				if now := p.Clock().Now(); !now.Before(bakeUntil) {
					t.Fatalf("the clock reads %s, the bake's end %s: the test moved past the bake", now, bakeUntil)
				}
				v := ring(t, r, "canary").Verdict
				if r.State != rollout.StateFailed || v == nil || v.Result != rollout.Fail || !strings.Contains(r.Reason, "during the bake") {
					t.Fatalf("rollout 5s into a 1m bake: %s (%s), canary verdict %+v; want failed by its gates during the bake", r.State, r.Reason, v)
				}
				if a, err := pp.Plane.Account(ctx, "acme"); err != nil || a.Release != v1 {
					t.Fatalf("acme after the early rollback: %+v, %v; want release %s", a, err, v1)
				}
				return
			}
			if r, err = pp.Runner.Get(ctx, r.ID); err != nil || r.State != rollout.StateRunning || ringPhase(r, "canary") != rollout.PhaseBaking {
				t.Fatalf("after a reading that did not fail: %s, canary %s (%v); want running, baking", r.State, ringPhase(r, "canary"), err)
			}
			for range tc.after {
				if code := acme.GET(t, "/findings").Status; code != 200 {
					t.Fatalf("healthy request during the bake: %d", code)
				}
			}
			p.Clock().Advance(bakeUntil.Sub(p.Clock().Now()))
			r = waitRollout(t, pp.Runner, r.ID, "done", func(r rollout.Rollout) bool { return r.State != rollout.StateRunning })
			v := ring(t, r, "canary").Verdict
			if r.State != rollout.StateSucceeded || v == nil || v.Result != rollout.Pass || v.Requests != 30+uint64(tc.after) {
				t.Fatalf("rollout after the full bake: %s (%s), canary verdict %+v; want succeeded on %d requests", r.State, r.Reason, v, 30+tc.after)
			}
		})
	}
}
