package sqlite

import "github.com/silo-run/silo/store"

var _ store.Lister = (*tx)(nil)

// Journal lists intents with Seq > after in order, at most limit (0: all).
func (t *tx) Journal(after int64, limit int) ([]store.Intent, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := t.tx.QueryContext(t.ctx, `SELECT `+intentCols+` FROM intents WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, t.s.dbErr("list journal", err)
	}
	defer rows.Close()
	var out []store.Intent
	for rows.Next() {
		in, err := scanIntent(rows)
		if err != nil {
			return nil, t.s.dbErr("list journal", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.dbErr("list journal", err)
	}
	return out, nil
}

// Settings returns every setting by name.
func (t *tx) Settings() (map[string]string, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT name, value FROM settings`)
	if err != nil {
		return nil, t.s.dbErr("list settings", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return nil, t.s.dbErr("list settings", err)
		}
		out[n] = v
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.dbErr("list settings", err)
	}
	return out, nil
}
