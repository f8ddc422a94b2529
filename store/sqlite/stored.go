package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// ---- stored bytes ----

func (t *tx) SetStored(at time.Time, ss []store.StoredSample) error {
	const op = "set stored bytes"
	if err := t.writable(op); err != nil {
		return err
	}
	for _, s := range ss {
		if err := store.CheckStoredSample(s); err != nil {
			return err
		}
	}
	day, hour := store.DayNumber(at), at.UTC().Hour()
	seen := map[silo.AccountID]int64{}
	byAcct, err := store.StoredByAccount(ss, func(id silo.AccountID) (int64, error) { return store.CreatedOf(t, id, seen) })
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for _, as := range byAcct {
		acct, created := as[0].Account, store.CreatedKey(as[0].Created)
		var old []byte
		err := t.tx.QueryRowContext(t.ctx, `SELECT data FROM stored_usage WHERE day = ? AND account = ? AND created = ?`, day, acct, created).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return t.s.dbErr(op, err)
		}
		data, rolled, err := store.SetStoredHour(old, hour, as)
		if err != nil {
			return fmt.Errorf("%s of %s: %w", op, acct, err)
		}
		if _, err := t.exec(op, `INSERT INTO stored_usage (day, account, created, rolled, data) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (day, account, created) DO UPDATE SET rolled = excluded.rolled, data = excluded.data`, day, acct, created, rolled, data); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Stored(q store.UsageQuery) ([]store.StoredDay, error) {
	const op = "read stored bytes"
	from, to, cDay := q.Days()
	var after store.UsageCursor
	if q.After != nil {
		after = *q.After
	}
	// Each row holds one or more days (one per table or bucket); the
	// cursor's row may hold none past the cursor, so one row more than the
	// limit always holds enough.
	limit := int64(-1)
	if q.Limit > 0 {
		limit = int64(q.Limit) + 1
	}
	where, args := `day >= ? AND day < ?`, []any{from, to}
	if q.Account != "" {
		where, args = `account = ? AND `+where, append([]any{q.Account}, args...)
	}
	if !q.Created.IsZero() {
		where, args = where+` AND created = ?`, append(args, store.CreatedKey(q.Created))
	}
	rows, err := t.tx.QueryContext(t.ctx, `SELECT day, account, created, data FROM stored_usage
		WHERE `+where+` AND (day, account, created) >= (?, ?, ?)
		ORDER BY day, account, created LIMIT ?`,
		append(args, cDay, string(after.Account), store.CreatedKey(after.Created), limit)...)
	if err != nil {
		return nil, t.s.dbErr(op, err)
	}
	defer rows.Close()
	var out []store.StoredDay
	for rows.Next() && (q.Limit <= 0 || len(out) < q.Limit) {
		var day, created int64
		var acct string
		var data []byte
		if err := rows.Scan(&day, &acct, &created, &data); err != nil {
			return nil, t.s.dbErr(op, err)
		}
		if out, err = store.AppendStored(out, data, silo.AccountID(acct), store.CreatedTime(created), store.DayTime(day), q.After, q.Limit); err != nil {
			return nil, fmt.Errorf("%s of %s on %s: %w", op, acct, store.DayTime(day).Format(time.DateOnly), err)
		}
	}
	return out, t.s.dbErr(op, rows.Err())
}
