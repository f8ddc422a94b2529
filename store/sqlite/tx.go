package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// tx implements store.Tx on one *sql.Tx. It lives only for the duration of a
// View or Update call, which is why it carries that call's context.
type tx struct {
	s        *Store
	ctx      context.Context
	tx       *sql.Tx
	readOnly bool
}

var _ store.Tx = (*tx)(nil)

func (t *tx) exec(op, q string, args ...any) (sql.Result, error) {
	res, err := t.tx.ExecContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.s.dbErr(op, err)
	}
	return res, nil
}

// writable refuses writes inside View.
func (t *tx) writable(op string) error {
	if t.readOnly {
		return silo.Errorf(silo.CodeInternal, "%s: cannot write in a read-only transaction (use Update, not View)", op)
	}
	return nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func microsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromMicrosPtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func affected(res sql.Result) int64 {
	n, err := res.RowsAffected()
	if err != nil {
		return -1
	}
	return n
}

// ---- settings ----

func (t *tx) Setting(name string) (string, error) {
	var v string
	err := t.tx.QueryRowContext(t.ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", silo.Errorf(silo.CodeNotFound, "setting %q is not set", name)
	}
	if err != nil {
		return "", t.s.dbErr("read setting "+name, err)
	}
	return v, nil
}

func (t *tx) PutSetting(name, value string) error {
	op := "store setting " + name
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.CheckSetting(name); err != nil {
		return err
	}
	_, err := t.exec(op, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}
