package platform_test

import (
	"context"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
)

// waitRollout polls the rollout until cond holds.
func waitRollout(t *testing.T, rn *rollout.Runner, id, what string, cond func(rollout.Rollout) bool) rollout.Rollout {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := rn.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout never reached %s: %+v", what, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ringPhase(r rollout.Rollout, name string) rollout.Phase {
	for _, ring := range r.Rings {
		if ring.Name == name {
			return ring.Phase
		}
	}
	return ""
}

// TestRolloutThroughRings rolls a new release of the example out through
// the platform's own runner: developers, then the canary ring (acme,
// plan=pro) gated on its live traffic through the gateway after a bake on
// the fake clock, then everyone; each account serves the new version only
// once its ring is reached.
func TestRolloutThroughRings(t *testing.T) {
	p := silotest.New(t)
	app := silotest.CopyExample(t)
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"))
	globex := p.Tenant(t, "globex")
	dev := p.Tenant(t, "dev-alice", silotest.Kind(silo.KindDeveloper))
	ctx := context.Background()
	pp := p.Platform()

	edit(t, app, "v2")
	rel, err := pp.Build(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pp.Runner.Start(ctx, rel.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r = waitRollout(t, pp.Runner, r.ID, "canary baking", func(r rollout.Rollout) bool { return ringPhase(r, "canary") == rollout.PhaseBaking })
	if body := string(dev.GET(t, "/findings").Body); !strings.Contains(body, `"version":"v2"`) {
		t.Errorf("developers ring done: dev-alice got %s, want v2", body)
	}
	if body := string(globex.GET(t, "/findings").Body); strings.Contains(body, "version") {
		t.Errorf("globex is not in the canary ring yet but serves the new version: %s", body)
	}
	for range 20 { // canary traffic for the gate
		if resp := acme.GET(t, "/findings"); resp.Status != 200 || !strings.Contains(string(resp.Body), `"version":"v2"`) {
			t.Fatalf("canary acme: got %s, want v2", resp)
		}
	}
	p.Clock().Advance(time.Minute)
	// The everyone ring has no bake and is judged by the smoke function in
	// every tenant, so the rollout finishes after the canary bake.
	r = waitRollout(t, pp.Runner, r.ID, "done", func(r rollout.Rollout) bool { return r.State != rollout.StateRunning })
	if r.State != rollout.StateSucceeded {
		t.Fatalf("rollout: got %s (%s), want succeeded", r.State, r.Reason)
	}
	if body := string(globex.GET(t, "/findings").Body); !strings.Contains(body, `"version":"v2"`) {
		t.Errorf("after the rollout globex got %s, want v2", body)
	}
	// The audit log names who acted: whoever started the rollout (here the
	// platform's own actor: no caller named), the runner for what its rings
	// and gates did.
	es, err := pp.Plane.AuditLog(ctx, 0, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	actors := map[string]string{}
	for _, e := range es {
		if e.Event.Action == "release.apply" && e.Event.Account != "globex" {
			continue
		}
		actors[e.Event.Action] = e.Event.Actor
	}
	for action, want := range map[string]string{"rollout.start": "silotest", "release.apply": platform.ActorRollout, "rollout.succeed": platform.ActorRollout} {
		if got := actors[action]; got != want {
			t.Errorf("%s: got actor %q, want %q", action, got, want)
		}
	}
}
