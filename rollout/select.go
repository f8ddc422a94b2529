package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// ringsOf returns the rings of a rollout of a release with stack st: the
// production account first, then the stack's rings (or one ring
// "everyone"). A rollback rollout's rings have no bake and no gates, and
// end with a ring over every account the others leave out (see
// rollbackRest): the rollout it undoes moved accounts by its own rings,
// which st, the stack of the release it returns to, may not share.
func ringsOf(st *spec.Stack, rollback bool) []RingStatus {
	rings := []RingStatus{{Name: "production", Select: spec.Selector{Kind: silo.KindProduction, Percent: 100}, Concurrency: 1}}
	src := stackRings(st)
	for _, r := range src {
		rs := RingStatus{Name: r.Name, Select: r.Select, Concurrency: max(r.Concurrency, 1), Bake: r.Bake, Gates: r.Gates, Budget: r.FailureBudget, OnRollback: r.OnRollback}
		if rollback {
			// The release rolled back to was proven before: no bake and no
			// gates, but the same claims, budget and live verification.
			rs.Bake, rs.Gates = 0, spec.Gates{}
		}
		rings = append(rings, rs)
	}
	if rollback {
		if rest, ok := rollbackRest(src); ok {
			rings = append(rings, rest)
		}
	}
	for i := range rings {
		rings[i].Phase = PhaseWaiting
	}
	return rings
}

// stackRings returns the rings a rollout of a release with stack st
// declares after production: the stack's, or one ring "everyone".
func stackRings(st *spec.Stack) []spec.Ring {
	if len(st.Rollout.Rings) == 0 {
		return []spec.Ring{{Name: "everyone", Select: spec.Selector{Percent: 100}, Concurrency: spec.DefaultRingConcurrency}}
	}
	return st.Rollout.Rings
}

// rollbackRings returns the rings of rollback rollout r of rollout orig,
// where st is the stack of r's release: ringsOf(st, true), without the
// last ring rest when no live account it selects is one the rollback
// returns (returnTo), so that a rollback shows no ring with nothing to
// do. Accounts rest would have held then stay where they are, as every
// account no ring selects (Unselected).
//
// # Notes
//
// It reads the registry in tx, the transaction that records r: from its
// commit, ReleaseFor places every new account on r's release, so an
// account created later needs no ring to return it. One whose onboarding
// chose orig's release before that commit and registered it after is a
// straggler that finish returns before r succeeds (see stragglers).
func rollbackRings(tx store.Tx, st *spec.Stack, r, orig Rollout) ([]RingStatus, error) {
	rings := ringsOf(st, true)
	if _, ok := rollbackRest(stackRings(st)); !ok {
		return rings, nil
	}
	rest := len(rings) - 1
	f := store.Filter{Limit: 1000}
	for {
		page, err := tx.Accounts(f)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		for _, a := range page {
			if a.State == silo.StateDeleting || a.State == silo.StateDeleted || ringOf(rings, st, a) != rest {
				continue
			}
			if _, ok, err := returnTo(tx, orig, a, r.Release); err != nil || ok {
				return rings, err
			}
		}
		if len(page) < f.Limit {
			return rings[:rest], nil
		}
		f.After = page[len(page)-1].ID
	}
}

// rollbackRest returns the last ring of a rollback rollout whose rings
// src leave some account out: it selects every account no earlier ring
// does, so that undoTargets decides for each whether it returns (an account
// the rolled-back rollout moved, or one on its release) or stays (one on a
// release of its own). It is named "rest", or "rest-2", ... when a ring of
// src is named so. ok is false when a ring of src selects every account.
func rollbackRest(src []spec.Ring) (RingStatus, bool) {
	names := map[string]bool{}
	for _, r := range src {
		if r.Select.Kind == "" && len(r.Select.Params) == 0 && r.Select.Percent >= 100 {
			return RingStatus{}, false
		}
		names[r.Name] = true
	}
	name := "rest"
	for n := 2; names[name]; n++ {
		name = fmt.Sprintf("rest-%d", n)
	}
	return RingStatus{Name: name, Select: spec.Selector{Percent: 100}, Concurrency: spec.DefaultRingConcurrency}, true
}

// Unmoved reports the accounts a rollout of a release with stack st
// leaves as they are: those no ring of st selects.
func Unmoved(st *spec.Stack) func(silo.Account) bool {
	rings := ringsOf(st, false)
	return func(a silo.Account) bool { return ringOf(rings, st, a) == -1 }
}

// ringOf returns the index of the first ring selecting a, or -1.
func ringOf(rings []RingStatus, st *spec.Stack, a silo.Account) int {
	var params map[string]string
	for i, r := range rings {
		sel := r.Select
		if a.Kind == silo.KindProduction || sel.Kind == silo.KindProduction {
			if a.Kind == sel.Kind {
				return i
			}
			continue
		}
		if sel.Kind != "" && sel.Kind != a.Kind {
			continue
		}
		if len(sel.Params) > 0 {
			if params == nil {
				p, err := st.ResolveParams(a.Params)
				if err != nil {
					p = a.Params
				}
				params = p
			}
			match := true
			for k, v := range sel.Params {
				if params[k] != v {
					match = false
					break
				}
			}
			if !match {
				continue
			}
		}
		if sel.Percent < 100 && Percentile(a.ID) >= sel.Percent {
			continue
		}
		return i
	}
	return -1
}

// Percentile places an account in [0, 100) by a stable hash of its ID, the
// same in every rollout: a selector with percent p selects the accounts
// whose percentile is below p.
func Percentile(id silo.AccountID) float64 {
	sum := sha256.Sum256([]byte("silo/ring/" + id))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / float64(uint64(1)<<53) * 100
}

// members calls fn for every account of ring i, in ID order, in pages.
func (rn *Runner) members(ctx context.Context, r Rollout, i int, st *spec.Stack, fn func([]silo.Account) error) (unselected int, err error) {
	f := store.Filter{Limit: 1000}
	for {
		var page []silo.Account
		if err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			page, err = tx.Accounts(f)
			return err
		}); err != nil {
			return unselected, fmt.Errorf("list accounts: %w", err)
		}
		var mine []silo.Account
		for _, a := range page {
			if a.State == silo.StateDeleting || a.State == silo.StateDeleted {
				continue
			}
			switch ringOf(r.Rings, st, a) {
			case i:
				mine = append(mine, a)
			case -1:
				unselected++
			}
		}
		if len(mine) > 0 {
			if err := fn(mine); err != nil {
				return unselected, err
			}
		}
		if len(page) < f.Limit {
			return unselected, nil
		}
		f.After = page[len(page)-1].ID
	}
}

// where records in every ring of r how many of its accounts run each
// release (RingStatus.Releases), in the transaction that stops r, so that
// whoever sees r stopped sees where its accounts are. st is the stack of
// r's target release (for selectors on parameters).
func where(tx store.Tx, r *Rollout, st *spec.Stack) error {
	counts := make([]map[string]int, len(r.Rings))
	f := store.Filter{Limit: 1000}
	for {
		page, err := tx.Accounts(f)
		if err != nil {
			return fmt.Errorf("list accounts: %w", err)
		}
		for _, a := range page {
			if a.State == silo.StateDeleting || a.State == silo.StateDeleted {
				continue
			}
			if i := ringOf(r.Rings, st, a); i >= 0 {
				if counts[i] == nil {
					counts[i] = map[string]int{}
				}
				counts[i][a.Release]++
			}
		}
		if len(page) < f.Limit {
			break
		}
		f.After = page[len(page)-1].ID
	}
	for i := range r.Rings {
		r.Rings[i].Releases = counts[i]
	}
	return nil
}

// ReleaseFor returns the release an account created now should get, a
// not yet in the registry: while a rollout is active, the rollout's
// target when the ring that selects a has begun (applying, baking,
// verifying or promoted), so that a new account never holds a ring back
// or runs a release its ring has left; while a rollback rollout is
// active, its release, the one the fleet returns to, whatever ring
// selects a, if any (a rollback may have no ring over a: see
// rollbackRings); otherwise (no rollout is active, its ring has not begun
// and will move it when it does, the rollout is rolling a ring back, the
// ring is stopped, or no ring selects it) the current release, read with
// the active rollout, or "" when there is none yet: the caller then uses
// the current release it has. An account that got the target goes back
// with the rollout's accounts if a ring fails (returnTo).
//
// # Notes
//
// An account decided "" in the instant its ring begins may be registered
// after the ring listed its accounts: the ring's live verification then
// finds it on the old release and fails the ring, which rolls back. One
// decided the target before a ring failed whose creation finishes only
// after the rollback passed its ring stays on the target.
func (rn *Runner) ReleaseFor(ctx context.Context, a silo.Account) (string, error) {
	// The active rollout and the current release are read together, so
	// that a rollout that ends meanwhile is seen either running or with
	// its release current: a caller's own earlier read of the current
	// release may be older than both.
	var r Rollout
	var cur string
	active := false
	err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if cur, err = tx.CurrentRelease(); err != nil && !errors.Is(err, silo.ErrNotFound) {
			return err
		}
		rec, err := tx.ActiveRollout()
		if errors.Is(err, silo.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		active = true
		r, err = fromRecord(rec)
		return err
	})
	if err != nil || !active {
		return cur, err
	}
	rel, err := rn.release(ctx, r.Release)
	if err != nil {
		return "", err
	}
	i := ringOf(r.Rings, rel.Stack, a)
	switch {
	case returning(r):
		return cur, nil
	case r.RollbackOf != "":
		return r.Release, nil
	case i < 0:
		return cur, nil
	}
	switch r.Rings[i].Phase {
	case PhaseApplying, PhaseBaking, PhaseVerifying, PhasePromoted:
		return r.Release, nil
	}
	return cur, nil
}

// returning reports whether r is returning its accounts: its current
// ring failed and rolls back every ring.
func returning(r Rollout) bool {
	return r.Ring < len(r.Rings) && r.Rings[r.Ring].Phase == PhaseRollingBack
}
