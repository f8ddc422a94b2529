package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// ---- limit overrides ----

func (t *tx) LimitOverride(id silo.AccountID) (silo.Limits, error) {
	var data string
	err := t.tx.QueryRowContext(t.ctx, `SELECT limits FROM limit_overrides WHERE account = ?`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return silo.Limits{}, silo.Errorf(silo.CodeNotFound, "account %s has no limit override", id)
	}
	if err != nil {
		return silo.Limits{}, t.s.dbErr("read limit override of "+string(id), err)
	}
	var l silo.Limits
	if err := json.Unmarshal([]byte(data), &l); err != nil {
		return silo.Limits{}, fmt.Errorf("decode limit override of %s: %w", id, err)
	}
	return l, nil
}

func (t *tx) PutLimitOverride(id silo.AccountID, l silo.Limits) error {
	op := "store limit override of " + string(id)
	if err := t.writable(op); err != nil {
		return err
	}
	if err := l.Check(); err != nil {
		return err
	}
	if err := t.accountExists(id, op); err != nil {
		return err
	}
	if l.IsZero() {
		_, err := t.exec(op, `DELETE FROM limit_overrides WHERE account = ?`, id)
		return err
	}
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = t.exec(op, `INSERT INTO limit_overrides (account, limits) VALUES (?, ?)
		ON CONFLICT (account) DO UPDATE SET limits = excluded.limits`, id, string(data))
	return err
}

// ---- usage ----

func (t *tx) AddUsage(at time.Time, ds []store.UsageDelta) error {
	const op = "add usage"
	if err := t.writable(op); err != nil {
		return err
	}
	day, hour := store.DayNumber(at), at.UTC().Hour()
	seen := map[silo.AccountID]int64{}
	for _, d := range ds {
		if err := store.CheckUsageFunction(d.Function); err != nil {
			return err
		}
		if d.Counters.IsZero() {
			continue
		}
		created := store.CreatedKey(d.Created)
		if created == 0 {
			var err error
			if created, err = store.CreatedOf(t, d.Account, seen); err != nil {
				return fmt.Errorf("%s of %s: %w", op, d.Account, err)
			}
		}
		var old []byte
		err := t.tx.QueryRowContext(t.ctx, `SELECT data FROM usage WHERE day = ? AND account = ? AND created = ? AND function = ?`,
			day, d.Account, created, d.Function).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return t.s.dbErr(op, err)
		}
		data, err := store.AddHour(old, hour, d.Counters)
		if err != nil {
			return fmt.Errorf("%s of %s/%s: %w", op, d.Account, d.Function, err)
		}
		if _, err := t.exec(op, `INSERT INTO usage (day, account, created, function, rolled, data) VALUES (?, ?, ?, ?, 0, ?)
			ON CONFLICT (day, account, created, function) DO UPDATE SET data = excluded.data`, day, d.Account, created, d.Function, data); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Usage(q store.UsageQuery) ([]store.UsageDay, error) {
	const op = "read usage"
	from, to, cDay := q.Days()
	cAcct, cCreated, cFn := "", int64(0), ""
	if q.After != nil {
		cAcct, cCreated, cFn = string(q.After.Account), store.CreatedKey(q.After.Created), q.After.Function
	}
	limit := int64(-1)
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	// One account's rows come from the index on (account, day); the
	// fleet's from the primary key, in its order.
	where, args := `day >= ? AND day < ?`, []any{from, to}
	if q.Account != "" {
		where, args = `account = ? AND `+where, append([]any{q.Account}, args...)
	}
	if !q.Created.IsZero() {
		where, args = where+` AND created = ?`, append(args, store.CreatedKey(q.Created))
	}
	rows, err := t.tx.QueryContext(t.ctx, `SELECT day, account, created, function, data FROM usage
		WHERE `+where+` AND (day, account, created, function) > (?, ?, ?, ?)
		ORDER BY day, account, created, function LIMIT ?`,
		append(args, cDay, cAcct, cCreated, cFn, limit)...)
	if err != nil {
		return nil, t.s.dbErr(op, err)
	}
	defer rows.Close()
	var out []store.UsageDay
	for rows.Next() {
		var u store.UsageDay
		var day, created int64
		var data []byte
		if err := rows.Scan(&day, &u.Account, &created, &u.Function, &data); err != nil {
			return nil, t.s.dbErr(op, err)
		}
		u.Day, u.Created = store.DayTime(day), store.CreatedTime(created)
		if u.Hours, u.Total, err = store.DecodeUsage(data); err != nil {
			return nil, fmt.Errorf("%s of %s/%s on %s: %w", op, u.Account, u.Function, u.Day.Format(time.DateOnly), err)
		}
		out = append(out, u)
	}
	return out, t.s.dbErr(op, rows.Err())
}

func (t *tx) PruneUsage(hourlyBefore, dailyBefore time.Time) (rolled, deleted int64, err error) {
	if err := t.writable("prune usage"); err != nil {
		return 0, 0, err
	}
	rolled, deleted, err = store.PruneDays(func(dt store.DayTable) (int64, int64, error) { return t.prune(dt, hourlyBefore, dailyBefore) })
	if err != nil {
		return 0, 0, err
	}
	_, err = t.exec("forget purged accounts", `DELETE FROM purged_accounts WHERE deleted < ?`, micros(store.DayTime(store.DayNumber(dailyBefore))))
	return rolled, deleted, err
}

// prune applies PruneUsage's retention to the table of days dt: it deletes
// the days before dailyBefore and rolls each day before hourlyBefore that
// still holds hours up.
func (t *tx) prune(dt store.DayTable, hourlyBefore, dailyBefore time.Time) (rolled, deleted int64, err error) {
	op, table, key := dt.Op, dt.Name, dt.Key
	res, err := t.exec(op, `DELETE FROM `+table+` WHERE day < ?`, store.DayNumber(dailyBefore))
	if err != nil {
		return 0, 0, err
	}
	deleted, _ = res.RowsAffected()
	cols := strings.Join(key, ", ")
	rows, err := t.tx.QueryContext(t.ctx, `SELECT day, `+cols+`, data FROM `+table+` WHERE day < ? AND rolled = 0`, store.DayNumber(hourlyBefore))
	if err != nil {
		return 0, 0, t.s.dbErr(op, err)
	}
	var days []store.RolledDay
	for rows.Next() {
		d := store.NewRolledDay(len(key))
		if err := rows.Scan(d.Dest()...); err != nil {
			rows.Close()
			return 0, 0, t.s.dbErr(op, err)
		}
		days = append(days, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, t.s.dbErr(op, err)
	}
	match := strings.Join(key, " = ? AND ") + " = ?"
	for _, d := range days {
		data, err := dt.RollUp(d.Data)
		if err != nil {
			return 0, 0, fmt.Errorf("%s of %s: %w", op, d, err)
		}
		if _, err := t.exec(op, `UPDATE `+table+` SET rolled = 1, data = ? WHERE day = ? AND `+match, d.Args(data)...); err != nil {
			return 0, 0, err
		}
	}
	return int64(len(days)), deleted, nil
}
