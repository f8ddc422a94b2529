package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

const accountCols = `id, kind, name, params, state, release, stack_hash, created, updated, expires, version`

type scanner interface{ Scan(...any) error }

func scanAccount(r scanner) (silo.Account, error) {
	var a silo.Account
	var params string
	var created, updated int64
	var expires sql.NullInt64
	if err := r.Scan(&a.ID, &a.Kind, &a.Name, &params, &a.State, &a.Release, &a.StackHash, &created, &updated, &expires, &a.Version); err != nil {
		return a, err
	}
	if params != "" {
		var err error
		if a.Params, err = decodeParams(params); err != nil {
			return a, fmt.Errorf("decode params of account %s: %w", a.ID, err)
		}
	}
	a.Created, a.Updated, a.Expires = fromMicros(created), fromMicros(updated), fromMicrosPtr(expires)
	return a, nil
}

// decodeParams decodes the JSON object encodeParams wrote. Listing every
// account decodes one per row, so simple objects (no escapes) take a fast
// path; anything else goes through encoding/json.
func decodeParams(s string) (map[string]string, error) {
	if m, ok := decodeSimple(s); ok {
		return m, nil
	}
	var m map[string]string
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}

// decodeSimple parses {"k":"v",...} with no whitespace and no escapes, as
// json.Marshal writes it for plain strings; ok is false for anything else.
func decodeSimple(s string) (m map[string]string, ok bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || !utf8.ValidString(s) {
		return nil, false
	}
	str := func(i int) (string, int, bool) { // s[i] must be '"'
		if i >= len(s) || s[i] != '"' {
			return "", 0, false
		}
		for j := i + 1; j < len(s); j++ {
			switch c := s[j]; {
			case c == '"':
				return s[i+1 : j], j + 1, true
			case c == '\\' || c < 0x20:
				return "", 0, false
			}
		}
		return "", 0, false
	}
	m = make(map[string]string, 4)
	i := 1
	if s[i] == '}' {
		return m, i == len(s)-1
	}
	for {
		k, j, ok := str(i)
		if !ok || j >= len(s) || s[j] != ':' {
			return nil, false
		}
		v, j, ok := str(j + 1)
		if !ok || j >= len(s) {
			return nil, false
		}
		m[k] = v
		switch s[j] {
		case ',':
			i = j + 1
		case '}':
			return m, j == len(s)-1
		default:
			return nil, false
		}
	}
}

func encodeParams(p map[string]string) (string, error) {
	if len(p) == 0 {
		return "", nil
	}
	b, err := json.Marshal(p)
	return string(b), err
}

func (t *tx) Account(id silo.AccountID) (silo.Account, error) {
	a, err := scanAccount(t.tx.QueryRowContext(t.ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return silo.Account{}, store.NotFoundAccount(id)
	}
	if err != nil {
		return silo.Account{}, t.s.dbErr("read account "+string(id), err)
	}
	return a, nil
}

// where builds the WHERE clause of f. An explicit State filter wins over
// IncludeDeleted: State: deleted lists deleted accounts.
func where(f store.Filter) (string, []any) {
	var conds []string
	var args []any
	if f.Kind != "" {
		conds = append(conds, "kind = ?")
		args = append(args, f.Kind)
	}
	if f.State != "" {
		conds = append(conds, "state = ?")
		args = append(args, f.State)
	}
	if f.ExcludesDeleted() {
		conds = append(conds, "state <> 'deleted'")
	}
	if f.After != "" {
		conds = append(conds, "id > ?")
		args = append(args, f.After)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func (t *tx) Accounts(f store.Filter) ([]silo.Account, error) {
	w, args := where(f)
	q := `SELECT ` + accountCols + ` FROM accounts` + w + ` ORDER BY id`
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.s.dbErr("list accounts", err)
	}
	defer rows.Close()
	var out []silo.Account
	if f.Limit > 0 {
		out = make([]silo.Account, 0, f.Limit)
	}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, t.s.dbErr("list accounts", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.dbErr("list accounts", err)
	}
	return out, nil
}

func (t *tx) CountAccounts(f store.Filter) (int, error) {
	w, args := where(f)
	q := `SELECT count(*) FROM accounts` + w
	if f.Limit > 0 {
		q = `SELECT count(*) FROM (SELECT 1 FROM accounts` + w + ` ORDER BY id LIMIT ?)`
		args = append(args, f.Limit)
	}
	var n int
	if err := t.tx.QueryRowContext(t.ctx, q, args...).Scan(&n); err != nil {
		return 0, t.s.dbErr("count accounts", err)
	}
	return n, nil
}

func (t *tx) CreateAccount(a silo.Account) error {
	if err := t.writable("create account"); err != nil {
		return err
	}
	if err := store.PrepareAccount(&a, now()); err != nil {
		return err
	}
	params, err := encodeParams(a.Params)
	if err != nil {
		return fmt.Errorf("create account %s: encode params: %w", a.ID, err)
	}
	res, err := t.exec("create account "+string(a.ID),
		`INSERT INTO accounts (`+accountCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT DO NOTHING`,
		a.ID, a.Kind, a.Name, params, a.State, a.Release, a.StackHash, micros(a.Created), micros(a.Updated), microsPtr(a.Expires))
	if err != nil {
		return err
	}
	if affected(res) == 1 {
		return nil
	}
	return t.createConflict(a)
}

// createConflict explains why inserting a was refused.
func (t *tx) createConflict(a silo.Account) error {
	var one int
	err := t.tx.QueryRowContext(t.ctx, `SELECT 1 FROM accounts WHERE id = ?`, a.ID).Scan(&one)
	switch {
	case err == nil:
		return silo.Errorf(silo.CodeConflict, "account %q already exists (IDs are never reused until the account is purged); choose another ID", a.ID)
	case !errors.Is(err, sql.ErrNoRows):
		return t.s.dbErr("create account "+string(a.ID), err)
	}
	var prod silo.AccountID
	err = t.tx.QueryRowContext(t.ctx, `SELECT id FROM accounts WHERE kind = 'production'`).Scan(&prod)
	if err == nil && a.Kind == silo.KindProduction {
		return silo.Errorf(silo.CodeConflict, "cannot create production account %q: account %q is already the production account, and there is exactly one", a.ID, prod)
	}
	return silo.Errorf(silo.CodeConflict, "account %q conflicts with an existing account", a.ID)
}

func (t *tx) UpdateAccount(a silo.Account) error {
	if err := t.writable("update account"); err != nil {
		return err
	}
	if err := store.CheckAccount(a); err != nil {
		return err
	}
	params, err := encodeParams(a.Params)
	if err != nil {
		return fmt.Errorf("update account %s: encode params: %w", a.ID, err)
	}
	res, err := t.tx.ExecContext(t.ctx,
		`UPDATE accounts SET kind = ?, name = ?, params = ?, state = ?, release = ?, stack_hash = ?, updated = ?, expires = ?, version = version + 1
		 WHERE id = ? AND version = ?`,
		a.Kind, a.Name, params, a.State, a.Release, a.StackHash, micros(a.Updated), microsPtr(a.Expires), a.ID, a.Version)
	if code(err) == 19 { // SQLITE_CONSTRAINT: the production index
		return silo.Errorf(silo.CodeConflict, "cannot make account %q the production account: there is one already", a.ID)
	}
	if err != nil {
		return t.s.dbErr("update account "+string(a.ID), err)
	}
	if affected(res) == 1 {
		return nil
	}
	var v int64
	err = t.tx.QueryRowContext(t.ctx, `SELECT version FROM accounts WHERE id = ?`, a.ID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return store.NotFoundAccount(a.ID)
	}
	if err != nil {
		return t.s.dbErr("update account "+string(a.ID), err)
	}
	return silo.Errorf(silo.CodeConflict, "account %q was changed concurrently (stored version %d, yours %d); read it again and retry", a.ID, v, a.Version)
}

func (t *tx) PurgeAccount(id silo.AccountID) error {
	if err := t.writable("purge account"); err != nil {
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
	if _, err := t.exec("purge the request metrics of account "+string(id), `DELETE FROM release_metrics WHERE account = ?`, id); err != nil {
		return err
	}
	_, err = t.exec("purge account "+string(id), `DELETE FROM accounts WHERE id = ?`, id)
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
	_, err = t.exec(op, `INSERT INTO purged_accounts (id, created, deleted, kind, name, params) VALUES (?, ?, ?, ?, ?, ?)`,
		a.ID, micros(a.Created), micros(a.Updated), a.Kind, a.Name, params)
	return err
}

func (t *tx) PurgedAccounts(id silo.AccountID) ([]silo.Account, error) {
	const op = "list purged accounts"
	q, args := `SELECT id, created, deleted, kind, name, params FROM purged_accounts`, []any{}
	if id != "" {
		q, args = q+` WHERE id = ?`, append(args, id)
	}
	rows, err := t.tx.QueryContext(t.ctx, q+` ORDER BY id, created`, args...)
	if err != nil {
		return nil, t.s.dbErr(op, err)
	}
	defer rows.Close()
	var out []silo.Account
	for rows.Next() {
		a := silo.Account{State: silo.StateDeleted}
		var created, deleted int64
		var params string
		if err := rows.Scan(&a.ID, &created, &deleted, &a.Kind, &a.Name, &params); err != nil {
			return nil, t.s.dbErr(op, err)
		}
		if params != "" {
			if a.Params, err = decodeParams(params); err != nil {
				return nil, fmt.Errorf("decode params of purged account %s: %w", a.ID, err)
			}
		}
		a.Created, a.Updated = fromMicros(created), fromMicros(deleted)
		out = append(out, a)
	}
	return out, t.s.dbErr(op, rows.Err())
}
