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
// rollout's release; one whose ring has not gets the current release, and
// its ring moves it. The rollout then succeeds with every account on the
// new release.
func TestOnboardingDuringARollout(t *testing.T) {
	p := silotest.New(t)
	app := silotest.CopyExample(t)
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

	edit(t, app, "v2")
	relB, err := pp.Build(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pp.Runner.Start(ctx, relB.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r = waitRollout(t, pp.Runner, r.ID, "canary baking", func(r rollout.Rollout) bool { return ringPhase(r, "canary") == rollout.PhaseBaking })
	if got := release(silo.ProductionID); got != relB.ID {
		t.Fatalf("production on %s while the canary bakes, want %s", got, relB.ID)
	}
	early := p.Tenant(t, "early", silotest.Param("plan", "pro")) // canary: begun
	p.Tenant(t, "late")                                          // everyone: not yet
	for id, want := range map[silo.AccountID]string{silo.ProductionID: relB.ID, "acme": relB.ID, "early": relB.ID, "late": relA, "globex": relA} {
		if got := release(id); got != want {
			t.Errorf("after onboarding during the bake: %s on %s, want %s", id, got, want)
		}
	}
	if body := string(early.GET(t, "/findings").Body); !strings.Contains(body, `"version":"v2"`) {
		t.Errorf("early, onboarded into the baking canary ring, serves %s, want v2", body)
	}
	for range 20 { // canary traffic for the gate
		acme.GET(t, "/findings")
	}
	p.Clock().Advance(time.Minute)
	r = waitRollout(t, pp.Runner, r.ID, "done", func(r rollout.Rollout) bool { return r.State != rollout.StateRunning })
	if r.State != rollout.StateSucceeded {
		t.Fatalf("rollout: %s (%s), want succeeded", r.State, r.Reason)
	}
	for _, id := range []silo.AccountID{silo.ProductionID, "acme", "early", "late", "globex"} {
		if got := release(id); got != relB.ID {
			t.Errorf("after the rollout: %s on %s, want %s", id, got, relB.ID)
		}
	}
}
