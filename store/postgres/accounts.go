package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

const accountCols = `id, kind, name, params, state, release, stack_hash, created, updated, expires, version`

func scanAccount(r pgx.Row) (silo.Account, error) {
	var a silo.Account
	var id, kind, state string
	var params []byte
	if err := r.Scan(&id, &kind, &a.Name, &params, &state, &a.Release, &a.StackHash, &a.Created, &a.Updated, &a.Expires, &a.Version); err != nil {
		return a, err
	}
	a.ID, a.Kind, a.State = silo.AccountID(id), silo.Kind(kind), silo.State(state)
	if len(params) > 0 {
		if err := json.Unmarshal(params, &a.Params); err != nil {
			return a, fmt.Errorf("decode params of account %s: %w", a.ID, err)
		}
	}
	a.Created, a.Updated, a.Expires = a.Created.UTC(), a.Updated.UTC(), utcPtr(a.Expires)
	return a, nil
}

// encodeParams returns the JSON of p, or nil (SQL NULL) when it is empty.
func encodeParams(p map[string]string) ([]byte, error) {
	if len(p) == 0 {
		return nil, nil
	}
	return json.Marshal(p)
}

func (t *tx) Account(id silo.AccountID) (silo.Account, error) {
	a, err := scanAccount(t.queryRow(`SELECT `+accountCols+` FROM accounts WHERE id = $1`, string(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return silo.Account{}, store.NotFoundAccount(id)
	}
	if err != nil {
		return silo.Account{}, t.err("read account "+string(id), err)
	}
	return a, nil
}

// where builds the WHERE clause of f. An explicit State filter wins over
// IncludeDeleted: State: deleted lists deleted accounts.
func where(f store.Filter) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Kind != "" {
		conds = append(conds, "kind = "+arg(string(f.Kind)))
	}
	if f.State != "" {
		conds = append(conds, "state = "+arg(string(f.State)))
	}
	if f.ExcludesDeleted() {
		conds = append(conds, "state <> 'deleted'")
	}
	if f.After != "" {
		conds = append(conds, "id > "+arg(string(f.After)))
	}
	if f.Limit > 0 {
		arg(f.Limit) // used by the caller as the last parameter
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func limit(f store.Filter, args []any) string {
	if f.Limit > 0 {
		return " LIMIT $" + strconv.Itoa(len(args))
	}
	return ""
}

func (t *tx) Accounts(f store.Filter) ([]silo.Account, error) {
	w, args := where(f)
	rows, err := t.tx.Query(t.ctx, `SELECT `+accountCols+` FROM accounts`+w+` ORDER BY id`+limit(f, args), args...)
	if err != nil {
		return nil, t.err("list accounts", err)
	}
	defer rows.Close()
	var out []silo.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, t.err("list accounts", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, t.err("list accounts", err)
	}
	return out, nil
}

func (t *tx) CountAccounts(f store.Filter) (int, error) {
	w, args := where(f)
	q := `SELECT count(*) FROM accounts` + w
	if f.Limit > 0 {
		q = `SELECT count(*) FROM (SELECT 1 FROM accounts` + w + ` ORDER BY id` + limit(f, args) + `) AS page`
	}
	var n int
	if err := t.queryRow(q, args...).Scan(&n); err != nil {
		return 0, t.err("count accounts", err)
	}
	return n, nil
}

func (t *tx) CreateAccount(a silo.Account) error {
	op := "create account " + string(a.ID)
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.PrepareAccount(&a, now()); err != nil {
		return err
	}
	params, err := encodeParams(a.Params)
	if err != nil {
		return fmt.Errorf("%s: encode params: %w", op, err)
	}
	// ON CONFLICT DO NOTHING covers the primary key and the production
	// index without aborting the transaction.
	tag, err := t.exec(op, `INSERT INTO accounts (`+accountCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1) ON CONFLICT DO NOTHING`,
		string(a.ID), string(a.Kind), a.Name, params, string(a.State), a.Release, a.StackHash, ts(a.Created), ts(a.Updated), tsPtr(a.Expires))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	err = t.queryRow(`SELECT 1 FROM accounts WHERE id = $1`, string(a.ID)).Scan(&one)
	switch {
	case err == nil:
		return silo.Errorf(silo.CodeConflict, "account %q already exists (IDs are never reused until the account is purged); choose another ID", a.ID)
	case !errors.Is(err, pgx.ErrNoRows):
		return t.err(op, err)
	}
	var prod string
	if err := t.queryRow(`SELECT id FROM accounts WHERE kind = 'production'`).Scan(&prod); err == nil && a.Kind == silo.KindProduction {
		return silo.Errorf(silo.CodeConflict, "cannot create production account %q: account %q is already the production account, and there is exactly one", a.ID, prod)
	}
	return silo.Errorf(silo.CodeConflict, "account %q conflicts with an existing account", a.ID)
}

func (t *tx) UpdateAccount(a silo.Account) error {
	op := "update account " + string(a.ID)
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.CheckAccount(a); err != nil {
		return err
	}
	if a.Kind == silo.KindProduction {
		// Checked first so that the unique index does not abort the
		// transaction; the index still backs it up under races.
		var prod string
		err := t.queryRow(`SELECT id FROM accounts WHERE kind = 'production' AND id <> $1`, string(a.ID)).Scan(&prod)
		if err == nil {
			return silo.Errorf(silo.CodeConflict, "cannot make account %q the production account: %q is, and there is exactly one", a.ID, prod)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return t.err(op, err)
		}
	}
	params, err := encodeParams(a.Params)
	if err != nil {
		return fmt.Errorf("%s: encode params: %w", op, err)
	}
	tag, err := t.exec(op,
		`UPDATE accounts SET kind = $1, name = $2, params = $3, state = $4, release = $5, stack_hash = $6, updated = $7, expires = $8, version = version + 1
		 WHERE id = $9 AND version = $10`,
		string(a.Kind), a.Name, params, string(a.State), a.Release, a.StackHash, ts(a.Updated), tsPtr(a.Expires), string(a.ID), a.Version)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var v int64
	err = t.queryRow(`SELECT version FROM accounts WHERE id = $1`, string(a.ID)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.NotFoundAccount(a.ID)
	}
	if err != nil {
		return t.err(op, err)
	}
	return silo.Errorf(silo.CodeConflict, "account %q was changed concurrently (stored version %d, yours %d); read it again and retry", a.ID, v, a.Version)
}

func (t *tx) PurgeAccount(id silo.AccountID) error {
	op := "purge account " + string(id)
	if err := t.writable(op); err != nil {
		return err
	}
	a, err := t.Account(id)
	if err != nil {
		return err
	}
	if err := store.CheckPurge(a); err != nil {
		return err
	}
	// Resources, keys, the limit override and schedule claims go with it
	// (ON DELETE CASCADE). Its usage and stored bytes stay, under its
	// creation time, with the account as it was, to bill.
	if err := t.PutPurgedAccount(a); err != nil {
		return err
	}
	if _, err := t.exec(op, `DELETE FROM release_metrics WHERE account = $1`, string(id)); err != nil {
		return err
	}
	_, err = t.exec(op, `DELETE FROM accounts WHERE id = $1`, string(id))
	return err
}

func (t *tx) PutPurgedAccount(a silo.Account) error {
	op := "keep the usage of account " + string(a.ID)
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.CheckAccount(a); err != nil {
		return err
	}
	params, err := encodeParams(a.Params)
	if err != nil {
		return fmt.Errorf("%s: encode params: %w", op, err)
	}
	_, err = t.exec(op, `INSERT INTO purged_accounts (id, created, deleted, kind, name, params) VALUES ($1, $2, $3, $4, $5, $6)`,
		string(a.ID), a.Created, a.Updated, string(a.Kind), a.Name, params)
	return err
}

func (t *tx) PurgedAccounts(id silo.AccountID) ([]silo.Account, error) {
	const op = "list purged accounts"
	q, args := `SELECT id, created, deleted, kind, name, params FROM purged_accounts`, []any{}
	if id != "" {
		q, args = q+` WHERE id = $1`, append(args, string(id))
	}
	rows, err := t.tx.Query(t.ctx, q+` ORDER BY id, created`, args...)
	if err != nil {
		return nil, t.err(op, err)
	}
	defer rows.Close()
	var out []silo.Account
	for rows.Next() {
		a := silo.Account{State: silo.StateDeleted}
		var id, kind string
		var params []byte
		if err := rows.Scan(&id, &a.Created, &a.Updated, &kind, &a.Name, &params); err != nil {
			return nil, t.err(op, err)
		}
		a.ID, a.Kind, a.Created, a.Updated = silo.AccountID(id), silo.Kind(kind), a.Created.UTC(), a.Updated.UTC()
		if len(params) > 0 {
			if err := json.Unmarshal(params, &a.Params); err != nil {
				return nil, fmt.Errorf("decode params of purged account %s: %w", a.ID, err)
			}
		}
		out = append(out, a)
	}
	return out, t.err(op, rows.Err())
}
