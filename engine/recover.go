package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

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
}

// ownerLive reports whether the process that journaled intent in may still
// be working on it: a live process of this host, or a process of another
// host within the grace period. Intents whose key names no owner (those of
// other journal users, such as rollout claims) are reconciled as before.
func (e *Engine) ownerLive(in store.Intent) bool {
	var attempt string
	parts := strings.Split(in.Key, "/")
	switch in.Action {
	case "apply":
		if len(parts) > 3 {
			attempt = parts[3]
		}
	case "create-account", "delete-account":
		if len(parts) > 2 {
			attempt = parts[2]
		}
	}
	f := strings.Split(attempt, "~")
	if len(f) != 3 {
		return false
	}
	if f[0] != hostname {
		return e.cfg.Now().Sub(in.Updated) < e.cfg.RecoverGrace
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 {
		return false
	}
	return pid == os.Getpid() || processAlive(pid)
}

// processAlive reports whether a process with the given ID exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
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
// reconciled; so does a deletion that fails.
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
	var deletions []silo.AccountID
	for _, in := range pending {
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
				deletions = append(deletions, in.Account)
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
		err := e.cfg.Store.Update(ctx, func(tx store.Tx) error {
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
		if ok {
			rep.Confirmed++
		} else {
			rep.Abandoned++
		}
		if ok && in.Action == "delete-account" {
			// The provider no longer holds the account, but a deletion
			// cut off inside the provider may have left what it had not
			// removed yet (the local provider: the account's directory,
			// its keys shredded); deleting again removes it, and is a
			// no-op otherwise.
			if err := e.cfg.Provider.DeleteAccount(ctx, in.Account); err != nil {
				e.cfg.Logger.Error("recover: could not remove what an interrupted deletion left", "account", in.Account, "error", err)
			}
		}
	}
	for _, id := range deletions {
		if err := e.DeleteAccount(ctx, id); err != nil {
			// The other deletions go on; this one stays in state
			// deleting with its intent pending, for the next recovery.
			e.cfg.Logger.Error("recover: could not finish the deletion of an account", "account", id, "error", err)
			rep.Skipped++
			continue
		}
		rep.Resumed++
	}
	return rep, nil
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
