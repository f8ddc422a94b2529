package rollout_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
	"github.com/silo-run/silo/store/sqlite"
)

// ringNames lists the names of r's rings.
func ringNames(r rollout.Rollout) []string {
	var out []string
	for _, ring := range r.Rings {
		out = append(out, ring.Name)
	}
	return out
}

// rolledOut makes a fleet of four tenants on v1 and rolls v2 out to
// success; the rings of the stack select tenants only.
func rolledOut(t *testing.T, e *env) (v1, v2 engine.Release, r rollout.Rollout) {
	t.Helper()
	v1 = release(t, e, fmtStack("", "0"), "sha256:1111")
	v2 = release(t, e, fmtStack("", "0"), "sha256:2222")
	seed(t, e, v1, 4, 1)
	traffic(t, e, 200, map[string]profile{v1.ID: good})
	e.onBake = func(string) {
		traffic(t, e, 100, map[string]profile{v1.ID: good, v2.ID: good})
		e.clock.Advance(5 * time.Minute)
	}
	r, err := e.run.Start(context.Background(), v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r = drive(t, e, r.ID); r.State != rollout.StateSucceeded {
		t.Fatalf("rollout: %s (%s), want succeeded", r.State, r.Reason)
	}
	return v1, v2, r
}

// A rollback whose rings (those of the release it returns to: tenants
// only) leave out no account it returns has no ring "rest": none shows
// with nothing to do. The twin: a developer created on the rolled-back
// release after its rollout began is one the rollback returns, and only
// rest selects it, so the rollback keeps rest and returns it.
func TestRollbackShowsNoEmptyRest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dev   bool // a developer on the rolled-back release, created after its rollout began
		rings []string
	}{
		{"no account left out", false, []string{"production", "canary", "everyone"}},
		{"a developer left out", true, []string{"production", "canary", "everyone", "rest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, t.TempDir(), opts{})
			v1, v2, r := rolledOut(t, e)
			if tc.dev {
				if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "dev-new", Kind: silo.KindDeveloper}, v2); err != nil {
					t.Fatal(err)
				}
			}
			rb, err := e.run.Rollback(ctx, r.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.rings, ringNames(rb)); diff != "" {
				t.Errorf("rollback rings as it starts (-want +got):\n%s", diff)
			}
			if rb = drive(t, e, rb.ID); rb.State != rollout.StateSucceeded {
				t.Fatalf("rollback: %s (%s), want succeeded", rb.State, rb.Reason)
			}
			if diff := cmp.Diff(tc.rings, ringNames(get(t, e, rb.ID))); diff != "" {
				t.Errorf("rollback rings as recorded (-want +got):\n%s", diff)
			}
			for _, ring := range rb.Rings {
				if ring.Members == 0 && ring.Name != "production" && ring.Name != "canary" {
					t.Errorf("ring %s has no account", ring.Name)
				}
			}
			for id, rel := range releases(t, e) {
				if rel != v1.ID {
					t.Errorf("%s on %s after the rollback, want %s", id, rel, v1.ID)
				}
			}
			// An onboarding that read the current release before the
			// rollback succeeded and asks where its account goes after
			// is told the release now current, not "" (its own, older
			// read).
			if id, err := e.run.ReleaseFor(ctx, silo.Account{ID: "t-after", Kind: silo.KindTenant}); err != nil || id != v1.ID {
				t.Errorf("ReleaseFor after the rollback = %q, %v; want %s", id, err, v1.ID)
			}
		})
	}
}

// An account registered on the rolled-back release after the ring that
// selects it passed (an onboarding that chose that release before the
// rollback was recorded) is returned before the rollback succeeds: the
// ring runs again, or, for an account no ring selects, the rollback gains
// its ring rest. The twin: an account on a release of its own, registered
// as late, stays.
func TestRollbackReturnsALateAccount(t *testing.T) {
	for _, tc := range []struct {
		name  string
		a     silo.Account
		own   bool // on a release of its own
		rings []string
	}{
		{"a tenant", silo.Account{ID: "t-late", Kind: silo.KindTenant}, false, []string{"production", "canary", "everyone"}},
		{"a developer", silo.Account{ID: "dev-late", Kind: silo.KindDeveloper}, false, []string{"production", "canary", "everyone", "rest"}},
		{"a developer on its own build", silo.Account{ID: "dev-own", Kind: silo.KindDeveloper}, true, []string{"production", "canary", "everyone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, t.TempDir(), opts{})
			v1, v2, r := rolledOut(t, e)
			own := release(t, e, fmtStack("", "0"), "sha256:0de0")
			rb, err := e.run.Rollback(ctx, r.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			on := v2
			if tc.own {
				on = own
			}
			var once sync.Once
			e.onEvent = func(ev rollout.Event) {
				if ev.Rollout == rb.ID && ev.Ring == "everyone" && ev.Point == "phase" && ev.Detail == string(rollout.PhasePromoted) {
					once.Do(func() {
						if _, err := e.eng.CreateAccount(ctx, tc.a, on); err != nil {
							t.Error(err)
						}
					})
				}
			}
			if rb = drive(t, e, rb.ID); rb.State != rollout.StateSucceeded {
				t.Fatalf("rollback: %s (%s), want succeeded", rb.State, rb.Reason)
			}
			if diff := cmp.Diff(tc.rings, ringNames(rb)); diff != "" {
				t.Errorf("rollback rings (-want +got):\n%s", diff)
			}
			want := v1.ID
			if tc.own {
				want = own.ID
			}
			if got := releases(t, e)[tc.a.ID]; got != want {
				t.Errorf("%s on %s after the rollback, want %s", tc.a.ID, got, want)
			}
			checkFleet(t, e, map[string]engine.Release{v1.ID: v1, own.ID: own})
		})
	}
}

// While a rollback runs, every account onboarded through the control
// plane (which asks the runner where a new account goes, as a server
// does) gets the release the fleet returns to, whichever ring, if any,
// selects it; and every account onboarded from just before the rollback
// starts until after it ends runs that release once it succeeds.
func TestOnboardingDuringARollbackSQLite(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	onboardingDuringARollback(t, st)
}

// TestOnboardingDuringARollbackPostgres is the same on PostgreSQL.
func TestOnboardingDuringARollbackPostgres(t *testing.T) {
	st, err := postgres.Open(context.Background(), pgtest.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	onboardingDuringARollback(t, st)
}

func onboardingDuringARollback(t *testing.T, st store.Store) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{store: st})
	v1, _, r := rolledOut(t, e)
	plane := control.New(control.Config{Store: e.store, Provider: e.prov, Now: e.clock.Now, Placement: e.run.ReleaseFor})

	var (
		started atomic.Bool // the rollback is recorded
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex
		created = map[silo.AccountID]string{} // the release each got
		after   = map[silo.AccountID]bool{}   // onboarded after the rollback was recorded
		during  sync.Once
		// closed once an account onboarded after the rollback was
		// recorded: the rollback's first ring waits for it, so that some
		// onboard while it runs
		onboarded = make(chan struct{})
	)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer during.Do(func() { close(onboarded) }) // a failed onboarding holds nothing back
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				kind := silo.KindTenant
				if i%2 == 1 {
					kind = silo.KindDeveloper
				}
				id := fmt.Sprintf("n%d-%03d", w, i)
				if kind == silo.KindDeveloper {
					id = "dev-" + id
				}
				late := started.Load()
				c, err := plane.CreateAccount(ctx, control.CreateRequest{ID: id, Kind: kind})
				if err != nil {
					t.Errorf("create %s: %v", id, err)
					return
				}
				mu.Lock()
				created[c.Account.ID], after[c.Account.ID] = c.Account.Release, late
				mu.Unlock()
				if late {
					during.Do(func() { close(onboarded) })
				}
			}
		}()
	}
	rb, err := e.run.Rollback(ctx, r.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	started.Store(true)
	var wait sync.Once
	e.onEvent = func(ev rollout.Event) {
		if ev.Rollout == rb.ID && ev.Point == "phase" {
			wait.Do(func() {
				select {
				case <-onboarded:
				case <-time.After(time.Minute):
					t.Error("no account was onboarded while the rollback ran")
				}
			})
		}
	}
	rb = drive(t, e, rb.ID)
	close(stop)
	wg.Wait()
	if rb.State != rollout.StateSucceeded {
		t.Fatalf("rollback: %s (%s), want succeeded", rb.State, rb.Reason)
	}
	if len(created) == 0 {
		t.Fatal("no account was onboarded")
	}
	now := releases(t, e)
	n := 0
	for id, got := range created {
		if after[id] {
			n++
			if got != v1.ID {
				t.Errorf("%s onboarded during the rollback on %s, want %s", id, got, v1.ID)
			}
		}
		if now[id] != v1.ID {
			t.Errorf("%s on %s after the rollback, want %s", id, now[id], v1.ID)
		}
	}
	t.Logf("%d accounts onboarded, %d of them after the rollback was recorded; rollback rings %v", len(created), n, ringNames(rb))
}
