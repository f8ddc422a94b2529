package rollout_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
)

// A rollout its own gates rolled back cannot be rolled back again, and a
// rollback rollout cannot be rolled back into the release it undid: each
// refusal says what happened and what to do, starts no rollout and moves
// no account. A release whose latest rollout failed starts again only
// confirmed, and then through its gates. The twins: a rollout that
// succeeded is rolled back as before, and a good release starts unasked.
func TestNoRollbackOfARollback(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	src := fmtStack("", "0")
	v1 := release(t, e, src, "sha256:1111")
	v2 := release(t, e, src, "sha256:2222") // fails its canary gates
	v3 := release(t, e, src, "sha256:3333") // good
	seed(t, e, v1, 6, 2)
	traffic(t, e, 200, map[string]profile{v1.ID: good})
	behave := map[string]profile{v1.ID: good, v2.ID: bad, v3.ID: good}
	e.onBake = func(string) {
		traffic(t, e, 100, behave)
		e.clock.Advance(5 * time.Minute)
	}
	// fleet says every account runs on and the rollouts are n.
	fleet := func(step string, on engine.Release, n int) {
		t.Helper()
		for acct, rel := range releases(t, e) {
			if rel != on.ID {
				t.Errorf("%s: %s on %s, want %s", step, acct, rel, on.ID)
			}
		}
		if rs, err := e.run.List(ctx, 0); err != nil || len(rs) != n {
			t.Errorf("%s: %d rollouts (%v), want %d", step, len(rs), err, n)
		}
	}
	refused := func(step string, err error, code silo.Code, says ...string) {
		t.Helper()
		if silo.ErrorCode(err) != code {
			t.Fatalf("%s = %v, want %s", step, err, code)
		}
		for _, s := range says {
			if !strings.Contains(silo.UserMessage(err), s) {
				t.Errorf("%s: %q does not say %q", step, silo.UserMessage(err), s)
			}
		}
	}

	r1, err := e.run.Start(ctx, v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r1 = drive(t, e, r1.ID); r1.State != rollout.StateFailed {
		t.Fatalf("rollout of the bad release: %s (%s), want failed", r1.State, r1.Reason)
	}
	fleet("after the gates rolled back", v1, 1)

	// Rolled back by its gates: no second rollback, not in preview either.
	_, err = e.run.Rollback(ctx, r1.ID, rollout.Options{AllowDataLoss: true})
	refused("Rollback of the failed rollout", err, silo.CodeConflict, r1.ID+" failed", "failed its gates", "nothing to roll back", "silo deploy")
	_, err = e.run.PreviewRollback(ctx, r1.ID)
	refused("PreviewRollback of the failed rollout", err, silo.CodeConflict, "nothing to roll back")
	fleet("after the refused rollback", v1, 1)
	if got := get(t, e, r1.ID); got.State != rollout.StateFailed || got.RolledBackBy != "" {
		t.Errorf("failed rollout after the refusal: %s, rolled back by %q; want failed, by none", got.State, got.RolledBackBy)
	}

	// The failed release again: refused unless confirmed, with why.
	pv, err := e.run.PreviewStart(ctx, v2.ID)
	if err != nil || pv.Failure == nil || pv.Failure.Rollout != r1.ID || !strings.Contains(pv.Failure.Reason, "failed its gates") {
		t.Errorf("PreviewStart(failed release) = %+v, %v; want its failure in %s", pv.Failure, err, r1.ID)
	}
	_, err = e.run.Start(ctx, v2.ID, rollout.Options{AllowDataLoss: true})
	refused("Start of the failed release", err, silo.CodeFailedCheck, "failed in rollout "+r1.ID, "failed its gates", "--retry-failed", "retry_failed")
	fleet("after the refused start", v1, 1)
	// Confirmed, it goes through the gates again, which fail it again.
	r2, err := e.run.Start(ctx, v2.ID, rollout.Options{RetryFailed: true})
	if err != nil {
		t.Fatalf("Start(failed release, RetryFailed): %v", err)
	}
	if r2 = drive(t, e, r2.ID); r2.State != rollout.StateFailed || r2.Rings[1].Verdict == nil || r2.Rings[1].Verdict.Result != rollout.Fail {
		t.Fatalf("confirmed rollout of the bad release: %s (%s), want failed by the canary gates", r2.State, r2.Reason)
	}
	fleet("after the confirmed retry failed", v1, 2)

	// The twins: a good release starts unasked, and what succeeded is
	// rolled back.
	if pv, err := e.run.PreviewStart(ctx, v3.ID); err != nil || pv.Failure != nil {
		t.Errorf("PreviewStart(good release) = %+v, %v; want no failure", pv.Failure, err)
	}
	r3 := succeeds(t, e)(e.run.Start(ctx, v3.ID, rollout.Options{}))
	fleet("after the good release", v3, 3)
	r4 := succeeds(t, e)(e.run.Rollback(ctx, r3.ID, rollout.Options{}))
	fleet("after rolling back the good release", v1, 4)

	// A rollback is not rolled back: that would ship v3 ungated.
	_, err = e.run.Rollback(ctx, r4.ID, rollout.Options{AllowDataLoss: true})
	refused("Rollback of a rollback", err, silo.CodeConflict, r4.ID+" is the rollback of "+r3.ID, "release "+v3.ID, "without the gates", "silo deploy")
	_, err = e.run.PreviewRollback(ctx, r4.ID)
	refused("PreviewRollback of a rollback", err, silo.CodeConflict, "is the rollback of")
	fleet("after the refused rollback of a rollback", v1, 4)
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1})

	// Rolled back by hand, v3 did not fail: it starts again unasked.
	if _, err := e.run.Start(ctx, v3.ID, rollout.Options{}); err != nil {
		t.Errorf("Start(rolled back, not failed, release) = %v, want it started", err)
	}
}

// A release whose rollout failed and that an operator then made current
// and applied at once (silo apply --retry-failed) is not refused for that
// failure any more: its latest outcome is the success. A start of it says
// it is current on every account, and PreviewStart names no failure. The
// twins: before the apply it is refused; and once a rollout of it to the
// accounts that lag fails, its latest outcome is a failure again, and it
// is refused again.
func TestReleaseMadeCurrentAfterItsFailureShips(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	src := fmtStack("", "0")
	v1 := release(t, e, src, "sha256:1111")
	v2 := release(t, e, src, "sha256:2222") // fails its canary gates
	seed(t, e, v1, 4, 2)
	traffic(t, e, 200, map[string]profile{v1.ID: good})
	e.onBake = func(string) {
		traffic(t, e, 100, map[string]profile{v1.ID: good, v2.ID: bad})
		e.clock.Advance(5 * time.Minute)
	}
	r1, err := e.run.Start(ctx, v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r1 = drive(t, e, r1.ID); r1.State != rollout.StateFailed {
		t.Fatalf("rollout of the bad release: %s (%s), want failed", r1.State, r1.Reason)
	}
	if _, err := e.run.Start(ctx, v2.ID, rollout.Options{}); silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(silo.UserMessage(err), "failed in rollout "+r1.ID) {
		t.Fatalf("Start(release whose latest rollout failed) = %v, want failed_check naming %s", err, r1.ID)
	}

	// silo apply --all --retry-failed: current, and on every account.
	if err := e.store.Update(ctx, func(tx store.Tx) error { _, err := tx.SetCurrentRelease(v2.ID); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.ApplyFleet(ctx, v2, store.Filter{}, nil, func(r engine.FleetResult) {
		if r.Err != nil {
			t.Errorf("apply %s: %v", r.Plan.Account, r.Err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.run.Reship(ctx, v2.ID, false, "confirm it"); err != nil {
		t.Errorf("Reship(release made current since its rollout failed) = %v, want nil", err)
	}
	if pv, err := e.run.PreviewStart(ctx, v2.ID); err != nil || pv.Failure != nil {
		t.Errorf("PreviewStart = %+v, %v; want no failure", pv.Failure, err)
	}
	_, err = e.run.Start(ctx, v2.ID, rollout.Options{})
	if _, ok := errors.AsType[*rollout.UpToDate](err); !ok {
		t.Fatalf("Start(release made current since its rollout failed) = %v, want *UpToDate", err)
	}

	// An account that lags: its rollout fails; the release is refused again.
	if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "t-lag", Kind: silo.KindTenant, Params: map[string]string{"ring": "canary"}}, v1); err != nil {
		t.Fatal(err)
	}
	traffic(t, e, 200, map[string]profile{v1.ID: good, v2.ID: bad})
	r2, err := e.run.Start(ctx, v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r2 = drive(t, e, r2.ID); r2.State != rollout.StateFailed || r2.Previous != v2.ID {
		t.Fatalf("catch-up rollout: %s (%s) from %s, want failed from %s", r2.State, r2.Reason, r2.Previous, v2.ID)
	}
	if _, err := e.run.Start(ctx, v2.ID, rollout.Options{}); silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(silo.UserMessage(err), "failed in rollout "+r2.ID) {
		t.Errorf("Start after the failed catch-up = %v, want failed_check naming %s", err, r2.ID)
	}
}
