package rollout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/fanout"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// stepResult is the outcome of one pass over a ring's accounts.
type stepResult struct {
	members, unchanged, done, failed int
	failures                         []string
	applied                          []silo.AccountID
	stopped                          bool // the budget ran out, or the rollout stopped
}

// undoTargets returns, for accounts of a rollback rollout r of rollout
// orig, the release each returns to: the one returnTo names (orig undone,
// to r's release), or r's release for an account already on it (which
// the rollback then verifies); any other account is left alone: it is not
// in the map.
func undoTargets(tx store.Tx, r, orig Rollout, as []silo.Account) (map[silo.AccountID]string, error) {
	out := map[silo.AccountID]string{}
	for _, a := range as {
		to, ok, err := returnTo(tx, orig, a, r.Release)
		switch {
		case err != nil:
			return nil, err
		case ok:
			out[a.ID] = to
		case a.Release == r.Release:
			out[a.ID] = r.Release
		}
	}
	return out, nil
}

// stragglers returns the live accounts on orig's release that rollback
// rollout r of orig returns (returnTo) and that no step of r moved or
// failed to move: accounts whose onboarding chose orig's release before r
// was recorded (ReleaseFor places every later one on r's release) and
// that registered after the ring that selects them listed its accounts,
// or that no ring of r selects (rollbackRings left rest out). finish
// reads it in the transaction that would make r's release current.
func stragglers(tx store.Tx, r, orig Rollout) ([]silo.Account, error) {
	var out []silo.Account
	f := store.Filter{Limit: 1000}
	for {
		page, err := tx.Accounts(f)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		for _, a := range page {
			if a.Release != orig.Release || a.Release == r.Release || a.State == silo.StateDeleting || a.State == silo.StateDeleted {
				continue
			}
			to, ok, err := returnTo(tx, orig, a, r.Release)
			if err != nil {
				return nil, err
			}
			if !ok || to == a.Release {
				continue
			}
			stepped := false
			for _, ring := range r.Rings {
				if _, err := tx.Step(stepKey(r.ID, ring.Name, a.ID, "apply")); err == nil {
					stepped = true
					break
				} else if !errors.Is(err, silo.ErrNotFound) {
					return nil, err
				}
			}
			if !stepped {
				out = append(out, a)
			}
		}
		if len(page) < f.Limit {
			return out, nil
		}
		f.After = page[len(page)-1].ID
	}
}

// reopen sends rollback rollout r back to the first ring that selects one
// of the stragglers late, adding the last ring rest if no ring selects
// one (rollbackRings left it out), and returns that ring's index. The
// ring runs again: the accounts it moved keep their steps, and the
// stragglers are moved; the rings after it, promoted, stay so. It returns
// -1, changing nothing, when no ring can hold them.
func reopen(r *Rollout, st *spec.Stack, late []silo.Account) int {
	first := len(r.Rings)
	for _, a := range late {
		i := ringOf(r.Rings, st, a)
		if i < 0 {
			rest, ok := rollbackRest(stackRings(st))
			if !ok {
				continue // cannot be: a ring selects every account
			}
			rest.Phase = PhaseWaiting
			r.Rings = append(r.Rings, rest)
			i = len(r.Rings) - 1
		}
		first = min(first, i)
	}
	if first == len(r.Rings) {
		return -1
	}
	r.Ring = first
	r.Rings[first].Phase, r.Rings[first].Verdict = PhaseWaiting, nil
	return first
}

// returnTo is the one rule for which accounts an undo of rollout orig
// moves, and where: a failing ring's own rollback (rollingBack, back to
// orig's Previous) and an operator's rollback rollout (undoTargets, back
// to the release it ships) both ask it. It returns the release account a
// goes back to, prev unless orig's apply step recorded another one (the
// step's From: a ran another release than the fleet's), and ok:
//
//   - an account orig applied to (it holds an apply step of orig) goes
//     back;
//   - an account created since orig began that runs orig's release goes
//     back to prev: it got the release from orig (a new account in a ring
//     that has begun gets the rollout's release, ReleaseFor), or as the
//     current release after orig succeeded, never by choice;
//   - any other account stays (ok is false): among them one that ran
//     orig's release before orig began and that orig did not move, a
//     developer's own build of the same sources, which has the same
//     content-addressed release ID.
//
// # Notes
//
// An account's Created and orig's come from the clocks of the servers
// that created them; servers whose clocks differ by more than the time
// from orig's start to its first ring may misplace an account created in
// between. A developer account created after orig began and given a build
// of the same sources (silo dev) goes back too: its next build puts it on
// its own release again.
func returnTo(tx store.Tx, orig Rollout, a silo.Account, prev string) (string, bool, error) {
	for _, ring := range orig.Rings {
		st, err := tx.Step(stepKey(orig.ID, ring.Name, a.ID, "apply"))
		if errors.Is(err, silo.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		if st.From != "" {
			return st.From, true, nil
		}
		return prev, true, nil
	}
	if a.Release == orig.Release && !a.Created.Before(orig.Created) {
		return prev, true, nil
	}
	return "", false, nil
}

// pass runs one step over the accounts of ring i. "apply" moves each to
// rel (in a rollback rollout, each account to its undoTargets release);
// "rollback" visits only the accounts returnTo moves when r is undone
// (those with an apply claim, and those created on r's release since r
// began) and moves each back to the release it ran before the rollout
// (the apply step's From), rel when none is recorded.
func (rn *Runner) pass(ctx context.Context, r Rollout, i int, sel engine.Release, rel engine.Release, step string) (stepResult, error) {
	ring := r.Rings[i]
	var orig *Rollout
	if r.RollbackOf != "" && step == "apply" {
		o, err := rn.Get(ctx, r.RollbackOf)
		if err != nil {
			return stepResult{}, err
		}
		orig = &o
	}
	var (
		res    stepResult
		mu     sync.Mutex
		g      = fanout.New(ring.Concurrency)
		budget = ring.budget()
		stop   bool
		first  error
	)
	fail := func(id silo.AccountID, msg string) {
		res.failed++
		if len(res.failures) < maxFailures {
			res.failures = append(res.failures, fmt.Sprintf("%s: %s", id, msg))
		}
		if step == "apply" && res.failed > budget {
			stop = true
		}
	}
	lastCheck := time.Now()
	_, err := rn.members(ctx, r, i, sel.Stack, func(as []silo.Account) error {
		claims := map[silo.AccountID]store.RolloutStep{}
		from := map[silo.AccountID]string{} // where each account goes; in a rollback, only those it moves
		if err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			if orig != nil {
				var err error
				if from, err = undoTargets(tx, r, *orig, as); err != nil {
					return err
				}
			}
			for _, a := range as {
				if st, err := tx.Step(stepKey(r.ID, ring.Name, a.ID, step)); err == nil {
					claims[a.ID] = st
				} else if !errors.Is(err, silo.ErrNotFound) {
					return err
				}
				if step == "rollback" {
					to, ok, err := returnTo(tx, r, a, rel.ID)
					if err != nil {
						return err
					}
					if ok {
						from[a.ID] = to
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
		for _, a := range as {
			mu.Lock()
			res.members++
			halt, ferr := stop, first
			mu.Unlock()
			if ferr != nil {
				return ferr
			}
			if halt {
				return nil
			}
			if time.Since(lastCheck) > rn.cfg.Poll {
				lastCheck = time.Now()
				if cur, err := rn.Get(ctx, r.ID); err != nil || cur.State != StateRunning || cur.Owner != rn.cfg.Owner {
					mu.Lock()
					stop, res.stopped = true, true
					mu.Unlock()
					return nil
				}
			}
			to := rel
			_, moves := from[a.ID]
			switch {
			case orig != nil && !moves:
				mu.Lock()
				res.unchanged++ // not the rolled-back rollout's to undo
				mu.Unlock()
				continue
			case step == "rollback" && !moves:
				continue // the rollout neither moved it nor placed it on its release
			}
			if step == "rollback" || orig != nil {
				if id := from[a.ID]; id != "" && id != rel.ID {
					fr, err := rn.release(ctx, id)
					if err != nil {
						return fmt.Errorf("release %s of %s before rollout %s: %w", id, a.ID, r.ID, err)
					}
					to = fr
				}
			}
			in, claimed := claims[a.ID]
			if claimed && in.State != store.IntentPending {
				mu.Lock()
				if in.State == store.IntentDone {
					res.done++
					res.applied = append(res.applied, a.ID)
				} else {
					fail(a.ID, in.Error)
				}
				mu.Unlock()
				continue
			}
			// The plan that decides whether the account changes is the
			// one applied (once per account and pass); a claim taken over
			// is planned when it is applied.
			var plan *silo.Plan
			if !claimed {
				p, err := rn.cfg.Engine.PlanAccount(ctx, a, to)
				if err == nil && !p.Touches() {
					mu.Lock()
					res.unchanged++
					mu.Unlock()
					continue
				}
				if err == nil {
					plan = &p
				}
			}
			if err := g.Go(ctx, func() {
				ok, msg, err := rn.step(ctx, r, ring, a, to, step, claimed, plan)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					if first == nil {
						first = err
					}
				case ok:
					res.done++
					res.applied = append(res.applied, a.ID)
				default:
					fail(a.ID, msg)
				}
			}); err != nil {
				return err
			}
		}
		return nil
	})
	g.Wait()
	if err == nil {
		err = first
	}
	res.stopped = res.stopped || stop
	return res, err
}

// step claims, applies and finishes one account. It returns ok, or the
// failure message, or an error when the store failed (the step is then left
// to the next runner).
func (rn *Runner) step(ctx context.Context, r Rollout, ring RingStatus, a silo.Account, rel engine.Release, step string, claimed bool, plan *silo.Plan) (bool, string, error) {
	key := stepKey(r.ID, ring.Name, a.ID, step)
	if !claimed {
		now := rn.cfg.Clock.Now()
		claim := store.RolloutStep{StepKey: key, Created: now, Updated: now}
		if step == "apply" && a.Release != "" && a.Release != r.Previous {
			// The account ran another release than the fleet's: a
			// rollback returns it there, not to Previous.
			claim.From = a.Release
		}
		err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
			err := tx.ClaimStep(claim)
			if errors.Is(err, silo.ErrConflict) {
				// Claimed meanwhile by a runner that has since lost the
				// lease to us: take it over.
				return nil
			}
			return err
		})
		if err != nil {
			return false, "", fmt.Errorf("claim %s: %w", key, err)
		}
		rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Account: a.ID, Point: "claimed", Detail: step})
	}
	applyErr := rn.applyOne(ctx, a.ID, rel, plan)
	if applyErr == nil && step == "apply" && ring.Gates.Smoke != "" {
		if rn.cfg.Smoke == nil {
			applyErr = silo.Errorf(silo.CodeUnavailable, "ring %s names smoke function %q but no smoke runner is configured", ring.Name, ring.Gates.Smoke)
		} else if err := rn.cfg.Smoke.Smoke(ctx, a.ID, ring.Gates.Smoke); err != nil {
			applyErr = silo.Errorf(silo.CodeFailedCheck, "smoke function %s failed: %s", ring.Gates.Smoke, silo.UserMessage(err))
		}
	}
	if ctx.Err() != nil {
		return false, "", ctx.Err()
	}
	rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Account: a.ID, Point: "applied", Detail: step})
	state, msg := store.IntentDone, ""
	if applyErr != nil {
		state, msg = store.IntentFailed, silo.UserMessage(applyErr)
		if silo.ErrorCode(applyErr) == silo.CodeInternal {
			msg = applyErr.Error()
		}
	}
	if err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error { return tx.FinishStep(key, state, msg) }); err != nil {
		return false, "", fmt.Errorf("finish %s: %w", key, err)
	}
	rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Account: a.ID, Point: "finished", Detail: step})
	return applyErr == nil, msg, nil
}

// applyOne moves one account to rel: apply plan, made by the pass from
// recorded state (nil: plan it now). The plan carries the account's
// Version, so one made stale by a change since is a conflict, and so is
// what an interrupted earlier apply left (intents keyed by the Version): a
// conflict bumps the Version and plans again.
func (rn *Runner) applyOne(ctx context.Context, id silo.AccountID, rel engine.Release, plan *silo.Plan) error {
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		var p silo.Plan
		if plan != nil && attempt == 0 {
			p = *plan
		} else {
			var a silo.Account
			if err = rn.cfg.Store.View(ctx, func(tx store.Tx) error {
				var err error
				a, err = tx.Account(id)
				return err
			}); err != nil {
				return err
			}
			if p, err = rn.cfg.Engine.PlanAccount(ctx, a, rel); err != nil {
				return err
			}
		}
		if err = rn.cfg.Engine.Apply(ctx, p); err == nil || !errors.Is(err, silo.ErrConflict) {
			return err
		}
		if err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
			cur, err := tx.Account(id)
			if err != nil {
				return err
			}
			return tx.UpdateAccount(cur)
		}); err != nil {
			return err
		}
	}
	return err
}
