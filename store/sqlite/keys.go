package sqlite

import (
	"database/sql"
	"errors"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func scanKey(r scanner) (store.APIKey, error) {
	var k store.APIKey
	var created int64
	var revoked sql.NullInt64
	if err := r.Scan(&k.ID, &k.Account, &k.Hash, &k.Name, &created, &revoked); err != nil {
		return k, err
	}
	k.Created, k.Revoked = fromMicros(created), fromMicrosPtr(revoked)
	return k, nil
}

func (t *tx) PutKey(k store.APIKey) error {
	op := "store key " + k.ID
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.PrepareKey(&k, now()); err != nil {
		return err
	}
	if err := t.accountExists(k.Account, op); err != nil {
		return err
	}
	// Only the name and the revocation of an existing key may change.
	res, err := t.exec(op, `INSERT INTO api_keys (id, account, hash, name, created, revoked) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, revoked = excluded.revoked
		WHERE api_keys.account = excluded.account AND api_keys.hash = excluded.hash`,
		k.ID, k.Account, k.Hash, k.Name, micros(k.Created), microsPtr(k.Revoked))
	if err != nil {
		return err
	}
	if affected(res) != 1 {
		return silo.Errorf(silo.CodeConflict, "an API key with ID %q already exists for another account or secret; issue a new key", k.ID)
	}
	return nil
}

func (t *tx) Key(id string) (store.APIKey, error) {
	k, err := scanKey(t.tx.QueryRowContext(t.ctx, `SELECT id, account, hash, name, created, revoked FROM api_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.APIKey{}, silo.Errorf(silo.CodeNotFound, "API key %q not found", id)
	}
	if err != nil {
		return store.APIKey{}, t.s.dbErr("read key "+id, err)
	}
	return k, nil
}

func (t *tx) Keys(account silo.AccountID) ([]store.APIKey, error) {
	op := "list keys of " + string(account)
	rows, err := t.tx.QueryContext(t.ctx, `SELECT id, account, hash, name, created, revoked FROM api_keys WHERE account = ? ORDER BY created DESC, id DESC`, account)
	if err != nil {
		return nil, t.s.dbErr(op, err)
	}
	defer rows.Close()
	var out []store.APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, t.s.dbErr(op, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.dbErr(op, err)
	}
	return out, nil
}

func (t *tx) DeleteKey(id string) error {
	op := "delete key " + id
	if err := t.writable(op); err != nil {
		return err
	}
	res, err := t.exec(op, `DELETE FROM api_keys WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		return silo.Errorf(silo.CodeNotFound, "API key %q not found", id)
	}
	return nil
}
