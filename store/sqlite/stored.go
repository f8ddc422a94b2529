package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/silo-run/silo/store"
)

// ---- stored bytes ----

func (t *tx) SetStored(at time.Time, ss []store.StoredSample) error {
	const op = "set stored bytes"
	if err := t.writable(op); err != nil {
		return err
	}
	day, hour := store.DayNumber(at), at.UTC().Hour()
	for _, s := range ss {
		if err := store.CheckStoredSample(s); err != nil {
			return err
		}
		res := store.StoredResource(s.Kind, s.Name)
		var old []byte
		err := t.tx.QueryRowContext(t.ctx, `SELECT data FROM stored_usage WHERE day = ? AND account = ? AND resource = ?`,
			day, s.Account, res).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return t.s.dbErr(op, err)
		}
		data, err := store.SetStoredHour(old, hour, s.Bytes)
		if err != nil {
			return fmt.Errorf("%s of %s/%s: %w", op, s.Account, res, err)
		}
		if _, err := t.exec(op, `INSERT INTO stored_usage (day, account, resource, rolled, data) VALUES (?, ?, ?, 0, ?)
			ON CONFLICT (day, account, resource) DO UPDATE SET data = excluded.data`, day, s.Account, res, data); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Stored(q store.UsageQuery) ([]store.StoredDay, error) {
	const op = "read stored bytes"
	from, to := store.DayNumber(q.From), int64(math.MaxInt64)
	if q.From.IsZero() {
		from = math.MinInt64
	}
	if !q.To.IsZero() {
		to = store.DayNumber(q.To)
	}
	cDay, cAcct, cRes := int64(math.MinInt64), "", ""
	if q.After != nil {
		cDay, cAcct, cRes = store.DayNumber(q.After.Day), string(q.After.Account), q.After.Function
	}
	limit := int64(-1)
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	where, args := `day >= ? AND day < ?`, []any{from, to}
	if q.Account != "" {
		where, args = `account = ? AND `+where, append([]any{q.Account}, args...)
	}
	rows, err := t.tx.QueryContext(t.ctx, `SELECT day, account, resource, data FROM stored_usage
		WHERE `+where+` AND (day, account, resource) > (?, ?, ?)
		ORDER BY day, account, resource LIMIT ?`,
		append(args, cDay, cAcct, cRes, limit)...)
	if err != nil {
		return nil, t.s.dbErr(op, err)
	}
	defer rows.Close()
	var out []store.StoredDay
	for rows.Next() {
		var d store.StoredDay
		var day int64
		var res string
		var data []byte
		if err := rows.Scan(&day, &d.Account, &res, &data); err != nil {
			return nil, t.s.dbErr(op, err)
		}
		d.Day = store.DayTime(day)
		d.Kind, d.Name = store.SplitStoredResource(res)
		if err := store.DecodeStored(data, &d); err != nil {
			return nil, fmt.Errorf("%s of %s/%s on %s: %w", op, d.Account, res, d.Day.Format(time.DateOnly), err)
		}
		out = append(out, d)
	}
	return out, t.s.dbErr(op, rows.Err())
}

// pruneStored applies PruneUsage's retention to the stored-bytes days.
func (t *tx) pruneStored(hourlyBefore, dailyBefore time.Time) (rolled, deleted int64, err error) {
	const op = "prune stored bytes"
	res, err := t.exec(op, `DELETE FROM stored_usage WHERE day < ?`, store.DayNumber(dailyBefore))
	if err != nil {
		return 0, 0, err
	}
	deleted, _ = res.RowsAffected()
	rows, err := t.tx.QueryContext(t.ctx, `SELECT day, account, resource, data FROM stored_usage WHERE day < ? AND rolled = 0`, store.DayNumber(hourlyBefore))
	if err != nil {
		return 0, 0, t.s.dbErr(op, err)
	}
	type day struct {
		n         int64
		acct, res string
		data      []byte
	}
	var days []day
	for rows.Next() {
		var d day
		if err := rows.Scan(&d.n, &d.acct, &d.res, &d.data); err != nil {
			rows.Close()
			return 0, 0, t.s.dbErr(op, err)
		}
		days = append(days, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, t.s.dbErr(op, err)
	}
	for _, d := range days {
		data, err := store.RollUpStored(d.data)
		if err != nil {
			return 0, 0, fmt.Errorf("%s of %s/%s: %w", op, d.acct, d.res, err)
		}
		if _, err := t.exec(op, `UPDATE stored_usage SET rolled = 1, data = ? WHERE day = ? AND account = ? AND resource = ?`, data, d.n, d.acct, d.res); err != nil {
			return 0, 0, err
		}
	}
	return int64(len(days)), deleted, nil
}
