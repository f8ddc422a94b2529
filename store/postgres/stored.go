package postgres

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	silo "github.com/silo-run/silo"
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
		err := t.queryRow(`SELECT data FROM stored_usage WHERE day = $1 AND account = $2 AND resource = $3 FOR UPDATE`,
			day, string(s.Account), res).Scan(&old)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return t.err(op, err)
		}
		data, err := store.SetStoredHour(old, hour, s.Bytes)
		if err != nil {
			return fmt.Errorf("%s of %s/%s: %w", op, s.Account, res, err)
		}
		if _, err := t.exec(op, `INSERT INTO stored_usage (day, account, resource, rolled, data) VALUES ($1, $2, $3, false, $4)
			ON CONFLICT (day, account, resource) DO UPDATE SET data = excluded.data`, day, string(s.Account), res, data); err != nil {
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
	var limit *int64
	if q.Limit > 0 {
		l := int64(q.Limit)
		limit = &l
	}
	acct, args := "", []any{from, to, cDay, cAcct, cRes, limit}
	if q.Account != "" {
		acct, args = `account = $7 AND `, append(args, string(q.Account))
	}
	rows, err := t.tx.Query(t.ctx, `SELECT day, account, resource, data FROM stored_usage
		WHERE `+acct+`day >= $1 AND day < $2 AND (day, account, resource) > ($3, $4, $5)
		ORDER BY day, account, resource LIMIT $6`, args...)
	if err != nil {
		return nil, t.err(op, err)
	}
	defer rows.Close()
	var out []store.StoredDay
	for rows.Next() {
		var d store.StoredDay
		var day int64
		var acct, res string
		var data []byte
		if err := rows.Scan(&day, &acct, &res, &data); err != nil {
			return nil, t.err(op, err)
		}
		d.Account, d.Day = silo.AccountID(acct), store.DayTime(day)
		d.Kind, d.Name = store.SplitStoredResource(res)
		if err := store.DecodeStored(data, &d); err != nil {
			return nil, fmt.Errorf("%s of %s/%s on %s: %w", op, d.Account, res, d.Day.Format(time.DateOnly), err)
		}
		out = append(out, d)
	}
	return out, t.err(op, rows.Err())
}

// pruneStored applies PruneUsage's retention to the stored-bytes days.
func (t *tx) pruneStored(hourlyBefore, dailyBefore time.Time) (rolled, deleted int64, err error) {
	const op = "prune stored bytes"
	tag, err := t.exec(op, `DELETE FROM stored_usage WHERE day < $1`, store.DayNumber(dailyBefore))
	if err != nil {
		return 0, 0, err
	}
	deleted = tag.RowsAffected()
	rows, err := t.tx.Query(t.ctx, `SELECT day, account, resource, data FROM stored_usage WHERE day < $1 AND NOT rolled FOR UPDATE`, store.DayNumber(hourlyBefore))
	if err != nil {
		return 0, 0, t.err(op, err)
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
			return 0, 0, t.err(op, err)
		}
		days = append(days, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, t.err(op, err)
	}
	for _, d := range days {
		data, err := store.RollUpStored(d.data)
		if err != nil {
			return 0, 0, fmt.Errorf("%s of %s/%s: %w", op, d.acct, d.res, err)
		}
		if _, err := t.exec(op, `UPDATE stored_usage SET rolled = true, data = $1 WHERE day = $2 AND account = $3 AND resource = $4`, data, d.n, d.acct, d.res); err != nil {
			return 0, 0, err
		}
	}
	return int64(len(days)), deleted, nil
}
