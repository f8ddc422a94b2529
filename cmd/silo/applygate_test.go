package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// failingRing is a rollout section whose only ring is gated on traffic a
// test never sends, and rolls back when its gates cannot judge: every
// rollout that changes a tenant fails there.
const failingRing = `
rollout:
  rings:
    - name: canary
      select: {kind: tenant}
      bake: 0s
      gates: {max_error_rate: 5%, min_requests: 10, on_inconclusive: rollback}
`

// silo apply of a release whose latest rollout failed is refused, in each
// of its forms (the fleet, one account, a saved plan), naming the rollout
// and --retry-failed, and changes nothing, and so is silo deploy of it;
// confirmed with --retry-failed apply makes the release current and
// applies it, and then neither a deploy nor an apply of it is refused for
// the failure before (rollout.FailuresOf).
func TestApplyRefusesAReleaseWhoseRolloutFailed(t *testing.T) {
	file, src := initProject(t)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(string(src) + failingRing)
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	changed := strings.Replace(string(src)+failingRing, "Hello, ", "Hi, ", 1)
	if changed == string(src)+failingRing {
		t.Fatal("the scaffold's greeting moved; update this test")
	}
	write(changed)
	if code, out, _ := c.run("deploy"); code == 0 || !strings.Contains(out, "failed") {
		t.Fatalf("deploy through a ring that cannot judge: exit %d, %s; want the rollout failed", code, out)
	}
	saved := filepath.Join(t.TempDir(), "plan.json")
	c.ok("plan", "--all", "--out", saved)

	before := stateOf(t, c)
	for _, args := range [][]string{{"apply", "--all"}, {"apply", "acme"}, {"apply", "--plan", saved}} {
		c.fails("failed in rollout ro-000001", args...)
		c.fails("silo apply --retry-failed", args...)
	}
	c.fails("failed in rollout ro-000001", "deploy")
	c.fails("silo deploy --retry-failed", "deploy")
	if after := stateOf(t, c); after != before {
		t.Errorf("a refused apply changed the state:\n%s", cmp.Diff(before, after))
	}

	out := c.ok("apply", "--all", "--retry-failed")
	if !strings.Contains(out, "acme (tenant)") || !strings.Contains(out, "is current") {
		t.Errorf("apply --all --retry-failed: %s; want acme changed and the release current", out)
	}
	if after := stateOf(t, c); after == before {
		t.Error("apply --all --retry-failed changed nothing")
	}
	// Made current by the operator since it failed: a deploy of it is not
	// refused for that failure, nor an apply; every account runs it.
	if out := c.ok("deploy"); !strings.Contains(out, "is already current on every account; nothing to roll out") {
		t.Errorf("deploy of the release apply --retry-failed made current: %s; want it current on every account", out)
	}
	c.ok("apply", "--all")
}

// A current release that never passed the isolation gate (stored and made
// current past it, as a silo older than the gate could) reaches no
// account from the CLI: silo tenant create, silo env create and silo
// tenant update are refused naming the release and what to do, and silo
// apply of that release (no silo.yaml: the current one) is refused by the
// gate; nothing changes. The twins: on a release that passes the gate the
// same commands go through.
func TestCLIOnboardingGatesTheCurrentRelease(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "acme", "--param", "plan=pro")
	good, bad := storeUngated(t, c)
	noFile := &cli{t: t, dataDir: c.dataDir, file: filepath.Join(t.TempDir(), "silo.yaml")}

	before := stateOf(t, c)
	c.fails("release "+bad+" would break isolation in account globex", "tenant", "create", "globex")
	c.fails("Deploy a release that passes the isolation gate", "tenant", "create", "globex")
	c.fails("release "+bad+" would break isolation in account acme", "tenant", "update", "acme", "--param", "plan=free")
	c.fails("release "+bad+" would break isolation in account e2e-1", "env", "create", "e2e-1", "--kind", "test", "--ttl", "1h")
	noFile.fails("release "+bad+" refused: it would break isolation", "apply", "--all")
	if after := stateOf(t, c); after != before {
		t.Errorf("a refused onboarding, update or apply changed the state:\n%s", cmp.Diff(before, after))
	}

	setCurrent(t, c, good)
	c.ok("tenant", "create", "globex")
	c.ok("tenant", "update", "acme", "--param", "plan=free")
	c.ok("env", "create", "e2e-1", "--kind", "test", "--ttl", "1h")
	noFile.ok("apply", "--all")
}

// storeUngated stores a release of the current one's stack and artifacts
// whose first function is granted every table, and makes it current past
// the gate. It returns the IDs of the release that was current and of the
// new one.
func storeUngated(t *testing.T, c *cli) (good, bad string) {
	t.Helper()
	ctx := context.Background()
	a, err := openApp(ctx, &globals{dataDir: c.dataDir, stdout: &strings.Builder{}, stderr: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cur, err := a.plane.CurrentRelease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := cur.Stack
	names := make([]string, 0, len(st.Functions))
	for n := range st.Functions {
		names = append(names, n)
	}
	slices.Sort(names)
	f := st.Functions[names[0]]
	f.Tables = map[string]spec.Access{"*": spec.AccessRead}
	st.Functions[names[0]] = f
	rel, stored, err := engine.NewRelease(st, cur.Artifacts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.plane.PutRelease(ctx, stored); err != nil {
		t.Fatal(err)
	}
	setCurrentIn(t, a.store, rel.ID)
	return cur.ID, rel.ID
}

// setCurrent makes release id current in c's data dir, past the gate.
func setCurrent(t *testing.T, c *cli, id string) {
	t.Helper()
	a, err := openApp(context.Background(), &globals{dataDir: c.dataDir, stdout: &strings.Builder{}, stderr: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	setCurrentIn(t, a.store, id)
}

func setCurrentIn(t *testing.T, st store.Store, id string) {
	t.Helper()
	err := st.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.SetCurrentRelease(id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// silo apply ACCOUNT brings the production account to the release too, so
// what that destroys in production is shown and needs confirming like the
// account's own losses: without --yes (and without a terminal) it is
// refused naming it, and nothing changes (must not); with --yes it goes
// ahead (must), and an apply that destroys nothing needs no --yes (must).
func TestApplyOneAccountConfirmsProductionLosses(t *testing.T) {
	c := scaffold(t) // acme and globex
	hasCatalog := regexp.MustCompile(`(?m)^\s*table\s+catalog\s`)
	withCatalog := []string{"tables:\n  visits: {}\n", "tables:\n  visits: {}\n\nproduction:\n  tables:\n    catalog: {}\n"}
	c.edit(withCatalog...)
	c.ok("apply", "acme") // adds catalog to production: nothing lost
	if out := c.ok("tenant", "show", "production"); !hasCatalog.MatchString(out) {
		t.Fatalf("production after adding catalog: %s", out)
	}
	c.edit("\nproduction:\n  tables:\n    catalog: {}\n", "")

	before := stateOf(t, c)
	c.fails("this apply destroys data (deletes table/catalog in production)", "apply", "acme")
	if after := stateOf(t, c); after != before {
		t.Errorf("a refused apply changed the state:\n%s", cmp.Diff(before, after))
	}
	out := c.ok("apply", "acme", "--yes")
	if !strings.Contains(out, "production (production)") {
		t.Errorf("apply acme --yes: %s; want production listed as changed", out)
	}
	if out := c.ok("tenant", "show", "production"); hasCatalog.MatchString(out) {
		t.Errorf("production after apply acme --yes: %s; want catalog gone", out)
	}
}

// An apply that showed no loss destroys none: silo apply acme finds
// nothing to lose, but before it changes anything another command gives
// production a table the release does not have; planned again as the
// apply reaches it, production would lose that table, so it is not
// changed and the apply fails naming it (must not). The twin, the same
// apply with nothing moving in between, goes through without --yes: see
// TestApplyOneAccountConfirmsProductionLosses.
func TestApplyHoldsProductionToWhatWasShown(t *testing.T) {
	c := scaffold(t) // acme and globex
	hasCatalog := regexp.MustCompile(`(?m)^\s*table\s+catalog\s`)
	src, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatal(err)
	}
	other := &cli{t: t, dataDir: c.dataDir, file: filepath.Join(filepath.Dir(c.file), "catalog.yaml")}
	withCatalog := strings.Replace(string(src), "tables:\n  visits: {}\n", "tables:\n  visits: {}\n\nproduction:\n  tables:\n    catalog: {}\n", 1)
	if err := os.WriteFile(other.file, []byte(withCatalog), 0o644); err != nil {
		t.Fatal(err)
	}
	applyConfirmed = func() {
		applyConfirmed = func() {} // the other apply is not raced in turn
		other.ok("apply", "production")
	}
	defer func() { applyConfirmed = func() {} }()
	c.fails("planned again to be applied, it deletes table/catalog in production, which was not shown; account production was not changed", "apply", "acme")
	if out := c.ok("tenant", "show", "production"); !hasCatalog.MatchString(out) {
		t.Errorf("production after the refused apply: %s; want catalog kept", out)
	}
}
