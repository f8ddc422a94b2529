package rollout_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
)

// When the canary ring rolls back, every account the rollout touched in an
// earlier ring (production, the developers ring) returns to the release it
// ran before: the fleet's previous release, or a developer's own build.
// The twin: a good release leaves every ring on the target.
func TestRollbackReturnsEarlierRings(t *testing.T) {
	devRing := `    - name: developers
      select: {kind: developer}
      concurrency: 2%s
    - name: canary
`
	for _, tc := range []struct {
		name      string
		policy    string
		target    profile
		wantState rollout.State
	}{
		{"bad release returns every ring", "", bad, rollout.StateFailed},
		{"good release moves every ring", "", good, rollout.StateSucceeded},
		{"bad release leaves a keep ring on it", "\n      on_rollback: keep", bad, rollout.StateFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, t.TempDir(), opts{})
			src := replaceOnce(fmtStack("", "0"), "    - name: canary\n", fmt.Sprintf(devRing, tc.policy))
			v1 := release(t, e, src, "sha256:1111")
			own := release(t, e, src, "sha256:0de0") // dev-bob's own build
			v2 := release(t, e, src, "sha256:2222")
			seed(t, e, v1, 10, 2)
			for id, rel := range map[silo.AccountID]engine.Release{"dev-root": v1, "dev-bob": own} {
				if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: id, Kind: silo.KindDeveloper}, rel); err != nil {
					t.Fatal(err)
				}
			}
			traffic(t, e, 200, map[string]profile{v1.ID: good})
			e.onBake = func(string) {
				traffic(t, e, 100, map[string]profile{v1.ID: good, v2.ID: tc.target})
				e.clock.Advance(5 * time.Minute)
			}
			r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r = drive(t, e, r.ID)
			if r.State != tc.wantState {
				t.Fatalf("state = %s (%s), want %s", r.State, r.Reason, tc.wantState)
			}
			want := map[silo.AccountID]string{silo.ProductionID: v1.ID, "dev-root": v1.ID, "dev-bob": own.ID}
			for i := 0; i < 10; i++ {
				want[tenant(i)] = v1.ID
			}
			if tc.wantState == rollout.StateSucceeded {
				for id := range want {
					want[id] = v2.ID
				}
			}
			keep := tc.policy != ""
			if keep {
				want["dev-root"], want["dev-bob"] = v2.ID, v2.ID
			}
			if diff := cmp.Diff(want, releases(t, e)); diff != "" {
				t.Errorf("releases (-want +got):\n%s", diff)
			}
			checkFleet(t, e, map[string]engine.Release{v1.ID: v1, v2.ID: v2, own.ID: own})
			// Status says what is where, ring by ring.
			wantWhere := []map[string]int{{v1.ID: 1}, {v1.ID: 1, own.ID: 1}, {v1.ID: 2}, {v1.ID: 8}}
			wantPhase := []rollout.Phase{rollout.PhaseRolledBack, rollout.PhaseRolledBack, rollout.PhaseRolledBack, rollout.PhaseWaiting}
			switch {
			case tc.wantState == rollout.StateSucceeded:
				wantWhere = []map[string]int{{v2.ID: 1}, {v2.ID: 2}, {v2.ID: 2}, {v2.ID: 8}}
				wantPhase = []rollout.Phase{rollout.PhasePromoted, rollout.PhasePromoted, rollout.PhasePromoted, rollout.PhasePromoted}
			case keep:
				wantWhere[1] = map[string]int{v2.ID: 2}
				wantPhase[1] = rollout.PhasePromoted
			}
			var gotWhere []map[string]int
			var gotPhase []rollout.Phase
			for _, ring := range r.Rings {
				gotWhere = append(gotWhere, ring.Releases)
				gotPhase = append(gotPhase, ring.Phase)
			}
			if diff := cmp.Diff(wantWhere, gotWhere); diff != "" {
				t.Errorf("ring releases (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantPhase, gotPhase); diff != "" {
				t.Errorf("ring phases (-want +got):\n%s", diff)
			}
		})
	}
}

// An aborted rollout shows the ring it stopped in as stopped, not as
// still baking, and where its accounts are.
func TestAbortStopsRing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	src := fmtStack("", "0")
	v1 := release(t, e, src, "sha256:1111")
	v2 := release(t, e, src, "sha256:2222")
	seed(t, e, v1, 10, 2)
	var id string
	e.onBake = func(string) {
		if _, err := e.run.Abort(ctx, id); err != nil {
			t.Error(err)
		}
	}
	r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id = r.ID
	r = drive(t, e, id)
	if r.State != rollout.StateAborted {
		t.Fatalf("state = %s, want aborted", r.State)
	}
	canary := r.Rings[1]
	if canary.Phase != rollout.PhaseStopped {
		t.Errorf("canary phase = %s, want stopped", canary.Phase)
	}
	if diff := cmp.Diff(map[string]int{v2.ID: 2}, canary.Releases); diff != "" {
		t.Errorf("canary releases (-want +got):\n%s", diff)
	}
	if r.Rings[2].Phase != rollout.PhaseWaiting {
		t.Errorf("everyone phase = %s, want waiting", r.Rings[2].Phase)
	}
}

// An operator's rollback returns every account the rollout moved to the
// release it ran before (dev-bob to his own build), moves accounts that
// run the rolled-back release (a tenant created after the rollout) to the
// previous one, and leaves alone an account the rollout never touched on
// a release of its own (dev-carol).
func TestOperatorRollbackReturnsWhatItMoved(t *testing.T) {
	ctx := context.Background()
	src := replaceOnce(fmtStack("", "0"), "    - name: canary\n", "    - name: developers\n      select: {kind: developer}\n    - name: canary\n")
	e, r, rels := rolledOutToDevelopers(t, src, src)
	v1, own, carol, v2 := rels.v1, rels.own, rels.carol, rels.v2
	// After the rollout: a tenant on the new release, a developer on her own build.
	for id, acct := range map[silo.AccountID]struct {
		kind silo.Kind
		rel  engine.Release
	}{"late": {silo.KindTenant, v2}, "dev-carol": {silo.KindDeveloper, carol}} {
		if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: id, Kind: acct.kind}, acct.rel); err != nil {
			t.Fatal(err)
		}
	}
	rb, err := e.run.Rollback(ctx, r.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rb = drive(t, e, rb.ID); rb.State != rollout.StateSucceeded {
		t.Fatalf("rollback: %s (%s), want succeeded", rb.State, rb.Reason)
	}
	want := map[silo.AccountID]string{silo.ProductionID: v1.ID, "dev-root": v1.ID, "dev-bob": own.ID, "dev-carol": carol.ID, "late": v1.ID}
	for i := 0; i < 6; i++ {
		want[tenant(i)] = v1.ID
	}
	if diff := cmp.Diff(want, releases(t, e)); diff != "" {
		t.Errorf("releases after the rollback (-want +got):\n%s", diff)
	}
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1, own.ID: own, carol.ID: carol})
}

// A first deploy that fails has nothing to return to: its failing ring
// says stopped (not rolled back) and where its accounts are.
func TestFirstDeployFailureStops(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	src := fmtStack("", "0")
	v1 := release(t, e, src, "sha256:1111")
	v2 := release(t, e, src, "sha256:2222")
	seedAccounts(t, e, v1, 6, 2)
	e.onBake = func(string) {
		traffic(t, e, 100, map[string]profile{v2.ID: bad})
		e.clock.Advance(5 * time.Minute)
	}
	r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r = drive(t, e, r.ID); r.State != rollout.StateFailed || !strings.Contains(r.Reason, "nothing to roll back to") {
		t.Fatalf("state = %s (%s), want failed with nothing to roll back to", r.State, r.Reason)
	}
	if canary := r.Rings[1]; canary.Phase != rollout.PhaseStopped || canary.Releases[v2.ID] != 2 {
		t.Errorf("canary ring: phase %s, releases %v; want stopped with 2 on %s", canary.Phase, canary.Releases, v2.ID)
	}
}

// A rollback returns every account the rollout moved whichever rings the
// release it returns to declares: here the rolled-back release has a
// developers ring and, in one case, the previous release has none, so only
// the rollback's last ring ("rest") selects the developer accounts. The
// preview plans the same accounts. The twin: a developer on a build of her
// own that the rollout never touched stays there in both cases.
func TestRollbackReturnsAccountsTheTargetRingsLeaveOut(t *testing.T) {
	devRing := "    - name: developers\n      select: {kind: developer}\n    - name: canary\n"
	withDevs := replaceOnce(fmtStack("", "0"), "    - name: canary\n", devRing)
	for _, tc := range []struct {
		name     string
		previous string // silo.yaml of the release rolled back to
		rings    []string
	}{
		{"previous release selects no developer", fmtStack("", "0"), []string{"production", "canary", "everyone", "rest"}},
		{"previous release selects developers", withDevs, []string{"production", "developers", "canary", "everyone"}}, // rest would return no account
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e, r, rels := rolledOutToDevelopers(t, tc.previous, withDevs)
			v1, own, carol := rels.v1, rels.own, rels.carol
			if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "dev-carol", Kind: silo.KindDeveloper}, carol); err != nil {
				t.Fatal(err)
			}
			pv, err := e.run.PreviewRollback(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			// production, six tenants, dev-root and dev-bob; not dev-carol.
			if pv.Accounts != 9 {
				t.Errorf("preview plans %d accounts, want 9", pv.Accounts)
			}
			rb, err := e.run.Rollback(ctx, r.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rb = drive(t, e, rb.ID); rb.State != rollout.StateSucceeded {
				t.Fatalf("rollback: %s (%s), want succeeded", rb.State, rb.Reason)
			}
			var rings []string
			for _, ring := range rb.Rings {
				rings = append(rings, ring.Name)
			}
			if diff := cmp.Diff(tc.rings, rings); diff != "" {
				t.Errorf("rollback rings (-want +got):\n%s", diff)
			}
			want := map[silo.AccountID]string{silo.ProductionID: v1.ID, "dev-root": v1.ID, "dev-bob": own.ID, "dev-carol": carol.ID}
			for i := 0; i < 6; i++ {
				want[tenant(i)] = v1.ID
			}
			if diff := cmp.Diff(want, releases(t, e)); diff != "" {
				t.Errorf("releases after the rollback (-want +got):\n%s", diff)
			}
			checkFleet(t, e, map[string]engine.Release{v1.ID: v1, own.ID: own, carol.ID: carol})
		})
	}
}

// devReleases are the releases of rolledOutToDevelopers.
type devReleases struct{ v1, own, carol, v2 engine.Release }

// rolledOutToDevelopers makes a fleet on v1 (of silo.yaml previous: six
// tenants, dev-root) with dev-bob on a build of his own (own), and rolls
// v2 (of src, as are own and carol) out to success under good traffic;
// it returns the environment, the rollout and the releases.
func rolledOutToDevelopers(t *testing.T, previous, src string) (*env, rollout.Rollout, devReleases) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	rels := devReleases{
		v1:    release(t, e, previous, "sha256:1111"),
		own:   release(t, e, src, "sha256:0de0"),
		carol: release(t, e, src, "sha256:ca01"),
		v2:    release(t, e, src, "sha256:2222"),
	}
	seed(t, e, rels.v1, 6, 2)
	for id, rel := range map[silo.AccountID]engine.Release{"dev-root": rels.v1, "dev-bob": rels.own} {
		if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: id, Kind: silo.KindDeveloper}, rel); err != nil {
			t.Fatal(err)
		}
	}
	traffic(t, e, 200, map[string]profile{rels.v1.ID: good})
	e.onBake = func(string) {
		traffic(t, e, 100, map[string]profile{rels.v1.ID: good, rels.v2.ID: good})
		e.clock.Advance(5 * time.Minute)
	}
	r, err := e.run.Start(ctx, rels.v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r = drive(t, e, r.ID); r.State != rollout.StateSucceeded {
		t.Fatalf("rollout: %s (%s), want succeeded", r.State, r.Reason)
	}
	return e, r, rels
}
