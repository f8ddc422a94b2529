package platform_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
)

// A tenant returned by a rollback runs the release it ran before, named as
// that release everywhere: the registry and silo tenant show say its ID,
// the release keeps its note, it is the current release, and the tenant
// serves that release's version; on Lambda, the live version of each
// function names that release (SILO_RELEASE, under which its invocations
// count). Both ways back are covered locally: a gate that rolls a broken
// canary back, and an operator's rollback of a release that went out; on
// AWS the operator's (a gate's rollback on Lambda moves the same aliases,
// and TestLatencyGateOnLambda holds it; each case costs most of a minute
// on the emulator).
func TestRollbackReturnsTheEarlierRelease(t *testing.T) {
	t.Parallel() // its own emulated organization and platform
	for _, tc := range []struct {
		name     string
		aws      bool
		operator bool // the rollout of B succeeds and the operator rolls it back
	}{
		{"local/gate rolls back", false, false},
		{"local/operator rolls back", false, true},
		{"aws/operator rolls back", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p *silotest.Platform
			if tc.aws {
				p = silotest.NewAWS(t)
			} else {
				p = silotest.New(t)
			}
			app := silotest.CopyExample(t)
			ctx := context.Background()
			pp := p.Platform()
			breakable(t, app, "")
			edit(t, app, "v1")
			// The release is stored with its note before it is deployed
			// (storing the same release again keeps the first record).
			_, stored, err := pp.Plane.PrepareRelease(ctx, filepath.Join(app, "silo.yaml"), store.Origin{Kind: store.OriginDeploy})
			if err != nil {
				t.Fatal(err)
			}
			stored.Note = "spring launch"
			if err := pp.Plane.PutRelease(ctx, stored); err != nil {
				t.Fatal(err)
			}
			relA := p.Deploy(t, app).Release.ID
			if relA != stored.ID {
				t.Fatalf("deployed %s, want the prepared release %s", relA, stored.ID)
			}
			acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"))
			p.Tenant(t, "globex")

			suffix := "-broken"
			if tc.operator {
				suffix = ""
			}
			breakable(t, app, suffix)
			edit(t, app, "v2")
			relB, err := pp.Build(ctx, app)
			if err != nil {
				t.Fatal(err)
			}
			r, err := pp.Runner.Start(ctx, relB.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			waitRollout(t, pp.Runner, r.ID, "canary baking", func(r rollout.Rollout) bool {
				return ringPhase(r, "canary") == rollout.PhaseBaking && !r.Rings[2].BakeUntil.IsZero()
			})
			for range 40 {
				acme.GET(t, "/findings?fail=1")
			}
			// The gate counts what the provider counted: on Lambda, once
			// the host's output reached CloudWatch Logs.
			for until := time.Now().Add(time.Minute); p.Requests(t, "acme") < 40 && time.Now().Before(until); {
				time.Sleep(500 * time.Millisecond)
			}
			p.Clock().Advance(time.Minute)
			r = waitRollout(t, pp.Runner, r.ID, "done", func(r rollout.Rollout) bool { return r.State != rollout.StateRunning })
			want := rollout.StateFailed
			if tc.operator {
				want = rollout.StateSucceeded
			}
			if r.State != want {
				t.Fatalf("rollout of B: %s (%s), want %s", r.State, r.Reason, want)
			}
			if tc.operator {
				if body := string(acme.GET(t, "/findings").Body); !strings.Contains(body, `"version":"v2"`) {
					t.Fatalf("after B went out acme serves %s, want v2", body)
				}
				// The twin of the check after the rollback: list, the one
				// function B changed, runs under B (the others keep the
				// release they were deployed under).
				checkLiveRelease(t, p, "acme", relB.ID, "silo-fn-list")
				back, err := pp.Runner.Rollback(ctx, r.ID, rollout.Options{})
				if err != nil {
					t.Fatal(err)
				}
				back = waitRollout(t, pp.Runner, back.ID, "done", func(r rollout.Rollout) bool { return r.State != rollout.StateRunning })
				if back.State != rollout.StateSucceeded || back.Release != relA {
					t.Fatalf("rollback rollout: %s to %s (%s), want succeeded to %s", back.State, back.Release, back.Reason, relA)
				}
			}

			if body := string(acme.GET(t, "/findings").Body); !strings.Contains(body, `"version":"v1"`) {
				t.Errorf("after the rollback acme serves %s, want v1", body)
			}
			for _, id := range []silo.AccountID{"acme", "globex"} {
				d, err := pp.Plane.Show(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if d.Account.Release != relA {
					t.Errorf("tenant show %s: release %q, want %s (A)", id, d.Account.Release, relA)
				}
				checkLiveRelease(t, p, id, relA)
			}
			if err := pp.Store.View(ctx, func(tx store.Tx) error {
				cur, err := tx.CurrentRelease()
				if err != nil {
					return err
				}
				if cur != relA {
					t.Errorf("current release %s, want %s (A)", cur, relA)
				}
				rel, err := tx.Release(cur)
				if err != nil {
					return err
				}
				if rel.Note != "spring launch" {
					t.Errorf("release %s note %q, want %q", cur, rel.Note, "spring launch")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkLiveRelease checks, on Lambda, that the live version of each of
// acct's Lambda functions fns (all of them if none) names release rel
// (SILO_RELEASE); on the local provider the registry is all there is.
func checkLiveRelease(t *testing.T, p *silotest.Platform, acct silo.AccountID, rel string, fns ...string) {
	t.Helper()
	org, prov := p.AWS()
	if org == nil {
		return
	}
	awsID, err := prov.AWSAccountID(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) == 0 {
		fns = org.Functions(awsID)
	}
	if len(fns) == 0 {
		t.Fatalf("%s has no function on Lambda", acct)
	}
	for _, fn := range fns {
		if code, ok := org.Function(awsID, fn, "live"); !ok || code.Env["SILO_RELEASE"] != rel {
			t.Errorf("function %s of %s: the live version names release %q, want %s", fn, acct, code.Env["SILO_RELEASE"], rel)
		}
	}
}
