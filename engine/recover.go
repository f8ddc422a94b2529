package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// RecoveryReport says what Recover found and did.
type RecoveryReport struct {
	Pending   int `json:"pending"`   // intents found pending
	Confirmed int `json:"confirmed"` // the provider had done them: recorded
	Abandoned int `json:"abandoned"` // the provider had not: marked failed, the next plan redoes them
	Resumed   int `json:"resumed"`   // accounts whose provisioning or deletion was finished
	Skipped   int `json:"skipped"`   // intents of a process that may still be running
	Settled   int `json:"settled"`   // intents another process settled meanwhile (another server recovering)
	// Changed lists the accounts whose recorded state Recover changed
	// (resources recorded, deletions finished), once each: caches of
	// them are stale.
	Changed []silo.AccountID `json:"changed,omitempty"`
}

// changed adds id to Changed once.
func (r *RecoveryReport) changed(id silo.AccountID) {
	if !slices.Contains(r.Changed, id) {
		r.Changed = append(r.Changed, id)
	}
}

// claim reports, inside the transaction that is to settle intent in,
// whether this process may: in is still pending and its owner still not
// alive (see ownerLive). Read again in that transaction, it makes the
// settling of one intent happen once however many servers recover at
// once: the store serializes their transactions, and the later ones find
// it finished, or renewed by its owner.
func (e *Engine) claim(tx store.Tx, in store.Intent) (bool, error) {
	cur, err := tx.IntentByKey(in.Key)
	if err != nil {
		return false, fmt.Errorf("read intent %d again: %w", in.Seq, err)
	}
	return cur.State == store.IntentPending && !e.ownerLive(cur), nil
}

// Recover reconciles intents left pending by a crash — intents whose process
// is gone (see Config.RecoverGrace) — and leaves alone those of processes
// still running. It never re-runs a
// provider call blindly: it asks the provider what it holds and records the
// intents the provider completed; the rest are marked failed, and the next
// plan redoes them from recorded state. Then it finishes deletions that were
// under way (deletion is idempotent). Accounts left provisioning stay so
// until the next apply, which completes them (control.Plane.Resume does
// that by itself). An account whose provider files cannot be read keeps its
// intents pending (counted as Skipped, and logged) and the others are
// reconciled; a deletion that fails is logged and counted as Skipped too.
//
// Recover may run in several processes at once (servers sharing one store
// run it periodically): each intent is claimed in the transaction that
// settles it (see claim), and one that another process settled first is
// counted as Settled and left alone.
func (e *Engine) Recover(ctx context.Context) (RecoveryReport, error) {
	var rep RecoveryReport
	var pending []store.Intent
	if err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		pending, err = tx.PendingIntents()
		return err
	}); err != nil {
		return rep, fmt.Errorf("read journal: %w", err)
	}
	rep.Pending = len(pending)
	if len(pending) == 0 {
		return rep, nil
	}
	exists := map[silo.AccountID]bool{}
	ids, err := e.cfg.Provider.Accounts(ctx)
	if err != nil {
		return rep, fmt.Errorf("list provider accounts: %w", err)
	}
	for _, id := range ids {
		exists[id] = true
	}
	actual := map[silo.AccountID]map[string]silo.Resource{}
	held := func(id silo.AccountID) (map[string]silo.Resource, error) {
		if m, ok := actual[id]; ok {
			return m, nil
		}
		m := map[string]silo.Resource{}
		if exists[id] {
			rs, err := e.cfg.Provider.Resources(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("read provider resources of %s: %w", id, err)
			}
			for _, r := range rs {
				m[r.Key()] = r
			}
		}
		actual[id] = m
		return m, nil
	}
	var deletions []store.Intent
	for _, in := range pending {
		e.hook("recovering", in.Account, in.Change)
		if e.ownerLive(in) {
			rep.Skipped++
			continue
		}
		ok := false
		switch in.Action {
		case "create-account":
			ok = exists[in.Account]
		case "delete-account":
			ok = !exists[in.Account]
			if !ok {
				// Resumed below, claiming the intent in the same
				// transaction that journals the new deletion.
				deletions = append(deletions, in)
				continue
			}
		case "apply":
			m, err := held(in.Account)
			if err != nil {
				// This account's files cannot be read (damaged): its
				// intents stay pending for the next recovery, and the
				// other accounts are reconciled.
				e.cfg.Logger.Error("recover: cannot read what the provider holds for an account; its pending changes wait until it is repaired", "account", in.Account, "error", err)
				rep.Skipped++
				continue
			}
			c := in.Change
			r, has := m[c.Key()]
			if c.Op == silo.OpDelete {
				ok = !has
			} else {
				ok = has && r.Hash == c.Desired.Hash
			}
		}
		claimed := false
		err := e.cfg.Store.Update(ctx, func(tx store.Tx) error {
			var err error
			if claimed, err = e.claim(tx, in); err != nil || !claimed {
				return err
			}
			if !ok {
				return tx.FinishIntent(in.Seq, store.IntentFailed, "interrupted; the provider had not completed it, so the next plan redoes it")
			}
			switch in.Action {
			case "apply":
				if err := record(tx, in.Account, *in.Change); err != nil {
					return err
				}
			case "delete-account":
				if err := e.markDeleted(tx, in.Account); err != nil {
					return err
				}
			}
			return tx.FinishIntent(in.Seq, store.IntentDone, "recovered")
		})
		if err != nil {
			return rep, fmt.Errorf("reconcile intent %d (%s): %w", in.Seq, in.Key, err)
		}
		if !claimed {
			rep.Settled++
			continue
		}
		if ok {
			rep.Confirmed++
			rep.changed(in.Account)
		} else {
			rep.Abandoned++
		}
		if ok && in.Action == "delete-account" {
			// The provider no longer holds the account, but a deletion
			// cut off inside the provider may have left what it had not
			// removed yet (the local provider: the account's directory,
			// its keys shredded); deleting again removes it, and is a
			// no-op otherwise.
			if _, err := e.cfg.Provider.DeleteAccount(ctx, in.Account); err != nil {
				e.cfg.Logger.Error("recover: could not remove what an interrupted deletion left", "account", in.Account, "error", err)
			}
		}
	}
	for _, in := range deletions {
		_, claimed, err := e.deleteAccount(ctx, in.Account, &in, false)
		if errors.Is(err, errSettled) {
			rep.Settled++
			continue
		}
		if claimed {
			rep.Abandoned++ // the new deletion replaced it
		}
		if err != nil {
			// The other deletions go on; this one stays in state
			// deleting (its intent finished failed, or still pending
			// when the store could not be written), and the error
			// logged says what failed.
			// Retries holds it back from RetryDeletions in this pass
			// (one attempt per pass) and the next ones.
			next := e.FailedRetry(ctx, silo.Account{ID: in.Account}, err)
			e.cfg.Logger.Error("recover: could not finish the deletion of an account; trying again later", "account", in.Account, "next", next.Format(time.RFC3339), "error", silo.ForLog(err))
			rep.Skipped++
			continue
		}
		e.retries.Succeeded(in.Account)
		rep.Resumed++
		rep.changed(in.Account)
	}
	return rep, nil
}

// RetryDeletions deletes again the accounts whose deletion failed (the
// provider unreachable, or failing part way): each account in state
// deleting whose deletion no process is working on (none pending in the
// journal; run Recover first, so that the deletions of dead processes are
// settled and finished). Deletion is idempotent: a retry finishes what the
// failed one left. An account whose deletion fails again stays deleting,
// is logged and counted as Skipped, and the others go on; one that a
// process is deleting (the user's command, another server's retry) is
// left alone, and not counted. A serving platform runs it at every
// reaper pass (platform.Platform.Recover), as it finishes half-done
// onboardings.
func (e *Engine) RetryDeletions(ctx context.Context) (RecoveryReport, error) {
	var rep RecoveryReport
	var accts []silo.Account
	if err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		accts, err = tx.Accounts(store.Filter{State: silo.StateDeleting})
		return err
	}); err != nil {
		return rep, fmt.Errorf("read the accounts left deleting: %w", err)
	}
	for _, a := range accts {
		if !e.retries.Due(a) {
			rep.Skipped++ // failed lately, this pass or before (Retries)
			continue
		}
		_, _, err := e.deleteAccount(ctx, a.ID, nil, true)
		if errors.Is(err, errSettled) {
			continue // under way in a process (a command, another server's retry)
		}
		if err != nil {
			next := e.FailedRetry(ctx, a, err)
			e.cfg.Logger.Error("could not finish the deletion of an account; trying again later", "account", a.ID, "next", next.Format(time.RFC3339), "error", silo.ForLog(err))
			rep.Skipped++
			continue
		}
		e.retries.Succeeded(a.ID)
		rep.Resumed++
		rep.changed(a.ID)
	}
	return rep, nil
}

// deletionPending reports whether a deletion of account id is journaled
// and not finished.
func deletionPending(tx store.Tx, id silo.AccountID) (bool, error) {
	pending, err := tx.PendingIntents()
	if err != nil {
		return false, err
	}
	for _, in := range pending {
		if in.Account == id && in.Action == "delete-account" {
			return true, nil
		}
	}
	return false, nil
}

// Drift compares the resources recorded for an account with what the
// provider actually holds.
func (e *Engine) Drift(ctx context.Context, id silo.AccountID) ([]silo.DriftItem, error) {
	var recorded []silo.Resource
	if err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		recorded, err = tx.Resources(id)
		return err
	}); err != nil {
		return nil, fmt.Errorf("drift %s: %w", id, err)
	}
	actual, err := e.cfg.Provider.Resources(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("drift %s: %w", id, err)
	}
	held := map[string]silo.Resource{}
	for _, r := range actual {
		held[r.Key()] = r
	}
	var out []silo.DriftItem
	for _, r := range recorded {
		a, ok := held[r.Key()]
		delete(held, r.Key())
		switch {
		case !ok:
			out = append(out, silo.DriftItem{Key: r.Key(), Kind: "missing", Recorded: r.Hash})
		case a.Hash != r.Hash:
			out = append(out, silo.DriftItem{Key: r.Key(), Kind: "changed", Recorded: r.Hash, Actual: a.Hash})
		}
	}
	for _, a := range actual {
		if _, ok := held[a.Key()]; ok {
			out = append(out, silo.DriftItem{Key: a.Key(), Kind: "extra", Actual: a.Hash})
		}
	}
	return out, nil
}
