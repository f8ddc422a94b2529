package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

const stackV1 = `version: 1
name: demo
params:
  plan: {type: string, default: free, enum: [free, pro]}
functions:
  ingest:
    source: ./fn.wasm
    tables: {findings: read-write}
    config: [plan_name]
tables: {findings: {}}
buckets: {raw: {}}
config:
  plan_name: "${param.plan}"
  url: "https://${tenant.id}.example.com"
secrets:
  token: {}
routes:
  - {method: POST, path: /findings, function: ingest}
production:
  tables: {intel: {}}
  exports:
    intel: {table: intel}
`

// stackV2 changes the function's grants, drops the bucket and adds a table.
const stackV2 = `version: 1
name: demo
params:
  plan: {type: string, default: free, enum: [free, pro]}
functions:
  ingest:
    source: ./fn.wasm
    tables: {findings: read-write, cache: read-write}
    config: [plan_name]
tables: {findings: {}, cache: {}}
config:
  plan_name: "${param.plan}"
  url: "https://${tenant.id}.example.com"
secrets:
  token: {}
routes:
  - {method: POST, path: /findings, function: ingest}
production:
  tables: {intel: {}}
  exports:
    intel: {table: intel}
`

type env struct {
	dir   string
	store store.Store
	prov  provider.Provider
	eng   *engine.Engine
}

// open returns an engine on the local provider in dir.
func open(t testing.TB, dir string, hook func(engine.Step)) *env {
	t.Helper()
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	return openOn(t, dir, prov, hook)
}

// openOn returns an engine on prov with its registry in dir.
func openOn(t testing.TB, dir string, prov provider.Provider, hook func(engine.Step)) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{dir: dir, store: st, prov: prov, eng: engine.New(engine.Config{Store: st, Provider: prov, Hook: hook})}
}

func release(t testing.TB, src string, digest string) engine.Release {
	t.Helper()
	st, err := spec.Parse("silo.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rel, _, err := engine.NewRelease(st, map[string]string{"ingest": digest}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

func account(t testing.TB, e *env, id silo.AccountID) silo.Account {
	t.Helper()
	var a silo.Account
	if err := e.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		a, err = tx.Account(id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDiffOrdersByDependency(t *testing.T) {
	mk := func(tp silo.ResourceType, name, v string) silo.Resource {
		r, err := silo.NewResource(tp, name, map[string]string{"v": v})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	current := []silo.Resource{mk(silo.TypeTable, "old", "1"), mk(silo.TypeRoute, "GET /old", "1"), mk(silo.TypeFunction, "f", "1"), mk(silo.TypeConfig, "same", "1")}
	desired := []silo.Resource{mk(silo.TypeRoute, "GET /new", "1"), mk(silo.TypeFunction, "f", "2"), mk(silo.TypeTable, "new", "1"), mk(silo.TypeConfig, "same", "1")}
	changes, unchanged := engine.Diff(desired, current)
	var got []string
	for _, c := range changes {
		got = append(got, string(c.Op)+" "+c.Key())
	}
	want := []string{"create table/new", "update function/f", "create route/GET /new", "delete route/GET /old", "delete table/old"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if unchanged != 1 {
		t.Errorf("unchanged = %d, want 1", unchanged)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	e := open(t, t.TempDir(), nil)
	v1 := release(t, stackV1, "sha256:aaaa")

	if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction}, v1); err != nil {
		t.Fatal(err)
	}
	_, err := e.eng.CreateAccount(ctx, silo.Account{ID: "production2", Kind: silo.KindProduction}, v1)
	if !errors.Is(err, silo.ErrConflict) {
		t.Fatalf("second production account: got %v, want conflict", err)
	}
	acme, err := e.eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant, Params: map[string]string{"plan": "pro"}}, v1)
	if err != nil {
		t.Fatal(err)
	}
	if acme.State != silo.StateActive || acme.Release != v1.ID {
		t.Fatalf("acme = %s on %q, want active on %s", acme.State, acme.Release, v1.ID)
	}
	if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant}, v1); !errors.Is(err, silo.ErrConflict) {
		t.Fatalf("duplicate tenant: got %v, want conflict", err)
	}

	// Unchanged: an empty plan, without reading recorded state.
	p, err := e.eng.PlanAccount(ctx, account(t, e, "acme"), v1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Touches() {
		t.Fatalf("plan of an unchanged account touches it: %+v", p)
	}

	// Changed: the plan lists exactly the differences, apply makes them, and
	// the next plan is empty again.
	v2 := release(t, stackV2, "sha256:aaaa")
	p, err = e.eng.PlanAccount(ctx, account(t, e, "acme"), v2)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]silo.Op{}
	for _, c := range p.Changes {
		got[c.Key()] = c.Op
	}
	want := map[string]silo.Op{"table/cache": silo.OpCreate, "function/ingest": silo.OpUpdate, "bucket/raw": silo.OpDelete}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("plan (-want +got):\n%s", diff)
	}
	if err := e.eng.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := e.eng.Apply(ctx, p); !errors.Is(err, silo.ErrConflict) {
		t.Fatalf("applying a stale plan: got %v, want conflict", err)
	}
	p, err = e.eng.PlanAccount(ctx, account(t, e, "acme"), v2)
	if err != nil || p.Touches() {
		t.Fatalf("plan after apply: %+v, %v; want empty", p, err)
	}
	if d, err := e.eng.Drift(ctx, "acme"); err != nil || len(d) != 0 {
		t.Fatalf("drift after apply: %v, %v; want none", d, err)
	}

	// Drift is seen when the provider loses a resource behind our back.
	if err := e.prov.Apply(ctx, "acme", silo.Change{Op: silo.OpDelete, Type: silo.TypeTable, Name: "cache"}); err != nil {
		t.Fatal(err)
	}
	d, err := e.eng.Drift(ctx, "acme")
	if err != nil || len(d) != 1 || d[0].Key != "table/cache" || d[0].Kind != "missing" {
		t.Fatalf("drift = %+v, %v; want table/cache missing", d, err)
	}

	if _, err := e.eng.DeleteAccount(ctx, silo.ProductionID); !errors.Is(err, silo.ErrForbidden) {
		t.Fatalf("delete production: got %v, want forbidden", err)
	}
	if _, err := e.eng.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if a := account(t, e, "acme"); a.State != silo.StateDeleted {
		t.Fatalf("acme state %s after delete, want deleted", a.State)
	}
	ids, err := e.prov.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]silo.AccountID{silo.ProductionID}, ids); diff != "" {
		t.Fatalf("provider accounts after delete (-want +got):\n%s", diff)
	}
	// The ID can be used again.
	if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant}, v2); err != nil {
		t.Fatalf("re-create after delete: %v", err)
	}
}

// TestDeletedAccountTakesNoAction: a deleted account is not planned, a plan
// made before its deletion is not applied, and it is neither deleted again
// nor suspended: each gets the one answer, which names the command that
// makes a new account under the ID, and the account stays as deleted. The
// twin, a live account, takes each.
func TestDeletedAccountTakesNoAction(t *testing.T) {
	ctx := context.Background()
	e := open(t, t.TempDir(), nil)
	v1, v2 := release(t, stackV1, "sha256:aaaa"), release(t, stackV2, "sha256:aaaa")
	for _, a := range []silo.Account{{ID: silo.ProductionID, Kind: silo.KindProduction}, {ID: "acme", Kind: silo.KindTenant}, {ID: "dev-ann", Kind: silo.KindDeveloper}} {
		if _, err := e.eng.CreateAccount(ctx, a, v1); err != nil {
			t.Fatal(err)
		}
	}
	stale, err := e.eng.PlanAccount(ctx, account(t, e, "dev-ann"), v2)
	if err != nil || !stale.Touches() {
		t.Fatalf("plan of dev-ann: %+v, %v; want changes", stale, err)
	}
	if _, err := e.eng.DeleteAccount(ctx, "dev-ann"); err != nil {
		t.Fatal(err)
	}
	deleted := account(t, e, "dev-ann")
	const want = "account dev-ann was deleted; silo dev --user ann makes a new, empty developer account under that ID"
	for name, err := range map[string]error{
		"plan":   func() error { _, err := e.eng.PlanAccount(ctx, deleted, v2); return err }(),
		"apply":  e.eng.Apply(ctx, stale),
		"delete": func() error { _, err := e.eng.DeleteAccount(ctx, "dev-ann"); return err }(),
		"suspend": func() error {
			_, err := e.eng.SetState(ctx, "dev-ann", silo.StateSuspended, "account.suspend")
			return err
		}(),
	} {
		if silo.ErrorCode(err) != silo.CodeNotFound || silo.UserMessage(err) != want {
			t.Errorf("%s of the deleted account: %v; want not_found, %q", name, err, want)
		}
	}
	if a := account(t, e, "dev-ann"); a.State != silo.StateDeleted || a.Version != deleted.Version {
		t.Fatalf("dev-ann after the refusals: %s, version %d; want deleted, version %d", a.State, a.Version, deleted.Version)
	}
	if err := engine.Live(account(t, e, "acme")); err != nil {
		t.Fatalf("a live account: %v", err)
	}

	// The twin: a live account is planned, applied, suspended and deleted.
	p, err := e.eng.PlanAccount(ctx, account(t, e, "acme"), v2)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.SetState(ctx, "acme", silo.StateSuspended, "account.suspend"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
}

func TestBadParamsChangeNothing(t *testing.T) {
	ctx := context.Background()
	e := open(t, t.TempDir(), nil)
	v1 := release(t, stackV1, "sha256:aaaa")
	_, err := e.eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant, Params: map[string]string{"plan": "platinum"}}, v1)
	if silo.ErrorCode(err) != silo.CodeInvalid {
		t.Fatalf("bad param: got %v, want invalid", err)
	}
	var n int
	e.store.View(ctx, func(tx store.Tx) error { n, err = tx.CountAccounts(store.Filter{IncludeDeleted: true}); return err })
	ids, _ := e.prov.Accounts(ctx)
	if n != 0 || len(ids) != 0 {
		t.Fatalf("after a refused create: %d registry rows, %d provider accounts; want none", n, len(ids))
	}
	// Twin: a good parameter is accepted.
	if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant, Params: map[string]string{"plan": "pro"}}, v1); err != nil {
		t.Fatal(err)
	}
}

// converge finishes the interrupted work the way silo does on restart and
// checks the result.
func converge(t *testing.T, e *env, phase string, org *awstest.Org) {
	t.Helper()
	ctx := context.Background()
	var pending []store.Intent
	e.store.View(ctx, func(tx store.Tx) error { var err error; pending, err = tx.PendingIntents(); return err })
	if len(pending) != 0 {
		t.Fatalf("%s: %d intents still pending after recovery", phase, len(pending))
	}
	ids, err := e.prov.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var a silo.Account
	err = e.store.View(ctx, func(tx store.Tx) error { var err error; a, err = tx.Account("acme"); return err })
	if phase == "create" && errors.Is(err, silo.ErrNotFound) {
		if len(ids) != 0 {
			t.Fatalf("create: no registry row but provider holds %v (orphan)", ids)
		}
		if org != nil {
			// A creation AWS was asked for is still going on there
			// (Organizations lists an account once created): onboarding
			// again must wait for it, not vend a second account.
			if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant}, release(t, stackV1, "sha256:aaaa")); err != nil && !provider.IsPending(err) {
				t.Fatalf("create again after the kill: %v", err)
			}
			checkOneAWSAccount(t, e, org)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if phase == "delete" {
		if a.State == silo.StateDeleting {
			if _, err := e.eng.DeleteAccount(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			a = account(t, e, "acme")
		}
		if a.State != silo.StateDeleted || len(ids) != 0 {
			t.Fatalf("delete: state %s, provider holds %v; want deleted and nothing", a.State, ids)
		}
		if org != nil {
			checkOneAWSAccount(t, e, org)
		}
		return
	}
	target := release(t, stackV1, "sha256:aaaa")
	if phase == "apply" {
		target = release(t, stackV2, "sha256:bbbb")
	}
	p, err := e.eng.PlanAccount(ctx, a, target)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.Apply(ctx, p); err != nil {
		t.Fatalf("%s: apply after recovery: %v", phase, err)
	}
	a = account(t, e, "acme")
	if a.State != silo.StateActive || a.Release != target.ID {
		t.Fatalf("%s: account %s on %q after converging, want active on %s", phase, a.State, a.Release, target.ID)
	}
	d, err := e.eng.Drift(ctx, "acme")
	if err != nil || len(d) != 0 {
		t.Fatalf("%s: drift after converging: %v %v", phase, d, err)
	}
	if p, _ := e.eng.PlanAccount(ctx, a, target); p.Touches() {
		t.Fatalf("%s: plan after converging is not empty: %+v", phase, p)
	}
	if org != nil {
		checkOneAWSAccount(t, e, org)
	}
	_ = fmt.Sprint
}

// TestRecoverLeavesLiveProcessesAlone: an intent journaled by a process
// that is still running (another CLI command, silo up) is not reconciled
// under it; once that process is gone, it is.
func TestRecoverLeavesLiveProcessesAlone(t *testing.T) {
	ctx := context.Background()
	e := open(t, t.TempDir(), nil)
	if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant}, release(t, stackV1, "sha256:aaaa")); err != nil {
		t.Fatal(err)
	}
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	now := time.Now()
	err := e.store.Update(ctx, func(tx store.Tx) error {
		_, err := tx.AddIntent(store.Intent{Key: fmt.Sprintf("delete-account/acme/%s~%d~abc", host, other.Process.Pid), Account: "acme", Action: "delete-account", State: store.IntentPending, Created: now, Updated: now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.eng.Recover(ctx)
	if err != nil || rep.Skipped != 1 || rep.Confirmed+rep.Abandoned+rep.Resumed != 0 {
		t.Fatalf("recover with the owner alive: %+v, %v; want it skipped", rep, err)
	}
	other.Process.Kill()
	other.Wait()
	rep, err = e.eng.Recover(ctx)
	if err != nil || rep.Skipped != 0 || rep.Abandoned != 1 || rep.Resumed != 1 {
		t.Fatalf("recover with the owner gone: %+v, %v; want the deletion finished", rep, err)
	}
	if a := account(t, e, "acme"); a.State != silo.StateDeleted {
		t.Fatalf("acme is %s after recovery, want deleted", a.State)
	}
}
