package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/fanout"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

func (rn *Runner) drive(ctx context.Context, id string) error {
	for {
		r, err := rn.Get(ctx, id)
		if err != nil {
			return err
		}
		if r.State != StateRunning || r.Owner != rn.cfg.Owner {
			return nil
		}
		if r.RollbackOf != "" {
			if err := rn.waitFor(ctx, r.RollbackOf); err != nil {
				return err
			}
		}
		target, err := rn.release(ctx, r.Release)
		if err != nil {
			return err
		}
		if r.Ring >= len(r.Rings) {
			if err := rn.finish(ctx, r); err != nil {
				return err
			}
			continue // succeeded, or a ring rolls back (see finish)
		}
		i := r.Ring
		ring := r.Rings[i]
		switch ring.Phase {
		case PhaseWaiting:
			err = rn.begin(ctx, r, target)
		case PhaseApplying:
			err = rn.applying(ctx, r, target)
		case PhaseBaking:
			err = rn.baking(ctx, r, target)
		case PhaseVerifying:
			err = rn.verifying(ctx, r, target)
		case PhaseRollingBack:
			err = rn.rollingBack(ctx, r, target)
		default: // promoted or rolled back: move on
			_, err = rn.mutate(ctx, id, func(_ store.Tx, r *Rollout) error { r.Ring++; return nil })
		}
		if err != nil {
			return err
		}
	}
}

func (rn *Runner) setPhase(ctx context.Context, r Rollout, phase Phase, fn func(*RingStatus, *Rollout)) error {
	_, err := rn.mutate(ctx, r.ID, func(_ store.Tx, cur *Rollout) error {
		if cur.Ring != r.Ring {
			return errLost
		}
		ring := &cur.Rings[cur.Ring]
		if fn != nil {
			fn(ring, cur)
		}
		ring.Phase = phase
		return nil
	})
	if err == nil {
		rn.hook(Event{Rollout: r.ID, Ring: r.Rings[r.Ring].Name, Point: "phase", Detail: string(phase)})
	}
	return err
}

// snapshot sums the metrics the accounts served under release.
func (rn *Runner) snapshot(ids []silo.AccountID, release string) (Stats, error) {
	return rn.snapshotEach(ids, func(silo.AccountID) string { return release })
}

// snapshotEach is snapshot with each account's figures under the release
// releaseOf names for it.
func (rn *Runner) snapshotEach(ids []silo.AccountID, releaseOf func(silo.AccountID) string) (Stats, error) {
	var sum Stats
	if rn.cfg.Metrics == nil {
		return sum, silo.Errorf(silo.CodeUnavailable, "no metrics source is configured")
	}
	for _, id := range ids {
		s, err := rn.cfg.Metrics.Snapshot(id, releaseOf(id))
		if err != nil {
			return sum, err
		}
		sum = sum.Add(s)
	}
	return sum, nil
}

func gated(g spec.Gates) bool { return g.MaxErrorRate > 0 || g.MaxP99Increase > 0 || g.MinRequests > 0 }

// begin counts the ring and measures the baseline of the accounts it will
// touch: what they served under the previous release, the current one when
// the rollout started (a release that a rollout promoted, or that the fleet
// was rolled back to). Requests served under any other release, such as a
// broken one that was rolled back, are not part of it. A rollout of the
// release that was current already (Previous is its Release: it moves the
// accounts that lag) measures each account under the release it runs, and
// records which those are (RingStatus.BaselineReleases); see baselineOf.
func (rn *Runner) begin(ctx context.Context, r Rollout, target engine.Release) error {
	ring := r.Rings[r.Ring]
	var touched []silo.AccountID
	ran := map[silo.AccountID]string{}
	n := 0
	unsel, err := rn.members(ctx, r, r.Ring, target.Stack, func(as []silo.Account) error {
		n += len(as)
		if !gated(ring.Gates) {
			return nil
		}
		for _, a := range as {
			p, err := rn.cfg.Engine.PlanAccount(ctx, a, target)
			if err == nil && p.Touches() {
				touched = append(touched, a.ID)
				ran[a.ID] = a.Release
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var base *Stats
	var from []string
	if gated(ring.Gates) && len(touched) > 0 {
		measured, releaseOf := baselineOf(r, touched, ran)
		if len(measured) > 0 {
			if s, err := rn.snapshotEach(measured, releaseOf); err == nil {
				base = &s
				from = releasesOf(measured, releaseOf)
			}
		}
	}
	return rn.setPhase(ctx, r, PhaseApplying, func(rs *RingStatus, cur *Rollout) {
		rs.Members, rs.Baseline, rs.BaselineReleases = n, base, from
		if r.Ring == 0 {
			cur.Unselected = unsel
		}
	})
}

// baselineOf returns the touched accounts whose figures make a ring's
// baseline, and the release each is measured under: the rollout's
// Previous, or, for a rollout of the release that was current already,
// the release each account ran (ran). An account whose baseline release
// would be the target itself, or none, is left out: a gate never compares
// a release with itself.
func baselineOf(r Rollout, touched []silo.AccountID, ran map[silo.AccountID]string) ([]silo.AccountID, func(silo.AccountID) string) {
	releaseOf := func(silo.AccountID) string { return r.Previous }
	if r.Previous == r.Release {
		releaseOf = func(id silo.AccountID) string { return ran[id] }
	}
	var out []silo.AccountID
	for _, id := range touched {
		if rel := releaseOf(id); rel != "" && rel != r.Release {
			out = append(out, id)
		}
	}
	return out, releaseOf
}

// releasesOf returns the releases ids are measured under, sorted, each
// once.
func releasesOf(ids []silo.AccountID, releaseOf func(silo.AccountID) string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, releaseOf(id))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (rn *Runner) applying(ctx context.Context, r Rollout, target engine.Release) error {
	res, err := rn.pass(ctx, r, r.Ring, target, target, "apply")
	if err != nil {
		return err
	}
	ring := r.Rings[r.Ring]
	if res.stopped && res.failed <= ring.budget() {
		return errLost // paused, aborted or lease lost
	}
	record := func(rs *RingStatus) {
		rs.Unchanged, rs.Applied, rs.Failed, rs.Failures = res.unchanged, res.done, res.failed, res.failures
	}
	if res.failed > ring.budget() {
		return rn.setPhase(ctx, r, PhaseRollingBack, func(rs *RingStatus, cur *Rollout) {
			record(rs)
			cur.Reason = fmt.Sprintf("ring %s: %d account(s) failed, over its failure budget of %d (%s)", ring.Name, res.failed, ring.budget(), strings.Join(res.failures, "; "))
		})
	}
	if len(res.applied) == 0 || (!gated(ring.Gates) && ring.Bake == 0) {
		return rn.setPhase(ctx, r, PhaseVerifying, func(rs *RingStatus, _ *Rollout) { record(rs) })
	}
	return rn.setPhase(ctx, r, PhaseBaking, func(rs *RingStatus, _ *Rollout) {
		record(rs)
		rs.BakeStart, rs.BakeUntil, rs.WindowStart = time.Time{}, time.Time{}, nil
	})
}

// applied lists the accounts of the ring whose apply claim is done.
func (rn *Runner) applied(ctx context.Context, r Rollout, target engine.Release) ([]silo.AccountID, error) {
	var out []silo.AccountID
	ring := r.Rings[r.Ring]
	_, err := rn.members(ctx, r, r.Ring, target.Stack, func(as []silo.Account) error {
		return rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			for _, a := range as {
				st, err := tx.Step(stepKey(r.ID, ring.Name, a.ID, "apply"))
				if err == nil && st.State == store.IntentDone {
					out = append(out, a.ID)
				} else if err != nil && !errors.Is(err, silo.ErrNotFound) {
					return err
				}
			}
			return nil
		})
	})
	return out, err
}

func (rn *Runner) baking(ctx context.Context, r Rollout, target engine.Release) error {
	ring := r.Rings[r.Ring]
	if ring.BakeStart.IsZero() {
		ids, err := rn.applied(ctx, r, target)
		if err != nil {
			return err
		}
		var ws *Stats
		if gated(ring.Gates) {
			if s, err := rn.snapshot(ids, target.ID); err == nil {
				ws = &s
			}
		}
		now := rn.cfg.Clock.Now().UTC()
		return rn.setPhase(ctx, r, PhaseBaking, func(rs *RingStatus, _ *Rollout) {
			rs.BakeStart, rs.BakeUntil, rs.WindowStart, rs.Verdict = now, now.Add(ring.Bake), ws, nil
		})
	}
	rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Point: "bake"})
	judged := ring.BakeStart
	for {
		now := rn.cfg.Clock.Now()
		if !now.Before(ring.BakeUntil) {
			break
		}
		next := now.Add(rn.cfg.Poll)
		if next.After(ring.BakeUntil) {
			next = ring.BakeUntil
		}
		wctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-rn.wake:
				cancel()
			case <-wctx.Done():
			}
		}()
		err := rn.cfg.Clock.Until(wctx, next)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err
		cur, err := rn.Get(ctx, r.ID)
		if err != nil {
			return err
		}
		if cur.State != StateRunning || cur.Owner != rn.cfg.Owner {
			return errLost
		}
		if now := rn.cfg.Clock.Now(); now.Before(ring.BakeUntil) && now.Sub(judged) >= gateEvery && gated(ring.Gates) && ring.WindowStart != nil {
			judged = now
			v, ok := rn.judgeEarly(ctx, r, target, now)
			rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Point: "gates", Detail: map[bool]string{true: Fail, false: "baking"}[ok]})
			if ok {
				rn.cfg.Logger.Info("ring verdict", "rollout", r.ID, "ring", ring.Name, "result", v.Result, "reason", v.Reason)
				return rn.setPhase(ctx, r, PhaseRollingBack, func(rs *RingStatus, cur *Rollout) {
					rs.Verdict = &v
					cur.Reason = fmt.Sprintf("ring %s failed its gates during the bake: %s", ring.Name, v.Reason)
				})
			}
		}
	}
	return rn.setPhase(ctx, r, PhaseVerifying, nil)
}

// gateEvery is how often a baking ring's gates are read before its bake
// ends, on the runner's clock: a ring whose gates are failed with
// certainty fails then (failsEarly).
const gateEvery = 5 * time.Second

// judgeEarly reads the gates of r's baking ring at now on what its
// accounts served since the bake began (see failsEarly). Metrics that
// cannot be read judge nothing: the end of the bake reads them again.
func (rn *Runner) judgeEarly(ctx context.Context, r Rollout, target engine.Release, now time.Time) (Verdict, bool) {
	ring := r.Rings[r.Ring]
	ids, err := rn.applied(ctx, r, target)
	if err != nil {
		return Verdict{}, false
	}
	end, err := rn.snapshot(ids, target.ID)
	if err != nil {
		return Verdict{}, false
	}
	v, ok := failsEarly(ring.Gates, ring.Baseline, end.Sub(*ring.WindowStart), now.Sub(ring.BakeStart), ring.BakeUntil.Sub(now))
	if ok && ring.Baseline != nil {
		v.PrevRelease, v.PrevReleases = prevReleases(ring)
	}
	return v, ok
}

func (rn *Runner) verifying(ctx context.Context, r Rollout, target engine.Release) error {
	ring := r.Rings[r.Ring]
	v := Verdict{Result: Pass, Reason: "no account changed"}
	if ring.Applied > 0 {
		ids, err := rn.applied(ctx, r, target)
		if err != nil {
			return err
		}
		var win Stats
		var merr error
		if gated(ring.Gates) {
			if ring.WindowStart == nil {
				merr = silo.Errorf(silo.CodeUnavailable, "no snapshot at the start of the bake")
			} else if end, err := rn.snapshot(ids, target.ID); err != nil {
				merr = err
			} else {
				win = end.Sub(*ring.WindowStart)
			}
		}
		v = evaluate(ring.Gates, ring.Baseline, win, merr)
		if ring.Baseline != nil && len(v.Judged) > 0 {
			v.PrevRelease, v.PrevReleases = prevReleases(ring)
		}
	}
	if v.Result == Pass {
		if bad, err := rn.verifyLive(ctx, r, target); err != nil {
			return err
		} else if len(bad) > 0 {
			v = Verdict{Result: Fail, Reason: fmt.Sprintf("%d account(s) do not run release %s live: %s", len(bad), target.ID, strings.Join(bad[:min(len(bad), maxFailures)], "; "))}
		}
	}
	rn.cfg.Logger.Info("ring verdict", "rollout", r.ID, "ring", ring.Name, "result", v.Result, "reason", v.Reason)
	switch {
	case v.Result == Pass:
		return rn.setPhase(ctx, r, PhasePromoted, func(rs *RingStatus, cur *Rollout) { rs.Verdict = &v; cur.Ring++ })
	case v.Result == Inconclusive && ring.Gates.OnInconclusive != spec.OnInconclusiveRollback:
		// Pause: never pass on too little data. Resume bakes again.
		_, err := rn.mutate(ctx, r.ID, func(_ store.Tx, cur *Rollout) error {
			rs := &cur.Rings[cur.Ring]
			rs.Verdict, rs.Phase = &v, PhaseBaking
			rs.BakeStart, rs.BakeUntil, rs.WindowStart = time.Time{}, time.Time{}, nil
			cur.State, cur.Reason = StatePaused, fmt.Sprintf("ring %s is inconclusive: %s; resume to bake again, or roll back", ring.Name, v.Reason)
			return nil
		})
		if err == nil {
			rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Point: "state", Detail: string(StatePaused)})
		}
		return err
	default:
		return rn.setPhase(ctx, r, PhaseRollingBack, func(rs *RingStatus, cur *Rollout) {
			rs.Verdict = &v
			cur.Reason = fmt.Sprintf("ring %s failed its gates: %s", ring.Name, v.Reason)
		})
	}
}

// strays lists the accounts of r's rings, all promoted, that the registry
// no longer says run r's release, leaving out those whose apply step
// failed (within a ring's budget): an account moved after its ring was
// verified. One read of the registry; no provider call.
func (rn *Runner) strays(ctx context.Context, r Rollout) ([]string, error) {
	target, err := rn.release(ctx, r.Release)
	if err != nil {
		return nil, err
	}
	var bad []string
	err = rn.cfg.Store.View(ctx, func(tx store.Tx) error {
		f := store.Filter{Limit: 1000}
		for {
			page, err := tx.Accounts(f)
			if err != nil {
				return fmt.Errorf("list accounts: %w", err)
			}
			for _, a := range page {
				i := ringOf(r.Rings, target.Stack, a)
				if i < 0 || a.Release == r.Release || a.State == silo.StateDeleting || a.State == silo.StateDeleted {
					continue
				}
				st, err := tx.Step(stepKey(r.ID, r.Rings[i].Name, a.ID, "apply"))
				if err == nil && st.State == store.IntentFailed {
					continue
				}
				if err != nil && !errors.Is(err, silo.ErrNotFound) {
					return err
				}
				bad = append(bad, fmt.Sprintf("%s (ring %s) runs release %q", a.ID, r.Rings[i].Name, a.Release))
			}
			if len(page) < f.Limit {
				return nil
			}
			f.After = page[len(page)-1].ID
		}
	})
	return bad, err
}

// verifyLive checks, for every account of the ring that did not fail, that
// the provider holds exactly the resources of the target release, and that
// the registry says it runs it.
func (rn *Runner) verifyLive(ctx context.Context, r Rollout, target engine.Release) ([]string, error) {
	ring := r.Rings[r.Ring]
	var (
		mu  sync.Mutex
		bad []string
		g   = fanout.New(max(ring.Concurrency, 4))
	)
	failed := map[silo.AccountID]bool{}
	var orig *Rollout
	if r.RollbackOf != "" {
		o, err := rn.Get(ctx, r.RollbackOf)
		if err != nil {
			return nil, err
		}
		orig = &o
	}
	_, err := rn.members(ctx, r, r.Ring, target.Stack, func(as []silo.Account) error {
		var want map[silo.AccountID]string
		if err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			if orig != nil {
				var err error
				if want, err = undoTargets(tx, r, *orig, as); err != nil {
					return err
				}
			}
			for _, a := range as {
				st, err := tx.Step(stepKey(r.ID, ring.Name, a.ID, "apply"))
				if err == nil && st.State == store.IntentFailed {
					failed[a.ID] = true
				} else if err != nil && !errors.Is(err, silo.ErrNotFound) {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		for _, a := range as {
			if failed[a.ID] {
				continue
			}
			rel := target
			if orig != nil {
				id, ok := want[a.ID]
				if !ok {
					continue // left alone by the rollback
				}
				if id != target.ID {
					var err error
					if rel, err = rn.release(ctx, id); err != nil {
						return err
					}
				}
			}
			if err := g.Go(ctx, func() {
				if msg := rn.live(ctx, a, rel); msg != "" {
					mu.Lock()
					bad = append(bad, string(a.ID)+": "+msg)
					mu.Unlock()
				}
			}); err != nil {
				return err
			}
		}
		return nil
	})
	g.Wait()
	return bad, err
}

func (rn *Runner) live(ctx context.Context, a silo.Account, rel engine.Release) string {
	if a.Release != rel.ID {
		return fmt.Sprintf("registry says release %q", a.Release)
	}
	desired, err := engine.Desired(rel.Stack, rel.Artifacts, a)
	if err != nil {
		return silo.UserMessage(err)
	}
	held, err := rn.cfg.Provider.Resources(ctx, a.ID)
	if err != nil {
		return "cannot read live resources: " + silo.UserMessage(err)
	}
	if silo.SetHash(held) != silo.SetHash(desired) {
		return "live resources differ from the release"
	}
	return ""
}

// rollingBack returns every account the rollout applied to, in the failing
// ring and in every ring before it (production included) whose policy is
// not on_rollback: keep, to the release it ran before, newest ring first;
// then the rollout fails. A rollback rollout
// that fails is not itself rolled back: its accounts stay on the release it
// returns them to, or where they were.
func (rn *Runner) rollingBack(ctx context.Context, r Rollout, target engine.Release) error {
	ring := r.Rings[r.Ring]
	res := make([]stepResult, r.Ring+1)
	undo := r.Previous != "" && r.RollbackOf == ""
	if undo {
		prev, err := rn.release(ctx, r.Previous)
		if err != nil {
			return err
		}
		for i := r.Ring; i >= 0; i-- {
			if i < r.Ring && r.Rings[i].OnRollback == spec.OnRollbackKeep {
				continue
			}
			if res[i], err = rn.pass(ctx, r, i, target, prev, "rollback"); err != nil {
				return err
			}
			if res[i].stopped {
				return errLost
			}
		}
	}
	_, err := rn.mutate(ctx, r.ID, func(tx store.Tx, cur *Rollout) error {
		failed := 0
		for i := 0; i <= cur.Ring; i++ {
			rs := &cur.Rings[i]
			rs.RolledBack = res[i].done
			kept := i < cur.Ring && rs.OnRollback == spec.OnRollbackKeep
			switch {
			case i == cur.Ring && !undo:
				rs.Phase = PhaseStopped // nothing returned: accounts stay where they are
			case i == cur.Ring || (undo && !kept && rs.Phase == PhasePromoted):
				rs.Phase = PhaseRolledBack
			}
			if undo && kept && rs.Applied > 0 {
				cur.Reason += fmt.Sprintf("; ring %s keeps the new release (on_rollback: keep)", rs.Name)
			}
			if res[i].failed > 0 {
				failed += res[i].failed
				rs.Failures = append(rs.Failures, res[i].failures...)
			}
		}
		if failed > 0 {
			cur.Reason += fmt.Sprintf("; %d account(s) failed to roll back", failed)
		}
		switch {
		case r.RollbackOf != "":
			cur.Reason += "; a rollback is not rolled back: accounts stay where they are"
		case r.Previous == "":
			cur.Reason += "; nothing to roll back to (first deploy)"
		}
		cur.State = StateFailed
		detail, _ := json.Marshal(map[string]string{"rollout": r.ID, "ring": ring.Name, "reason": cur.Reason})
		_, err := tx.AppendAudit(store.AuditEvent{Time: rn.cfg.Clock.Now(), Actor: rn.cfg.Actor, Action: "rollout.fail", Detail: detail})
		return err
	})
	if err == nil {
		rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Point: "state", Detail: string(StateFailed)})
	}
	return err
}

func (rn *Runner) finish(ctx context.Context, r Rollout) error {
	if r.RollbackOf == "" && len(r.Rings) > 0 {
		bad, err := rn.strays(ctx, r)
		if err != nil {
			return err
		}
		if len(bad) > 0 {
			// Caught, as a ring's live verification would: the last ring
			// fails, and every ring returns its accounts.
			last := len(r.Rings) - 1
			_, err := rn.mutate(ctx, r.ID, func(_ store.Tx, cur *Rollout) error {
				cur.Ring = last
				cur.Rings[last].Phase = PhaseRollingBack
				cur.Reason = fmt.Sprintf("before succeeding, %d account(s) of promoted rings no longer run release %s: %s", len(bad), r.Release, strings.Join(bad[:min(len(bad), maxFailures)], "; "))
				return nil
			})
			return err
		}
	}
	target, err := rn.release(ctx, r.Release)
	if err != nil {
		return err
	}
	reopened := -1
	_, err = rn.mutate(ctx, r.ID, func(tx store.Tx, cur *Rollout) error {
		if cur.RollbackOf != "" {
			o, err := load(tx, cur.RollbackOf)
			if err != nil {
				return err
			}
			// Checked in the transaction that makes the release current,
			// after which every onboarding chooses it.
			late, err := stragglers(tx, *cur, o)
			if err != nil {
				return err
			}
			if reopened = reopen(cur, target.Stack, late); reopened >= 0 {
				return nil
			}
			o.State = StateRolledBack
			if err := save(tx, &o, rn.cfg.Clock.Now()); err != nil {
				return err
			}
		}
		cur.State, cur.Reason = StateSucceeded, ""
		if _, err := tx.SetCurrentRelease(cur.Release); err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]string{"rollout": r.ID, "release": r.Release, "previous": r.Previous})
		_, err := tx.AppendAudit(store.AuditEvent{Time: rn.cfg.Clock.Now(), Actor: rn.cfg.Actor, Action: "rollout.succeed", Detail: detail})
		return err
	})
	switch {
	case err != nil:
	case reopened >= 0:
		rn.cfg.Logger.Info("rollback ring reopened for accounts created on the rolled-back release", "rollout", r.ID, "ring", reopened)
	default:
		rn.hook(Event{Rollout: r.ID, Point: "state", Detail: string(StateSucceeded)})
	}
	return err
}
