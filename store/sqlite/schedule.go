package sqlite

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
	res, err := t.exec(op, `INSERT INTO schedule_runs (account, schedule, due, owner, until, finished) VALUES (?, ?, ?, ?, ?, 0)
ON CONFLICT (account, schedule) DO UPDATE SET due = excluded.due, owner = excluded.owner, until = excluded.until, finished = 0
WHERE schedule_runs.due < excluded.due AND (schedule_runs.finished = 1 OR schedule_runs.until <= ?)`,
		c.Account, c.Schedule, micros(c.Due), c.Owner, micros(c.Until), micros(now))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return t.s.dbErr(op, err)
	} else if n == 0 {
		return silo.Errorf(silo.CodeConflict, "the run of schedule %q of %s due at %s is claimed already, or an earlier run still is", c.Schedule, c.Account, c.Due.UTC().Format(time.RFC3339))
	}
	return nil
}

func (t *tx) FinishScheduleRun(c store.ScheduleClaim) error {
	op := "finish run of schedule " + c.Schedule + " of " + string(c.Account)
	if err := t.writable(op); err != nil {
		return err
	}
	_, err := t.exec(op, `UPDATE schedule_runs SET finished = 1 WHERE account = ? AND schedule = ? AND due = ? AND owner = ?`,
		c.Account, c.Schedule, micros(c.Due), c.Owner)
	return err
}
