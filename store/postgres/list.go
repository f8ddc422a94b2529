package postgres

import (
	"fmt"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

var _ store.Lister = (*tx)(nil)

// Journal lists intents with Seq > after in order, at most limit (0: all).
func (t *tx) Journal(after int64, limit int) ([]store.Intent, error) {
	q, args := `SELECT `+intentCols+` FROM intents WHERE seq > $1 ORDER BY seq`, []any{after}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := t.tx.Query(t.ctx, q, args...)
	if err != nil {
		return nil, t.err("list journal", err)
	}
	defer rows.Close()
	var out []store.Intent
	for rows.Next() {
		in, err := scanIntent(rows)
		if err != nil {
			return nil, t.err("list journal", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, t.err("list journal", err)
	}
	return out, nil
}

// Settings returns every setting by name.
func (t *tx) Settings() (map[string]string, error) {
	rows, err := t.tx.Query(t.ctx, `SELECT name, value FROM settings`)
	if err != nil {
		return nil, t.err("list settings", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return nil, t.err("list settings", err)
		}
		out[n] = v
	}
	if err := rows.Err(); err != nil {
		return nil, t.err("list settings", err)
	}
	return out, nil
}

// ScheduleRuns returns every schedule's last claimed run.
func (t *tx) ScheduleRuns() ([]store.ScheduleRun, error) {
	const op = "list schedule runs"
	rows, err := t.tx.Query(t.ctx, `SELECT account, schedule, due, owner, until, finished FROM schedule_runs ORDER BY account, schedule`)
	if err != nil {
		return nil, t.err(op, err)
	}
	defer rows.Close()
	var out []store.ScheduleRun
	for rows.Next() {
		var r store.ScheduleRun
		var acct string
		if err := rows.Scan(&acct, &r.Schedule, &r.Due, &r.Owner, &r.Until, &r.Finished); err != nil {
			return nil, t.err(op, err)
		}
		r.Account, r.Due, r.Until = silo.AccountID(acct), r.Due.UTC(), r.Until.UTC()
		out = append(out, r)
	}
	return out, t.err(op, rows.Err())
}

// DayRows returns the rows of the table of days dt as stored.
func (t *tx) DayRows(dt store.DayTable, limit int) ([]store.DayRow, error) {
	op := "list " + dt.Name
	cols := strings.Join(dt.Key, ", ")
	// The table's name and key are the store's own (store.DayTables).
	q, args := `SELECT day, `+cols+`, rolled, data FROM `+dt.Name+` ORDER BY day, `+cols, []any{}
	if limit > 0 {
		q += ` LIMIT $1`
		args = append(args, limit)
	}
	rows, err := t.tx.Query(t.ctx, q, args...)
	if err != nil {
		return nil, t.err(op, err)
	}
	defer rows.Close()
	var out []store.DayRow
	for rows.Next() {
		r := store.DayRow{Key: make([]string, len(dt.Key))}
		dest := []any{&r.Day}
		for i := range r.Key {
			dest = append(dest, &r.Key[i])
		}
		if err := rows.Scan(append(dest, &r.Rolled, &r.Data)...); err != nil {
			return nil, t.err(op, err)
		}
		out = append(out, r)
	}
	return out, t.err(op, rows.Err())
}

// PutDayRow inserts a row of the table of days dt as it is.
func (t *tx) PutDayRow(dt store.DayTable, r store.DayRow) error {
	op := "store a row of " + dt.Name
	if err := t.writable(op); err != nil {
		return err
	}
	if len(r.Key) != len(dt.Key) {
		return silo.Errorf(silo.CodeInvalid, "%s: the row has %d key columns; want %d", op, len(r.Key), len(dt.Key))
	}
	args, marks := []any{r.Day}, "$1"
	for _, k := range r.Key {
		args = append(args, k)
		marks += fmt.Sprintf(", $%d", len(args))
	}
	marks += fmt.Sprintf(", $%d, $%d", len(args)+1, len(args)+2)
	_, err := t.exec(op, `INSERT INTO `+dt.Name+` (day, `+strings.Join(dt.Key, ", ")+`, rolled, data) VALUES (`+marks+`)`,
		append(args, r.Rolled, r.Data)...)
	return err
}
