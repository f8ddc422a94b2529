package rollout

import (
	"context"
	"errors"
	"fmt"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// This file holds the rule for which rollout an operator may roll back:
// Rollback and PreviewRollback refuse by it (rollbackable), and List marks
// by it the one rollout a rollback may undo now (Rollout.CanRollBack), so
// that the CLI, the API and the console offer a rollback exactly where one
// would start.

// refusal is why a rollout cannot be rolled back, or none.
type refusal int

const (
	none       refusal = iota
	rolledBack         // rolled back already
	aRollback          // a rollback rollout itself
	leftAsWas          // it left every account where it was (leftNothing)
	notLatest          // a later rollout left accounts moved
	noPrevious         // the first deploy: no release to return to
)

// check applies the rule to orig: it may be rolled back when it is the
// latest rollout that left accounts moved (latestMoving), was not rolled
// back already, is not a rollback itself, and had a release before it.
// latest is the latest rollout that left accounts moved, if any (ok).
//
// A rollout that left every account where it was (leftNothing: one that
// moved no account, or one that failed and whose gates returned every
// account it moved) has nothing to roll back and does not stand in the way
// of rolling back the rollout before it. A rollout that failed but left
// accounts on its release (a ring with on_rollback: keep, or an account
// that failed to return) may be rolled back, which returns those.
// Rolling back a rollback would ship the release it undid, one an
// operator or a gate rejected, to every account with no gate in the way;
// shipping that release again is a new rollout of it (Start), through the
// rings and their gates.
func check(tx store.Tx, orig Rollout) (why refusal, latest Rollout, ok bool, err error) {
	if orig.RolledBackBy != "" {
		return rolledBack, latest, false, nil
	}
	if orig.RollbackOf != "" {
		return aRollback, latest, false, nil
	}
	if latest, ok, err = latestMoving(tx); err != nil {
		return none, latest, ok, err
	}
	nothing, err := leftNothing(tx, orig)
	switch {
	case err != nil:
		return none, latest, ok, err
	case nothing:
		return leftAsWas, latest, ok, nil
	case ok && latest.ID != orig.ID:
		return notLatest, latest, ok, nil
	case orig.Previous == "":
		return noPrevious, latest, ok, nil
	}
	return none, latest, ok, nil
}

// leftNothing reports whether rollout r left every account where it was:
// it moved none (movedNothing), or it failed and its gates returned every
// account it moved (returnedAll).
func leftNothing(tx store.Tx, r Rollout) (bool, error) {
	if nothing, err := movedNothing(tx, r); nothing || err != nil {
		return nothing, err
	}
	return returnedAll(tx, r)
}

// returnedAll reports whether rollout r failed and its gates returned every
// account it moved: every apply step that went through has a rollback step
// that went through too, and no rollback step failed or was left pending.
// (An apply step that failed or was interrupted left the account where it
// was, or its rollback step returned it.) A failed rollout does not change
// the current release, so such a rollout left the fleet as it found it.
func returnedAll(tx store.Tx, r Rollout) (bool, error) {
	if r.State != StateFailed || r.RollbackOf != "" {
		return false, nil
	}
	steps, err := tx.Steps(r.ID)
	if err != nil {
		return false, err
	}
	back := map[store.StepKey]bool{}
	for _, s := range steps {
		if s.Step != "rollback" {
			continue
		}
		if s.State != store.IntentDone {
			return false, nil
		}
		k := s.StepKey
		k.Step = "apply"
		back[k] = true
	}
	for _, s := range steps {
		if s.Step == "apply" && s.State == store.IntentDone && !back[s.StepKey] {
			return false, nil
		}
	}
	return true, nil
}

// undoable returns the rollout a rollback may undo now; ok is false when
// there is none.
func undoable(tx store.Tx) (r Rollout, ok bool, err error) {
	l, ok, err := latestMoving(tx)
	if err != nil || !ok {
		return l, false, err
	}
	why, _, _, err := check(tx, l)
	return l, err == nil && why == none, err
}

// rollbackable returns why orig cannot be rolled back (check), as an error
// that says what to do instead; nil when it can. What it advises starts:
// a rollback of the rollout undoable names, or a rollout of a release
// through the rings and their gates (silo deploy --release), never a
// command that would be refused itself.
func rollbackable(tx store.Tx, orig Rollout) error {
	why, l, _, err := check(tx, orig)
	if err != nil || why == none {
		return err
	}
	u, canUndo, err := undoable(tx) // never orig, which check refused
	if err != nil {
		return err
	}
	switch why {
	case rolledBack:
		return silo.Errorf(silo.CodeConflict, "rollout %s was rolled back already, by %s; silo rollout list shows what ran since", orig.ID, orig.RolledBackBy)
	case aRollback:
		again, err := shipAgain(tx, orig.Previous)
		if err != nil {
			return err
		}
		return silo.Errorf(silo.CodeConflict, "rollout %s is the rollback of %s and cannot be rolled back: that would ship release %s, which %s was rolled back from, to the fleet without the gates of its rings; nothing was changed. To ship release %s again, roll it out anew through the rings and their gates: %s", orig.ID, orig.RollbackOf, orig.Previous, orig.RollbackOf, orig.Previous, again)
	case leftAsWas:
		next := "No rollout can be rolled back now; to move the fleet to another release, roll it out through the rings and their gates: silo deploy --release ID (silo release list shows the releases)"
		if canUndo {
			next = fmt.Sprintf("The latest rollout that moved accounts is %s (release %s): silo rollout rollback %s", u.ID, u.Release, u.ID)
		}
		if orig.State == StateFailed {
			return silo.Errorf(silo.CodeConflict, "rollout %s failed (%s) and it returned its accounts to release %s already: there is nothing to roll back; nothing was changed. Fix the release and deploy it (silo deploy). %s", orig.ID, orig.Reason, orig.Previous, next)
		}
		return silo.Errorf(silo.CodeConflict, "rollout %s moved no account (release %s was current already): there is nothing to roll back; nothing was changed. %s", orig.ID, orig.Release, next)
	case notLatest:
		if canUndo {
			return silo.Errorf(silo.CodeConflict, "rollout %s is not the latest: %s (release %s) ran after it, and rolling %s back would undo that one too; roll back the latest instead (silo rollout rollback %s)", orig.ID, l.ID, l.Release, orig.ID, l.ID)
		}
		if orig.Previous == "" {
			return silo.Errorf(silo.CodeConflict, "rollout %s is not the latest: %s (release %s) ran after it; and as the first deploy, %s had no release before it to return to; nothing was changed", orig.ID, l.ID, l.Release, orig.ID)
		}
		again, err := shipAgain(tx, orig.Previous)
		if err != nil {
			return err
		}
		return silo.Errorf(silo.CodeConflict, "rollout %s is not the latest: %s (release %s) ran after it, and rolling %s back would undo that one too, which cannot be rolled back (%s); nothing was changed. To return the fleet to release %s, which %s moved it from, roll that release out anew through the rings and their gates: %s", orig.ID, l.ID, l.Release, orig.ID, whyNot(tx, l), orig.Previous, orig.ID, again)
	}
	return silo.Errorf(silo.CodeInvalid, "rollout %s has no previous release to return to (it was the first deploy)", orig.ID)
}

// whyNot says in a few words why rollout l cannot be rolled back.
func whyNot(tx store.Tx, l Rollout) string {
	switch why, _, _, _ := check(tx, l); why {
	case rolledBack:
		return "it was rolled back already, by " + l.RolledBackBy
	case aRollback:
		return "it is the rollback of " + l.RollbackOf
	case noPrevious:
		return "it was the first deploy"
	}
	return "silo rollout list shows it"
}

// shipAgain is the command that rolls release rel out anew through the
// rings and their gates, confirming a retry when its latest rollout failed
// (Reship).
func shipAgain(tx store.Tx, rel string) (string, error) {
	recs, err := tx.Rollouts(0)
	if err != nil {
		return "", err
	}
	rs := make([]Rollout, 0, len(recs))
	for _, rec := range recs {
		r, err := fromRecord(rec)
		if err != nil {
			return "", err
		}
		rs = append(rs, r)
	}
	cur, err := tx.CurrentRelease()
	if err != nil && !errors.Is(err, silo.ErrNotFound) {
		return "", err
	}
	cmd := "silo deploy --release " + rel
	if _, ok := FailuresOf(rs, cur)[rel]; ok {
		cmd += " --retry-failed"
	}
	return cmd + " (API: POST /v1/rollouts)", nil
}

// MarkRollback sets CanRollBack on the rollout of rs a rollback may undo
// now, if rs holds it, and clears it on the others (List does this).
func (rn *Runner) MarkRollback(ctx context.Context, rs []Rollout) error {
	return rn.cfg.Store.View(ctx, func(tx store.Tx) error { return markUndoable(tx, rs) })
}

func markUndoable(tx store.Tx, rs []Rollout) error {
	u, ok, err := undoable(tx)
	if err != nil {
		return err
	}
	for i := range rs {
		rs[i].CanRollBack = ok && rs[i].ID == u.ID
	}
	return nil
}
