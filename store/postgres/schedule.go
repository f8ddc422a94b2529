package postgres

import (
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func (t *tx) ClaimScheduleRun(c store.ScheduleClaim, now time.Time) error {
	op := "claim run of schedule " + c.Schedule + " of " + string(c.Account)
	if err := t.writable(op); err != nil {
		return err
	}
	if _, err := t.Account(c.Account); err != nil {
		return err
	}
	// One statement: insert the first claim, or take the row over when the
	// due time is later and the previous run is finished or no longer held.
	// Two servers inserting at once: one waits on the other's row and then
	// sees it (or fails to serialize, and Update runs this again).
	tag, err := t.exec(op, `INSERT INTO schedule_runs (account, schedule, due, owner, until, finished) VALUES ($1, $2, $3, $4, $5, false)
ON CONFLICT (account, schedule) DO UPDATE SET due = excluded.due, owner = excluded.owner, until = excluded.until, finished = false
WHERE schedule_runs.due < excluded.due AND (schedule_runs.finished OR schedule_runs.until <= $6)`,
		string(c.Account), c.Schedule, ts(c.Due), c.Owner, ts(c.Until), ts(now))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return silo.Errorf(silo.CodeConflict, "the run of schedule %q of %s due at %s is claimed already, or an earlier run still is", c.Schedule, c.Account, c.Due.UTC().Format(time.RFC3339))
	}
	return nil
}

func (t *tx) FinishScheduleRun(c store.ScheduleClaim) error {
	op := "finish run of schedule " + c.Schedule + " of " + string(c.Account)
	if err := t.writable(op); err != nil {
		return err
	}
	_, err := t.exec(op, `UPDATE schedule_runs SET finished = true WHERE account = $1 AND schedule = $2 AND due = $3 AND owner = $4`,
		string(c.Account), c.Schedule, ts(c.Due), c.Owner)
	return err
}
