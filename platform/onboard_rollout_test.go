package platform_test

import (
	"context"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
)

// Onboarding a tenant while a rollout bakes moves no other account: the
// production account, which the rollout moved first, stays on the new
// release (it used to be moved back to the current, previous one, and the
// rollout then said succeeded). A tenant whose ring has begun gets the
// rollout's release (early, in the baking canary ring; dev-new, in the
// promoted developers ring); one whose ring has not gets the current
// release, and its ring moves it (late). When the rollout succeeds, every
// account ends on the new release. When the canary fails its gate, the
// automatic rollback returns every account to the previous release,
// those onboarded on the new one included: none is left on the release
// that failed.
func TestOnboardingDuringARollout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		broken bool // the new release fails the canary's error-rate gate
	}{
		{"the rollout succeeds", false},
		{"the canary fails its gate", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := silotest.New(t)
			app := silotest.CopyExample(t)
			breakable(t, app, "")
			relA := p.Deploy(t, app).Release.ID
			acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"))
			p.Tenant(t, "globex")
			ctx := context.Background()
			pp := p.Platform()
			release := func(id silo.AccountID) string {
				t.Helper()
				a, err := pp.Plane.Account(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return a.Release
			}

			if tc.broken {
				breakable(t, app, "-broken")
			}
			edit(t, app, "v2")
			relB, err := pp.Build(ctx, app)
			if err != nil {
				t.Fatal(err)
			}
			r, err := pp.Runner.Start(ctx, relB.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r = waitRollout(t, pp.Runner, r.ID, "canary baking", func(r rollout.Rollout) bool {
				for _, ring := range r.Rings {
					if ring.Name == "canary" {
						return ring.Phase == rollout.PhaseBaking && !ring.BakeUntil.IsZero()
					}
				}
				return false
			})
			if got := release(silo.ProductionID); got != relB.ID {
				t.Fatalf("production on %s while the canary bakes, want %s", got, relB.ID)
			}
			early := p.Tenant(t, "early", silotest.Param("plan", "pro")) // canary: begun
			p.Tenant(t, "late")                                          // everyone: not yet
			p.Tenant(t, "dev-new", silotest.Kind(silo.KindDeveloper))    // developers: promoted
			for id, want := range map[silo.AccountID]string{silo.ProductionID: relB.ID, "acme": relB.ID, "early": relB.ID, "dev-new": relB.ID, "late": relA, "globex": relA} {
				if got := release(id); got != want {
					t.Errorf("after onboarding during the bake: %s on %s, want %s", id, got, want)
				}
			}
			if body := string(early.GET(t, "/findings").Body); !strings.Contains(body, `"version":"v2"`) {
				t.Errorf("early, onboarded into the baking canary ring, serves %s, want v2", body)
			}
			for range 20 { // canary traffic for the gate: failing requests when broken
				acme.GET(t, "/findings?fail=1")
			}
			p.Clock().Advance(time.Minute)
			r = waitRollout(t, pp.Runner, r.ID, "done", func(r rollout.Rollout) bool { return r.State != rollout.StateRunning })
			want := rollout.StateSucceeded
			if tc.broken {
				want = rollout.StateFailed
			}
			if r.State != want {
				t.Fatalf("rollout: %s (%s), want %s", r.State, r.Reason, want)
			}
			end := relB.ID
			if tc.broken {
				end = relA
			}
			for _, id := range []silo.AccountID{silo.ProductionID, "acme", "early", "dev-new", "late", "globex"} {
				if got := release(id); got != end {
					t.Errorf("after the rollout: %s on %s, want %s", id, got, end)
				}
			}
			if body := string(early.GET(t, "/findings").Body); strings.Contains(body, `"version":"v2"`) == tc.broken {
				t.Errorf("after the rollout early serves %s; want v2 only when the rollout succeeded", body)
			}
		})
	}
}
