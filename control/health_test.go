package control_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// planeOn opens a plane on the state file name in dir, over the provider
// in dir/accounts.
func planeOn(t *testing.T, dir, name string) (*control.Plane, store.Store, *local.Provider) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close(); st.Close() })
	return control.New(control.Config{Store: st, Provider: prov}), st, prov
}

// TestCheckRegistryRefusesALostRegistry: a registry with no account over a
// provider that holds accounts (state.db lost or replaced) is refused with
// the way to restore; an empty registry over an empty provider (a new
// installation) and the registry that made the accounts are accepted.
func TestCheckRegistryRefusesALostRegistry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, st, _ := planeOn(t, dir, "state.db")
	if err := p.CheckRegistry(ctx, "state.db"); err != nil {
		t.Fatalf("new installation: CheckRegistry = %v, want nil", err)
	}
	if err := p.SetCurrent(ctx, release(t, st, nil)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "globex"} {
		if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.CheckRegistry(ctx, "state.db"); err != nil {
		t.Fatalf("the registry that made the accounts: CheckRegistry = %v, want nil", err)
	}
	lost, _, _ := planeOn(t, dir, "state-new.db")
	err := lost.CheckRegistry(ctx, "state-new.db")
	if silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(err.Error(), "acme") || !strings.Contains(err.Error(), "restore state-new.db") {
		t.Fatalf("lost registry: CheckRegistry = %v, want a failed check naming the accounts and the restore", err)
	}
	orphans, _, err := lost.Orphans(ctx)
	if err != nil || len(orphans) != 3 { // acme, globex, production
		t.Fatalf("Orphans = %v, %v; want acme, globex and production", orphans, err)
	}
	if orphans, _, err := p.Orphans(ctx); err != nil || len(orphans) != 0 {
		t.Fatalf("Orphans of the full registry = %v, %v; want none", orphans, err)
	}
}

// TestResumeFinishesInterruptedOnboarding: an account whose creation was
// cut off after its registry row and intents were written (by a process
// that is gone) is shown by every command as provisioning with what to do,
// and Recover then Resume finish it: it is created in the provider, gets
// its release and becomes active. An account created normally is the twin.
func TestResumeFinishesInterruptedOnboarding(t *testing.T) {
	ctx := context.Background()
	p, st, prov := planeOn(t, t.TempDir(), "state.db")
	if err := p.SetCurrent(ctx, release(t, st, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-time.Hour)
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateAccount(silo.Account{ID: "t8", Kind: silo.KindTenant, State: silo.StateProvisioning, Created: long, Updated: long, Version: 1}); err != nil {
			return err
		}
		_, err := tx.AddIntent(store.Intent{Key: "create-account/t8/elsewhere~4242~x", Account: "t8", Action: "create-account", State: store.IntentPending, Created: long, Updated: long})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	d, err := p.Show(ctx, "t8")
	if err != nil || d.Account.State != silo.StateProvisioning || len(d.Problems) == 0 || !strings.Contains(d.Problems[0].Fix, "silo apply t8") {
		t.Fatalf("Show(t8) = %+v, %v; want it provisioning, with the command that finishes it", d.Problems, err)
	}
	if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "t8"}); !errors.Is(err, silo.ErrConflict) || !strings.Contains(err.Error(), "silo apply t8") {
		t.Fatalf("creating t8 again: %v, want a conflict saying how to finish it", err)
	}
	if rep, err := p.Resume(ctx); err != nil || len(rep.Resumed) != 0 {
		t.Fatalf("Resume while the intent is pending = %+v, %v; want nothing resumed", rep, err)
	}

	if _, err := p.Engine.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := p.Resume(ctx)
	if err != nil || len(rep.Resumed) != 1 || rep.Resumed[0] != "t8" {
		t.Fatalf("Resume = %+v, %v; want t8 resumed", rep, err)
	}
	for _, id := range []silo.AccountID{"acme", "t8"} {
		a, err := p.Account(ctx, id)
		if err != nil || a.State != silo.StateActive || a.Release == "" {
			t.Errorf("%s after Resume: %+v, %v; want active on a release", id, a, err)
		}
		if _, err := prov.Resources(ctx, id); err != nil {
			t.Errorf("%s in the provider: %v", id, err)
		}
		if d, err := p.Show(ctx, id); err != nil || len(d.Problems) != 0 {
			t.Errorf("Show(%s) = %+v, %v; want no problem", id, d.Problems, err)
		}
	}
}

// TestAccountProblemsNameDamage: an account whose resources.json is
// damaged is reported with the file, and the other account has no
// problem.
func TestAccountProblemsNameDamage(t *testing.T) {
	ctx := context.Background()
	p, _, dir := acmeAndGlobex(t)
	if err := os.WriteFile(filepath.Join(localtest.AccountDir(dir, "acme"), "resources.json"), []byte(`{"table/t": {"ty`), 0o600); err != nil {
		t.Fatal(err)
	}
	acme, _ := p.Account(ctx, "acme")
	globex, _ := p.Account(ctx, "globex")
	if probs := p.AccountProblems(ctx, acme); len(probs) == 0 || !strings.Contains(probs[0].Problem, "resources.json") {
		t.Errorf("AccountProblems(acme) = %v, want the damaged resources.json", probs)
	}
	if probs := p.AccountProblems(ctx, globex); len(probs) != 0 {
		t.Errorf("AccountProblems(globex) = %v, want none", probs)
	}
}

// TestAccountProblemsNameADeletedStore: an account whose table store was
// deleted (its stack has tables) is reported, by what silo doctor and silo
// drift both run, with the file, that it is missing and the restore from a
// backup; the other account, whose store is there, has no problem.
func TestAccountProblemsNameADeletedStore(t *testing.T) {
	ctx := context.Background()
	p, _, dir := acmeAndGlobex(t)
	if err := os.Remove(filepath.Join(localtest.AccountDir(dir, "acme"), "data.db")); err != nil {
		t.Fatal(err)
	}
	acme, _ := p.Account(ctx, "acme")
	globex, _ := p.Account(ctx, "globex")
	probs := p.AccountProblems(ctx, acme)
	if len(probs) != 1 {
		t.Fatalf("AccountProblems(acme) = %v, want one problem", probs)
	}
	for _, want := range []string{"data.db", "missing", "restore it from a backup", "docs/operations.md"} {
		if !strings.Contains(probs[0].String(), want) {
			t.Errorf("AccountProblems(acme) = %q, want it to say %q", probs[0], want)
		}
	}
	if probs := p.AccountProblems(ctx, globex); len(probs) != 0 {
		t.Errorf("AccountProblems(globex) = %v, want none", probs)
	}
}

const killEnv = "SILO_TEST_KILL_MID_CREATE"

// TestKillMidCreateChild is the child of TestKillMidCreate: it creates
// tenant t8 and SIGKILLs itself at the step boundary named in the
// environment.
func TestKillMidCreateChild(t *testing.T) {
	v := os.Getenv(killEnv)
	if v == "" {
		t.Skip("run by TestKillMidCreate")
	}
	point, dir, _ := strings.Cut(v, "|")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	ws := isolation.WithWitness(st, filepath.Join(dir, isolation.WitnessFile))
	p := control.New(control.Config{Store: ws, Provider: prov, Hook: func(s engine.Step) {
		if s.Account == "t8" && s.Point == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}})
	_, err = p.CreateAccount(ctx, control.CreateRequest{ID: "t8", WithKey: true})
	t.Fatalf("CreateAccount returned (%v); the hook should have killed the process at %s", err, point)
}

// TestKillMidCreate kills a process creating tenant t8 at each step
// boundary of the onboarding (after the registry row and intents commit;
// after the provider created the account), then
// opens the data dir as the next process would: every view agrees that t8
// exists and is provisioning, with the command that finishes it, and
// recovery (Recover, then Resume, as silo server does at start) finishes it
// without anyone running a command: t8 is active on the current release,
// held by the provider with its resources, and gets a key. acme, created
// before, is untouched (the twin).
func TestKillMidCreate(t *testing.T) {
	for _, point := range []string{"journaled", "provider"} {
		t.Run(point, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			p, st, prov := planeOn(t, dir, "state.db")
			if err := p.SetCurrent(ctx, release(t, st, nil)); err != nil {
				t.Fatal(err)
			}
			if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
				t.Fatal(err)
			}
			witness := filepath.Join(dir, isolation.WitnessFile)
			if _, err := isolation.StartWitness(ctx, st, witness); err != nil {
				t.Fatal(err)
			}
			prov.Close()
			st.Close()

			cmd := exec.Command(os.Args[0], "-test.run=^TestKillMidCreateChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), killEnv+"="+point+"|"+dir)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v, want killed by SIGKILL\n%s", err, out)
			}

			p, st, prov = planeOn(t, dir, "state.db")
			// The onboarding's witness write waits for its second commit:
			// killed before it, the witness is behind the log, which verifies.
			if res, err := isolation.VerifyAudit(ctx, st, witness); err != nil || res.Witness == nil || res.Witness.Seq >= res.Head.Seq {
				t.Fatalf("VerifyAudit after the kill: %+v, %v; want the log accepted with the witness behind it", res, err)
			}
			a, err := p.Account(ctx, "t8")
			if err != nil || a.State != silo.StateProvisioning {
				t.Fatalf("t8 after the kill: %+v, %v; want provisioning", a, err)
			}
			if d, err := p.Show(ctx, "t8"); err != nil || len(d.Problems) == 0 || !strings.Contains(d.Problems[0].Fix, "silo apply t8") {
				t.Fatalf("Show(t8) = %+v, %v; want it shown with how to finish it", d.Problems, err)
			}
			if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "t8"}); !strings.Contains(silo.UserMessage(err), "silo apply t8") {
				t.Fatalf("create t8 again: %v; want a conflict saying how to finish it", err)
			}

			if _, err := p.Engine.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			rep, err := p.Resume(ctx)
			if err != nil || len(rep.Resumed) != 1 {
				t.Fatalf("Resume = %+v, %v; want t8 finished", rep, err)
			}
			for _, id := range []silo.AccountID{"acme", "t8"} {
				a, err := p.Account(ctx, id)
				if err != nil || a.State != silo.StateActive || a.Release == "" {
					t.Errorf("%s: %+v, %v; want active on a release", id, a, err)
				}
				if rs, err := prov.Resources(ctx, id); err != nil || len(rs) == 0 {
					t.Errorf("%s in the provider: %v, %v; want its resources", id, rs, err)
				}
				if d, err := p.Show(ctx, id); err != nil || len(d.Problems) != 0 {
					t.Errorf("Show(%s) problems = %v, %v; want none", id, d.Problems, err)
				}
			}
			if _, _, err := p.IssueKey(ctx, "t8", "default"); err != nil {
				t.Errorf("IssueKey(t8): %v", err)
			}
		})
	}
}

// TestRecoverGoesOnPastAnUnreadableAccount: with changes of acme and
// globex left pending by a process that is gone and acme's resource
// manifest damaged, recovery does not stop: globex's change is reconciled
// (the provider had not made it: marked failed for the next plan), acme's
// stays pending until acme is repaired, and the platform can start.
func TestRecoverGoesOnPastAnUnreadableAccount(t *testing.T) {
	ctx := context.Background()
	p, st, dir := acmeAndGlobex(t)
	long := time.Now().Add(-time.Hour)
	res, err := silo.NewResource(silo.TypeTable, "t2", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(ctx, func(tx store.Tx) error {
		for _, id := range []silo.AccountID{"acme", "globex"} {
			c := silo.Change{Op: silo.OpCreate, Type: res.Type, Name: res.Name, Desired: &res}
			if _, err := tx.AddIntent(store.Intent{Key: "apply/" + string(id) + "/v2/elsewhere~4242~x/" + c.Key(), Account: id, Action: "apply", Change: &c, State: store.IntentPending, Created: long, Updated: long}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(localtest.AccountDir(dir, "acme"), "resources.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := p.Engine.Recover(ctx)
	if err != nil || rep.Abandoned != 1 || rep.Skipped != 1 {
		t.Fatalf("Recover = %+v, %v; want globex's change settled and acme's skipped", rep, err)
	}
	var pending []store.Intent
	if err := st.View(ctx, func(tx store.Tx) error { var err error; pending, err = tx.PendingIntents(); return err }); err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Account != "acme" {
		t.Fatalf("pending after Recover: %+v; want acme's change only", pending)
	}
}

// TestUnfinishedOnboardingFix: an onboarding that did not finish is
// reported with what to run; rolling it back by deleting the account is
// offered for a tenant, never for the production account, which cannot be
// deleted.
func TestUnfinishedOnboardingFix(t *testing.T) {
	p, _, _ := planeOn(t, t.TempDir(), "state.db")
	for _, tc := range []struct {
		acct       silo.Account
		wantDelete bool
	}{
		{silo.Account{ID: "acme", Kind: silo.KindTenant, State: silo.StateProvisioning}, true},
		{silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction, State: silo.StateProvisioning}, false},
	} {
		probs := p.AccountProblems(context.Background(), tc.acct)
		if len(probs) == 0 || !strings.Contains(probs[0].Problem, "onboarding did not finish") {
			t.Fatalf("AccountProblems(%s) = %v, want the unfinished onboarding first", tc.acct.ID, probs)
		}
		fix := probs[0].Fix
		if !strings.Contains(fix, "silo apply "+string(tc.acct.ID)) {
			t.Errorf("%s: fix %q does not say silo apply", tc.acct.ID, fix)
		}
		if got := strings.Contains(fix, "silo tenant delete"); got != tc.wantDelete {
			t.Errorf("%s: fix %q offers silo tenant delete: %v, want %v", tc.acct.ID, fix, got, tc.wantDelete)
		}
	}
}

// acmeAndGlobex returns a plane on a fresh data dir, its store and the
// dir, with tenants acme and globex on a current release.
func acmeAndGlobex(t *testing.T) (*control.Plane, store.Store, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	p, st, _ := planeOn(t, dir, "state.db")
	if err := p.SetCurrent(ctx, release(t, st, nil)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "globex"} {
		if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	return p, st, dir
}
