package rollout

import (
	"context"
	"fmt"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// Options are what an operator confirms when starting a rollout or a
// rollback.
type Options struct {
	// AllowDataLoss confirms that the rollout may delete or replace tables,
	// buckets and secrets (silo.Change.DestroysData). Without it, a rollout
	// whose plans would is refused before it starts, with
	// silo.CodeNeedsConfirm and what it would destroy.
	AllowDataLoss bool
}

// dataLoss plans every live account that the rollout would move and
// describes what those plans destroy ("" if nothing). moves maps a page of
// accounts to the release each would move to, leaving out those that stay.
func (rn *Runner) dataLoss(ctx context.Context, moves func(store.Tx, []silo.Account) (map[silo.AccountID]string, error)) (string, error) {
	var plans []silo.Plan
	f := store.Filter{Limit: 1000}
	for {
		var page []silo.Account
		var to map[silo.AccountID]string
		if err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			all, err := tx.Accounts(f)
			if err != nil {
				return fmt.Errorf("list accounts: %w", err)
			}
			page = all
			live := all[:0:0]
			for _, a := range all {
				if a.State != silo.StateDeleting && a.State != silo.StateDeleted {
					live = append(live, a)
				}
			}
			to, err = moves(tx, live)
			return err
		}); err != nil {
			return "", err
		}
		for _, a := range page {
			id, ok := to[a.ID]
			if !ok {
				continue
			}
			rel, err := rn.release(ctx, id)
			if err != nil {
				return "", err
			}
			p, err := rn.cfg.Engine.PlanAccount(ctx, a, rel)
			if silo.ErrorCode(err) == silo.CodeInvalid {
				// The account cannot take rel (a parameter it lacks): its
				// step fails against the ring's budget and changes nothing.
				continue
			}
			if err != nil {
				return "", fmt.Errorf("plan %s for release %s: %w", a.ID, id, err)
			}
			plans = append(plans, p)
		}
		if len(page) < f.Limit {
			return silo.DataLoss(plans), nil
		}
		f.After = page[len(page)-1].ID
	}
}

// rollbackable refuses to roll back orig when that would undo more than
// orig: once it was rolled back, or once a later rollout ran (rolling orig
// back would return the accounts that one moved as well, to a release two
// steps back).
func rollbackable(tx store.Tx, orig Rollout) error {
	if orig.RolledBackBy != "" {
		return silo.Errorf(silo.CodeConflict, "rollout %s was rolled back already, by %s; silo rollout list shows what ran since", orig.ID, orig.RolledBackBy)
	}
	latest, err := tx.Rollouts(1)
	if err != nil {
		return err
	}
	if len(latest) > 0 && latest[0].ID != orig.ID {
		l := latest[0]
		return silo.Errorf(silo.CodeConflict, "rollout %s is not the latest: %s (release %s) ran after it, and rolling %s back would undo that one too; roll back the latest instead (silo rollout rollback %s)", orig.ID, l.ID, l.Release, orig.ID, l.ID)
	}
	if orig.Previous == "" {
		return silo.Errorf(silo.CodeInvalid, "rollout %s has no previous release to return to (it was the first deploy)", orig.ID)
	}
	return nil
}
