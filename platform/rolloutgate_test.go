package platform_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// TestRolloutStartRunsTheIsolationGate: every rollout start, from a
// server or from silo deploy on a data dir, passes the isolation gate
// (rollout.Config.Gate, control.Plane.Gate). A stored release whose first
// function is granted every table (one a silo before the gate could have
// stored) is refused with the gate's reason, and nothing is recorded: no
// rollout, no audit entry, the current release unchanged. The twin: a
// sound release of the same stack starts.
func TestRolloutStartRunsTheIsolationGate(t *testing.T) {
	ctx := context.Background()
	p := silotest.New(t)
	p.Deploy(t, silotest.CopyExample(t))
	p.Tenant(t, "acme")
	pl := p.Platform()
	// stored stores a release of the current one's stack, changed by
	// mutate, and its artifacts.
	stored := func(mutate func(*spec.Stack)) engine.Release {
		t.Helper()
		cur, err := pl.Plane.CurrentRelease(ctx) // a copy of its own
		if err != nil {
			t.Fatal(err)
		}
		mutate(cur.Stack)
		rel, sr, err := engine.NewRelease(cur.Stack, cur.Artifacts, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := pl.Plane.PutRelease(ctx, sr); err != nil {
			t.Fatal(err)
		}
		return rel
	}
	bad := stored(func(st *spec.Stack) {
		name := slices.Sorted(maps.Keys(st.Functions))[0]
		f := st.Functions[name]
		f.Tables = map[string]spec.Access{"*": spec.AccessRead}
		st.Functions[name] = f
	})
	good := stored(func(st *spec.Stack) {
		f := st.Functions["list"]
		f.Timeout = 3 * time.Second
		st.Functions["list"] = f
	})
	state := func() (string, int, int) {
		t.Helper()
		var cur string
		var n, audit int
		if err := pl.Store.View(ctx, func(tx store.Tx) error {
			var err error
			if cur, err = tx.CurrentRelease(); err != nil {
				return err
			}
			if n, err = tx.CountRollouts(); err != nil {
				return err
			}
			es, err := tx.Audit(0, 0)
			audit = len(es)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return cur, n, audit
	}

	c0, n0, a0 := state()
	_, err := pl.Runner.Start(ctx, bad.ID, rollout.Options{AllowDataLoss: true})
	if silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(silo.UserMessage(err), "release "+bad.ID+" refused: it would break isolation") {
		t.Fatalf("Start(release that breaks isolation) = %v, want failed_check from the isolation gate", err)
	}
	if c, n, a := state(); c != c0 || n != n0 || a != a0 {
		t.Errorf("a refused start changed the store: current %s → %s, rollouts %d → %d, audit entries %d → %d", c0, c, n0, n, a0, a)
	}

	r, err := pl.Runner.Start(ctx, good.ID, rollout.Options{AllowDataLoss: true})
	if err != nil || r.Release != good.ID {
		t.Fatalf("Start(sound release) = %+v, %v; want a rollout of %s", r, err, good.ID)
	}
}
