package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// tx implements store.Tx on one pgx.Tx. It lives only for the duration of a
// View or Update call, which is why it carries that call's context.
type tx struct {
	ctx      context.Context
	tx       pgx.Tx
	readOnly bool
	// mustRetry is set when a statement failed to serialize: the
	// transaction is dead and Update runs fn again, whatever fn returned.
	mustRetry bool
	// wrote is set once a statement changed a row: an Update that would
	// create silo's tables commits only then.
	wrote bool
}

var _ store.Tx = (*tx)(nil)

func (t *tx) err(op string, err error) error {
	if err == nil {
		return nil
	}
	if retryable(err) {
		t.mustRetry = true
	}
	return dbErr(op, err)
}

func (t *tx) exec(op, q string, args ...any) (pgconn.CommandTag, error) {
	tag, err := t.tx.Exec(t.ctx, q, args...)
	if err == nil && tag.RowsAffected() > 0 {
		t.wrote = true
	}
	return tag, t.err(op, err)
}

func (t *tx) queryRow(q string, args ...any) pgx.Row { return t.tx.QueryRow(t.ctx, q, args...) }

// writable refuses writes inside View.
func (t *tx) writable(op string) error {
	if t.readOnly {
		return silo.Errorf(silo.CodeInternal, "%s: cannot write in a read-only transaction (use Update, not View)", op)
	}
	return nil
}

// ts is the form in which times are stored: UTC, truncated to microseconds
// (PostgreSQL would round).
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func tsPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := ts(*t)
	return &v
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

func now() time.Time { return ts(time.Now()) }

// ---- settings ----

func (t *tx) Setting(name string) (string, error) {
	var v string
	err := t.queryRow(`SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", silo.Errorf(silo.CodeNotFound, "setting %q is not set", name)
	}
	if err != nil {
		return "", t.err("read setting "+name, err)
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
	_, err := t.exec(op, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}
