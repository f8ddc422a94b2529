package rollout_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
)

// onboard creates account a as control.Plane.CreateAccount does during a
// rollout: on the release ReleaseFor names, the current release when it
// names none. It returns the release a got. Safe to call from the
// runner's hooks (it reports with t.Error).
func onboard(t *testing.T, f *fleet, a silo.Account) string {
	t.Helper()
	ctx := context.Background()
	id, err := f.run.ReleaseFor(ctx, a)
	if err == nil && id == "" {
		err = f.store.View(ctx, func(tx store.Tx) error {
			id, err = tx.CurrentRelease()
			return err
		})
	}
	if err != nil {
		t.Errorf("release for %s: %v", a.ID, err)
		return ""
	}
	for _, rel := range f.rels {
		if rel.ID == id {
			if _, err := f.eng.CreateAccount(ctx, a, rel); err != nil {
				t.Errorf("create %s: %v", a.ID, err)
			}
			return id
		}
	}
	t.Errorf("release for %s: %s, which the test did not store", a.ID, id)
	return ""
}

// An account created during a rollout gets the rollout's release once its
// ring has begun, the current release before; when a later ring fails
// its gates, the rollback returns every account placed on the failed
// release with the accounts the rollout moved: a tenant created in the
// baking canary ring, a developer created in the promoted developers
// ring, and a developer created while the rollback runs gets the
// previous release at once. A developer's own build of the same sources,
// there before the rollout began, stays (it was put there on purpose).
// The twin: when the rollout succeeds, the accounts created during it
// stay on its release, and the tenant whose ring had not begun is moved
// by its ring.
func TestAccountsCreatedDuringARollout(t *testing.T) {
	withDevs := replaceOnce(fmtStack("", "0"), "    - name: canary\n", "    - name: developers\n      select: {kind: developer}\n    - name: canary\n")
	for _, tc := range []struct {
		name string
		v2   profile // how the rollout's release behaves
		want rollout.State
	}{
		{"the canary fails its gates", bad, rollout.StateFailed},
		{"the rollout succeeds", good, rollout.StateSucceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFleet(t, withDevs, 4, 1, "sha256:1111", "sha256:2222")
			v1, v2 := f.rels[0], f.rels[1]
			for id, rel := range map[silo.AccountID]engine.Release{"dev-root": v1, "dev-own": v2} {
				if _, err := f.eng.CreateAccount(ctx, silo.Account{ID: id, Kind: silo.KindDeveloper}, rel); err != nil {
					t.Fatal(err)
				}
			}
			f.clock.Advance(time.Minute)
			f.traffic(t, 200)
			f.behave[v2.ID] = tc.v2

			got := map[silo.AccountID]string{} // the release each new account got
			bake := f.onBake
			f.onBake = func(ring string) {
				if ring == "canary" && len(got) == 0 {
					for _, a := range []silo.Account{
						{ID: "t-new-canary", Kind: silo.KindTenant, Params: map[string]string{"ring": "canary"}}, // its ring bakes
						{ID: "t-new-main", Kind: silo.KindTenant},                                                // its ring has not begun
						{ID: "dev-new", Kind: silo.KindDeveloper},                                                // its ring is promoted
					} {
						got[a.ID] = onboard(t, f, a)
					}
				}
				bake(ring)
			}
			var once sync.Once
			f.onEvent = func(ev rollout.Event) {
				// The developers ring's rollback has listed its accounts.
				if ev.Point == "claimed" && ev.Detail == "rollback" && ev.Account == "dev-root" {
					once.Do(func() { got["dev-late"] = onboard(t, f, silo.Account{ID: "dev-late", Kind: silo.KindDeveloper}) })
				}
			}

			startRollout(t, f.env, v2, rollout.Options{}, tc.want)
			wantGot := map[silo.AccountID]string{"t-new-canary": v2.ID, "t-new-main": v1.ID, "dev-new": v2.ID}
			end := v2
			if tc.want == rollout.StateFailed {
				wantGot["dev-late"] = v1.ID
				end = v1
			}
			if diff := cmp.Diff(wantGot, got); diff != "" {
				t.Errorf("releases the new accounts got (-want +got):\n%s", diff)
			}
			want := map[silo.AccountID]string{silo.ProductionID: end.ID, "dev-root": end.ID, "dev-own": v2.ID}
			for i := 0; i < 4; i++ {
				want[tenant(i)] = end.ID
			}
			for id := range wantGot {
				want[id] = end.ID
			}
			if diff := cmp.Diff(want, releases(t, f.env)); diff != "" {
				t.Errorf("releases after the rollout (-want +got):\n%s", diff)
			}
			checkFleet(t, f.env, map[string]engine.Release{v1.ID: v1, v2.ID: v2})
		})
	}
}
