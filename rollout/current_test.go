package rollout_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
)

// A rollout of the release every account runs already (a CI re-run of an
// unchanged deploy) records nothing and says so; the rollout before it
// stays the latest, and rolling it back still works. The twin: a changed
// release rolls out.
func TestRedeployOfCurrentReleaseRecordsNothing(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, fmtStack("", "0"), 4, 1, "sha256:1111", "sha256:2222")
	e, v1, v2 := f.env, f.rels[0], f.rels[1]
	f.traffic(t, 200)

	r1 := startRollout(t, e, v2, rollout.Options{}, rollout.StateSucceeded)
	if r1.Previous != v1.ID || r1.Release != v2.ID {
		t.Fatalf("first rollout %s → %s, want %s → %s", r1.Previous, r1.Release, v1.ID, v2.ID)
	}
	audit := auditCount(t, e)
	for _, opt := range []rollout.Options{{}, {AllowDataLoss: true}, {RetryFailed: true}} {
		r, err := e.run.Start(ctx, v2.ID, opt)
		u, ok := errors.AsType[*rollout.UpToDate](err)
		if !ok || r.ID != "" {
			t.Fatalf("Start(current release, %+v) = %+v, %v; want *UpToDate and no rollout", opt, r, err)
		}
		if want := "release " + v2.ID + " is already current on every account; nothing to roll out"; u.Error() != want || u.Accounts != 5 {
			t.Errorf("UpToDate = %q (%d accounts), want %q (5)", u.Error(), u.Accounts, want)
		}
	}
	if rs, err := e.run.List(ctx, 0); err != nil || len(rs) != 1 || rs[0].ID != r1.ID {
		t.Fatalf("rollouts after the re-deploys: %d (%v), want only %s", len(rs), err, r1.ID)
	}
	if n := auditCount(t, e); n != audit {
		t.Errorf("audit entries %d after the re-deploys, want %d (nothing recorded)", n, audit)
	}

	// The operator's rollout is still the latest and rolls back.
	succeeds(t, e)(e.run.Rollback(ctx, r1.ID, rollout.Options{}))
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1})
	for acct, rel := range releases(t, e) {
		if rel != v1.ID {
			t.Errorf("%s on %s after the rollback, want %s", acct, rel, v1.ID)
		}
	}
}

// A rollout of the current release that some accounts do not run moves
// just those, and rolling it back returns just those; a rollout that moved
// no account (as a silo before UpToDate recorded one) is not rolled back,
// says which one can be, and does not keep that one from rolling back.
func TestRedeployMovesOnlyLaggingAccounts(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, fmtStack("", "0"), 4, 1, "sha256:1111", "sha256:2222")
	e, v1, v2 := f.env, f.rels[0], f.rels[1]
	f.traffic(t, 200)
	r1 := startRollout(t, e, v2, rollout.Options{}, rollout.StateSucceeded)

	// An account left on v1 (its step failed, say): the re-deploy is for it.
	lag := silo.AccountID("t-lag")
	if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: lag, Kind: silo.KindTenant, Params: map[string]string{"ring": "canary"}}, v1); err != nil {
		t.Fatal(err)
	}
	f.traffic(t, 200)
	r2 := startRollout(t, e, v2, rollout.Options{}, rollout.StateSucceeded)
	if r2.Previous != v2.ID {
		t.Errorf("catch-up rollout previous = %s, want %s", r2.Previous, v2.ID)
	}
	applied := 0
	for _, ring := range r2.Rings {
		applied += ring.Applied
	}
	if applied != 1 || releases(t, e)[lag] != v2.ID {
		t.Errorf("catch-up rollout applied %d account(s), %s on %s; want 1, %s on %s", applied, lag, releases(t, e)[lag], lag, v2.ID)
	}
	// It moved an account: it is the one to roll back, r1 is not.
	if _, err := e.run.Rollback(ctx, r1.ID, rollout.Options{}); silo.ErrorCode(err) != silo.CodeConflict || !strings.Contains(silo.UserMessage(err), "not the latest") {
		t.Errorf("Rollback(%s) under a catch-up rollout = %v, want not the latest", r1.ID, err)
	}
	succeeds(t, e)(e.run.Rollback(ctx, r2.ID, rollout.Options{}))
	for acct, rel := range releases(t, e) {
		want := v2.ID
		if acct == lag {
			want = v1.ID
		}
		if rel != want {
			t.Errorf("%s on %s after rolling back the catch-up, want %s", acct, rel, want)
		}
	}

	// A recorded rollout that moved nothing, newest.
	noop := store.Rollout{ID: "ro-000099", Release: v2.ID, Previous: v2.ID, State: string(rollout.StateSucceeded), Version: 1, Created: e.clock.Now()}
	if err := e.store.Update(ctx, func(tx store.Tx) error { return tx.CreateRollout(noop) }); err != nil {
		t.Fatal(err)
	}
	before := releases(t, e)
	_, err := e.run.Rollback(ctx, noop.ID, rollout.Options{AllowDataLoss: true})
	if silo.ErrorCode(err) != silo.CodeConflict {
		t.Fatalf("Rollback(no-op rollout) = %v, want conflict", err)
	}
	// The latest rollout that moved accounts is the rollback of r2, which
	// cannot be rolled back: the refusal names no rollback, but the way to
	// another release.
	for _, s := range []string{noop.ID + " moved no account", "nothing to roll back", "nothing was changed", "No rollout can be rolled back now", "silo deploy --release"} {
		if !strings.Contains(silo.UserMessage(err), s) {
			t.Errorf("refusal %q does not say %q", silo.UserMessage(err), s)
		}
	}
	if strings.Contains(silo.UserMessage(err), "silo rollout rollback") {
		t.Errorf("refusal %q names a rollback, and none would start", silo.UserMessage(err))
	}
	if _, err := e.run.PreviewRollback(ctx, noop.ID); silo.ErrorCode(err) != silo.CodeConflict {
		t.Errorf("PreviewRollback(no-op rollout) = %v, want conflict", err)
	}
	if got := releases(t, e); len(got) != len(before) {
		t.Errorf("accounts changed by the refused rollback")
	}
	if rs, _ := e.run.List(ctx, 1); len(rs) != 1 || rs[0].ID != noop.ID {
		t.Errorf("latest rollout after the refusal = %v, want %s (nothing started)", rs, noop.ID)
	}
}

// The twin of the refusal above on a fleet where the rollout before the
// no-op is the operator's: it rolls back past the no-op.
func TestRollbackPastANoOpRollout(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, fmtStack("", "0"), 4, 1, "sha256:1111", "sha256:2222")
	e, v1, v2 := f.env, f.rels[0], f.rels[1]
	f.traffic(t, 200)
	r1 := startRollout(t, e, v2, rollout.Options{}, rollout.StateSucceeded)
	noop := store.Rollout{ID: "ro-000002", Release: v2.ID, Previous: v2.ID, State: string(rollout.StateSucceeded), Version: 1, Created: e.clock.Now()}
	if err := e.store.Update(ctx, func(tx store.Tx) error { return tx.CreateRollout(noop) }); err != nil {
		t.Fatal(err)
	}
	_, err := e.run.Rollback(ctx, noop.ID, rollout.Options{})
	if want := "The latest rollout that moved accounts is " + r1.ID; !strings.Contains(silo.UserMessage(err), want) {
		t.Errorf("Rollback(no-op) = %v, want it to say %q", err, want)
	}
	succeeds(t, e)(e.run.Rollback(ctx, r1.ID, rollout.Options{}))
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1})
	for acct, rel := range releases(t, e) {
		if rel != v1.ID {
			t.Errorf("%s on %s after rolling back %s, want %s", acct, rel, r1.ID, v1.ID)
		}
	}
}

// auditCount counts the audit log's entries.
func auditCount(t *testing.T, e *env) int {
	t.Helper()
	var n int
	if err := e.store.View(context.Background(), func(tx store.Tx) error {
		es, err := tx.Audit(0, 0)
		n = len(es)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// A release that becomes current on every account while a Start of it
// plans (silo apply of it, say) is found up to date where the rollout is
// recorded: nothing is recorded. The twin is the first Start of the
// release above, which records its rollout.
func TestUpToDateCheckedWhereRecorded(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, fmtStack("", "0"), 3, 1, "sha256:1111", "sha256:2222")
	e, v2 := f.env, f.rels[1]
	var once sync.Once
	e.onPlan = func(silo.Account) {
		once.Do(func() {
			var as []silo.Account
			if err := e.store.View(ctx, func(tx store.Tx) error {
				var err error
				as, err = tx.Accounts(store.Filter{})
				return err
			}); err != nil {
				t.Error(err)
				return
			}
			for _, a := range as {
				p, err := e.eng.PlanAccount(ctx, a, v2)
				if err == nil {
					err = e.eng.Apply(ctx, p)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
			if err := e.store.Update(ctx, func(tx store.Tx) error { _, err := tx.SetCurrentRelease(v2.ID); return err }); err != nil {
				t.Error(err)
			}
		})
	}
	r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
	if _, ok := errors.AsType[*rollout.UpToDate](err); !ok {
		t.Fatalf("Start(release made current meanwhile) = %+v, %v; want *UpToDate", r, err)
	}
	if rs, err := e.run.List(ctx, 0); err != nil || len(rs) != 0 {
		t.Errorf("%d rollouts recorded (%v), want none", len(rs), err)
	}
}

// fleet is the set-up the rollout tests share: an env whose production
// account and tenants run the first of rels, the current release, and
// whose bakes send bakeN requests to every tenant, each behaving as
// behave says for the release it runs (good when it names none), and then
// end the bake.
type fleet struct {
	*env
	rels   []engine.Release
	behave map[string]profile
	bakeN  int
}

// newFleet stores a release of src per digest, seeds production and n
// tenants (the first canary of them in the canary ring) on the first, and
// makes it current. The bake sends 100 requests per tenant.
func newFleet(t *testing.T, src string, n, canary int, digests ...string) *fleet {
	t.Helper()
	f := newReleases(t, src, digests...)
	seed(t, f.env, f.rels[0], n, canary)
	return f
}

// newReleases is newFleet with no account and no current release.
func newReleases(t *testing.T, src string, digests ...string) *fleet {
	t.Helper()
	f := &fleet{env: newEnv(t, t.TempDir(), opts{}), behave: map[string]profile{}, bakeN: 100}
	for _, d := range digests {
		f.rels = append(f.rels, release(t, f.env, src, d))
	}
	f.onBake = func(string) {
		f.traffic(t, f.bakeN)
		f.clock.Advance(5 * time.Minute)
	}
	return f
}

// traffic sends n requests to every tenant, each behaving as f.behave
// says for the release it runs.
func (f *fleet) traffic(t *testing.T, n int) {
	t.Helper()
	by := map[string]profile{}
	for _, r := range f.rels {
		by[r.ID] = good
	}
	maps.Copy(by, f.behave)
	traffic(t, f.env, n, by)
}

// startRollout starts a rollout of rel, drives it until it stops and
// fails the test unless it ends in state want.
func startRollout(t *testing.T, e *env, rel engine.Release, opt rollout.Options, want rollout.State) rollout.Rollout {
	t.Helper()
	r, err := e.run.Start(context.Background(), rel.ID, opt)
	if err != nil {
		t.Fatalf("Start(%s) = %v", rel.ID, err)
	}
	if r = drive(t, e, r.ID); r.State != want {
		t.Fatalf("rollout %s of %s: %s (%s), want %s", r.ID, rel.ID, r.State, r.Reason, want)
	}
	return r
}
