package rollout

import (
	"errors"
	"fmt"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/store"
)

// UpToDate is what Start returns, as its error, for a release that is the
// current release and that every live account its rings select runs
// already: there is nothing to roll out, and nothing is recorded (no
// rollout, no audit entry), so a re-run of an unchanged deploy leaves the
// latest rollout, the one an operator may roll back, as it was. Callers
// treat it as success; errors.As finds it.
//
// A current release that some accounts its rings select do not run (their
// step failed within the failure budget, or silo apply held them) is not
// UpToDate: Start records a rollout that moves just those accounts
// (Previous equals Release), through the rings and their gates.
type UpToDate struct {
	Release string `json:"release"`
	// Accounts counts the live accounts the rings select, all on Release.
	Accounts int `json:"accounts"`
	// Unselected counts the live accounts no ring selects: no rollout
	// moves them, whatever they run.
	Unselected int `json:"unselected,omitempty"`
}

func (u *UpToDate) Error() string {
	if u.Unselected == 0 {
		return fmt.Sprintf("release %s is already current on every account; nothing to roll out", u.Release)
	}
	return fmt.Sprintf("release %s is already current on every account its rings select (%d; %d no ring selects are left alone, as by every rollout); nothing to roll out", u.Release, u.Accounts, u.Unselected)
}

// upToDate returns the UpToDate answer to a rollout of rel, or nil when
// rel is not the current release or a live account its rings select does
// not run it.
func upToDate(tx store.Tx, rel engine.Release) (*UpToDate, error) {
	cur, err := tx.CurrentRelease()
	if errors.Is(err, silo.ErrNotFound) || (err == nil && cur != rel.ID) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rings := ringsOf(rel.Stack, false)
	u := &UpToDate{Release: rel.ID}
	f := store.Filter{Limit: 1000}
	for {
		page, err := tx.Accounts(f)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		for _, a := range page {
			if a.State == silo.StateDeleting || a.State == silo.StateDeleted {
				continue
			}
			switch {
			case ringOf(rings, rel.Stack, a) < 0:
				u.Unselected++
			case a.Release != rel.ID:
				return nil, nil
			default:
				u.Accounts++
			}
		}
		if len(page) < f.Limit {
			return u, nil
		}
		f.After = page[len(page)-1].ID
	}
}

// movedNothing reports whether rollout r, stopped, moved no account: a
// rollout of the release that was current already (Release equals
// Previous) with no apply step that did not fail. Such a rollout (recorded
// by a silo before UpToDate, or one whose lagging accounts all failed
// again) has nothing to roll back, and does not stand in the way of
// rolling back the rollout before it.
func movedNothing(tx store.Tx, r Rollout) (bool, error) {
	if r.State.Active() || r.RollbackOf != "" || r.Release != r.Previous {
		return false, nil
	}
	steps, err := tx.Steps(r.ID)
	if err != nil {
		return false, err
	}
	for _, s := range steps {
		if s.Step == "apply" && s.State != store.IntentFailed {
			return false, nil
		}
	}
	return true, nil
}

// latestMoving returns the newest rollout that left an account moved (see
// leftNothing), the only one a rollback may undo; ok is false when there
// is none.
func latestMoving(tx store.Tx) (r Rollout, ok bool, err error) {
	recs, err := tx.Rollouts(0)
	if err != nil {
		return r, false, err
	}
	for _, rec := range recs {
		r, err := fromRecord(rec)
		if err != nil {
			return r, false, err
		}
		nothing, err := leftNothing(tx, r)
		if err != nil {
			return r, false, err
		}
		if !nothing {
			return r, true, nil
		}
	}
	return Rollout{}, false, nil
}
