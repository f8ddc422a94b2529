package rollout_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
)

// advice finds the command a refusal tells the operator to run instead:
// a rollback of a named rollout, or a rollout of a named release.
var advice = regexp.MustCompile(`silo (?:rollout rollback (ro-\d+)|deploy --release (r-[0-9a-f]+)( --retry-failed)?)`)

// refusedWithAdvice checks that err refuses with code, changing no
// rollout, and that the one command it advises starts and succeeds; it
// returns the rollout that command ran.
func refusedWithAdvice(t *testing.T, e *env, step string, err error, code silo.Code, says ...string) rollout.Rollout {
	t.Helper()
	ctx := context.Background()
	msg := silo.UserMessage(err)
	if silo.ErrorCode(err) != code {
		t.Fatalf("%s = %v, want %s", step, err, code)
	}
	for _, s := range says {
		if !strings.Contains(msg, s) {
			t.Errorf("%s: %q does not say %q", step, msg, s)
		}
	}
	ms := advice.FindAllStringSubmatch(msg, -1)
	if len(ms) != 1 {
		t.Fatalf("%s: %q advises %d commands, want 1", step, msg, len(ms))
	}
	m := ms[0]
	if m[1] != "" {
		return succeeds(t, e)(e.run.Rollback(ctx, m[1], rollout.Options{}))
	}
	return succeeds(t, e)(e.run.Start(ctx, m[2], rollout.Options{RetryFailed: m[3] != ""}))
}

// marked returns the IDs of the rollouts List marks CanRollBack.
func marked(t *testing.T, e *env) []string {
	t.Helper()
	rs, err := e.run.List(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		if r.CanRollBack {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// onRelease fails the test unless every account runs rel.
func onRelease(t *testing.T, e *env, step string, rel engine.Release) {
	t.Helper()
	for acct, got := range releases(t, e) {
		if got != rel.ID {
			t.Errorf("%s: %s on %s, want %s", step, acct, got, rel.ID)
		}
	}
}

// A rollout whose gates returned every account it moved does not keep the
// rollout before it from being rolled back; and no refusal advises a
// command that would be refused: each advises one command, which starts
// and succeeds. List marks CanRollBack on exactly the rollout a rollback
// may undo, none when a rollback is the latest.
func TestRollbackAdviceStarts(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, fmtStack("", "0"), 6, 2, "sha256:1111", "sha256:2222", "sha256:3333", "sha256:4444")
	e, v1, v2, v3, v4 := f.env, f.rels[0], f.rels[1], f.rels[2], f.rels[3]
	f.behave[v3.ID] = bad // fails its canary gates
	f.traffic(t, 200)
	r1 := startRollout(t, e, v2, rollout.Options{}, rollout.StateSucceeded)
	r2 := startRollout(t, e, v3, rollout.Options{}, rollout.StateFailed)
	onRelease(t, e, "after the gates rolled back", v2)
	if diff := cmp.Diff([]string{r1.ID}, marked(t, e)); diff != "" {
		t.Errorf("rollouts marked CanRollBack after the failed one (-want +got):\n%s", diff)
	}

	// The failed rollout has nothing to roll back, and the rollout before
	// it rolls back: the advice.
	_, err := e.run.Rollback(ctx, r2.ID, rollout.Options{})
	rb := refusedWithAdvice(t, e, "Rollback of the failed rollout", err, silo.CodeConflict, r2.ID+" failed", "nothing to roll back", "silo rollout rollback "+r1.ID)
	if rb.RollbackOf != r1.ID {
		t.Errorf("the advised command rolled back %q, want %s", rb.RollbackOf, r1.ID)
	}
	onRelease(t, e, "after rolling back past the failed rollout", v1)
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1})

	// Rolled back already: no command to run.
	_, err = e.run.Rollback(ctx, r1.ID, rollout.Options{})
	if msg := silo.UserMessage(err); silo.ErrorCode(err) != silo.CodeConflict || !strings.Contains(msg, "rolled back already, by "+rb.ID) || advice.MatchString(msg) {
		t.Errorf("Rollback of a rolled-back rollout = %v; want a conflict naming %s and no command", err, rb.ID)
	}
	if ids := marked(t, e); len(ids) != 0 {
		t.Errorf("rollouts marked CanRollBack when a rollback is the latest: %v, want none", ids)
	}

	// A rollback is not rolled back: the advice ships the release it undid
	// anew, through the gates.
	_, err = e.run.Rollback(ctx, rb.ID, rollout.Options{})
	r4 := refusedWithAdvice(t, e, "Rollback of a rollback", err, silo.CodeConflict, "is the rollback of "+r1.ID, "silo deploy --release "+v2.ID)
	if r4.Release != v2.ID || r4.RollbackOf != "" {
		t.Errorf("the advised command ran %+v, want a rollout of %s", r4, v2.ID)
	}
	onRelease(t, e, "after shipping the release again", v2)

	// Not the latest, and the latest is a rollback: the advice rolls the
	// release before it out anew.
	r5 := startRollout(t, e, v4, rollout.Options{}, rollout.StateSucceeded)
	succeeds(t, e)(e.run.Rollback(ctx, r5.ID, rollout.Options{}))
	_, err = e.run.Rollback(ctx, r4.ID, rollout.Options{})
	r7 := refusedWithAdvice(t, e, "Rollback under a rollback", err, silo.CodeConflict, r4.ID+" is not the latest", "cannot be rolled back", "silo deploy --release "+v1.ID)
	if r7.Release != v1.ID {
		t.Errorf("the advised command rolled out %s, want %s", r7.Release, v1.ID)
	}
	onRelease(t, e, "after rolling out the release before", v1)
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1})
	if diff := cmp.Diff([]string{r7.ID}, marked(t, e)); diff != "" {
		t.Errorf("rollouts marked CanRollBack at the end (-want +got):\n%s", diff)
	}
}

// A rollout that failed but left accounts on its release (a ring that
// keeps it, on_rollback: keep) is the one to roll back, and its rollback
// returns those; the twin, a failed rollout that returned every account,
// is refused (TestRollbackAdviceStarts, TestNoRollbackOfARollback).
func TestRollbackOfAFailedRolloutThatKeptAccounts(t *testing.T) {
	ctx := context.Background()
	src := replaceOnce(fmtStack("", "0"), "    - name: canary\n", "    - name: developers\n      select: {kind: developer}\n      on_rollback: keep\n    - name: canary\n")
	f := newFleet(t, src, 6, 2, "sha256:1111", "sha256:0de0", "sha256:2222")
	e, v1, own, v2 := f.env, f.rels[0], f.rels[1], f.rels[2]
	for id, rel := range map[silo.AccountID]engine.Release{"dev-root": v1, "dev-bob": own} {
		if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: id, Kind: silo.KindDeveloper}, rel); err != nil {
			t.Fatal(err)
		}
	}
	f.traffic(t, 200)
	f.behave[v2.ID] = bad
	r := startRollout(t, e, v2, rollout.Options{}, rollout.StateFailed)
	if got := releases(t, e); got["dev-root"] != v2.ID || got["dev-bob"] != v2.ID {
		t.Fatalf("developers after the failure: %v; want both kept on %s", got, v2.ID)
	}
	if diff := cmp.Diff([]string{r.ID}, marked(t, e)); diff != "" {
		t.Errorf("rollouts marked CanRollBack (-want +got):\n%s", diff)
	}
	rb := succeeds(t, e)(e.run.Rollback(ctx, r.ID, rollout.Options{}))
	want := map[silo.AccountID]string{silo.ProductionID: v1.ID, "dev-root": v1.ID, "dev-bob": own.ID}
	for i := 0; i < 6; i++ {
		want[tenant(i)] = v1.ID
	}
	if diff := cmp.Diff(want, releases(t, e)); diff != "" {
		t.Errorf("releases after the rollback (-want +got):\n%s", diff)
	}
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1, own.ID: own})

	// The rollback is not rolled back; v2 ships again only as a retry of
	// a failed release, which the advice confirms (and which passes its
	// gates now).
	f.behave[v2.ID] = good
	_, err := e.run.Rollback(ctx, rb.ID, rollout.Options{})
	refusedWithAdvice(t, e, "Rollback of the rollback", err, silo.CodeConflict, "silo deploy --release "+v2.ID+" --retry-failed")
	onRelease(t, e, "after the retry", v2)
}

// A developer account whose own build has the release ID the rollout
// ships (the same sources: releases are content-addressed) and that the
// rollout did not move stays on it when the rollout is rolled back,
// whether a ring selects developers (the rollout found it unchanged) or
// none does. The twin: a tenant created on that release since the
// rollout began goes back with the fleet.
func TestRollbackLeavesADeveloperOnItsOwnBuildOfTheSameRelease(t *testing.T) {
	withDevs := replaceOnce(fmtStack("", "0"), "    - name: canary\n", "    - name: developers\n      select: {kind: developer}\n    - name: canary\n")
	for _, tc := range []struct{ name, src string }{
		{"no ring selects developers", fmtStack("", "0")},
		{"a ring selects developers", withDevs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFleet(t, tc.src, 4, 1, "sha256:1111", "sha256:2222")
			e, v1, v2 := f.env, f.rels[0], f.rels[1]
			// silo dev: the developer's own build, of the sources deployed next.
			if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "dev-walker", Kind: silo.KindDeveloper}, v2); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Minute)
			f.traffic(t, 200)
			r := startRollout(t, e, v2, rollout.Options{}, rollout.StateSucceeded)
			if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "late", Kind: silo.KindTenant}, v2); err != nil {
				t.Fatal(err)
			}
			pv, err := e.run.PreviewRollback(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if pv.Accounts != 6 { // production, four tenants, late
				t.Errorf("preview plans %d accounts, want 6", pv.Accounts)
			}
			succeeds(t, e)(e.run.Rollback(ctx, r.ID, rollout.Options{}))
			want := map[silo.AccountID]string{silo.ProductionID: v1.ID, "dev-walker": v2.ID, "late": v1.ID}
			for i := 0; i < 4; i++ {
				want[tenant(i)] = v1.ID
			}
			if diff := cmp.Diff(want, releases(t, e)); diff != "" {
				t.Errorf("releases after the rollback (-want +got):\n%s", diff)
			}
			checkFleet(t, e, map[string]engine.Release{v1.ID: v1, v2.ID: v2})
		})
	}
}

// A failed rollout stands in the way of rolling back the one before it
// unless every account it moved went back: here as recorded, with one
// tenant's rollback step failed (the tenant still runs the failed release)
// or done. Failed, the advice rolls the failed rollout back, which returns
// that tenant; done, the rollout before rolls back.
func TestAFailedReturnKeepsTheFailedRolloutLatest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rollback store.IntentState // the tenant's rollback step
	}{
		{"a rollback step failed", store.IntentFailed},
		{"every rollback step done", store.IntentDone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFleet(t, fmtStack("", "0"), 4, 1, "sha256:1111", "sha256:2222", "sha256:3333")
			e, v1, v2, v3 := f.env, f.rels[0], f.rels[1], f.rels[2]
			f.traffic(t, 200)
			r1 := startRollout(t, e, v2, rollout.Options{}, rollout.StateSucceeded)
			// The failed rollout of v3, as its runner recorded it.
			acct := tenant(0)
			failed := store.Rollout{ID: "ro-000002", Release: v3.ID, Previous: v2.ID, State: string(rollout.StateFailed), Version: 1, Created: e.clock.Now(),
				Status: json.RawMessage(`{"reason":"ring everyone failed its gates","ring":2,"rings":[{"name":"production","phase":"rolled_back"},{"name":"canary","phase":"rolled_back"},{"name":"everyone","phase":"rolled_back"}]}`)}
			now := e.clock.Now()
			if err := e.store.Update(ctx, func(tx store.Tx) error {
				if err := tx.CreateRollout(failed); err != nil {
					return err
				}
				for step, state := range map[string]store.IntentState{"apply": store.IntentDone, "rollback": tc.rollback} {
					key := store.StepKey{Rollout: failed.ID, Ring: "everyone", Account: acct, Step: step}
					if err := tx.ClaimStep(store.RolloutStep{StepKey: key, Created: now, Updated: now}); err != nil {
						return err
					}
					if err := tx.FinishStep(key, state, ""); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if tc.rollback != store.IntentDone {
				moveTo(t, e, acct, v3)
			}
			rb, err := e.run.Rollback(ctx, r1.ID, rollout.Options{})
			if tc.rollback == store.IntentDone {
				succeeds(t, e)(rb, err)
				onRelease(t, e, "after the rollback past the failed rollout", v1)
				return
			}
			refusedWithAdvice(t, e, "Rollback past a failed rollout that left a tenant", err, silo.CodeConflict, r1.ID+" is not the latest", "silo rollout rollback "+failed.ID)
			onRelease(t, e, "after rolling back the failed rollout", v2)
		})
	}
}

// moveTo applies rel to one account, outside any rollout.
func moveTo(t *testing.T, e *env, id silo.AccountID, rel engine.Release) {
	t.Helper()
	ctx := context.Background()
	var a silo.Account
	if err := e.store.View(ctx, func(tx store.Tx) error {
		var err error
		a, err = tx.Account(id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p, err := e.eng.PlanAccount(ctx, a, rel)
	if err == nil {
		err = e.eng.Apply(ctx, p)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A first deploy has no release before it: a refusal to roll it back
// under a later rollback names no release to roll out (the must-not);
// the rollout after it, the latest that is not a rollback, rolled back
// (the must).
func TestRollbackOfAFirstDeployUnderARollback(t *testing.T) {
	ctx := context.Background()
	// No gates: a first deploy has no previous release to compare with.
	src := replaceOnce(fmtStack("", "0"), "      gates: {max_error_rate: 0.05, max_p99_increase: 0.5, min_requests: 100}\n", "")
	f := newReleases(t, src, "sha256:1111", "sha256:2222", "sha256:3333")
	e, v1, v2, v3 := f.env, f.rels[0], f.rels[1], f.rels[2]
	seedAccounts(t, e, v1, 4, 1)
	f.traffic(t, 200)
	r1 := startRollout(t, e, v2, rollout.Options{}, rollout.StateSucceeded)
	if r1.Previous != "" {
		t.Fatalf("first deploy's previous = %q, want none", r1.Previous)
	}
	r2 := startRollout(t, e, v3, rollout.Options{}, rollout.StateSucceeded)
	succeeds(t, e)(e.run.Rollback(ctx, r2.ID, rollout.Options{}))
	onRelease(t, e, "after the rollback", v2)
	_, err := e.run.Rollback(ctx, r1.ID, rollout.Options{})
	msg := silo.UserMessage(err)
	if silo.ErrorCode(err) != silo.CodeConflict || !strings.Contains(msg, "first deploy") || strings.Contains(msg, "silo deploy --release") || advice.MatchString(msg) {
		t.Errorf("Rollback(first deploy) under a rollback = %v; want a conflict saying first deploy, with no command", err)
	}
	onRelease(t, e, "after the refusal", v2)
}
