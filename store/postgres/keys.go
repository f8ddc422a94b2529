package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func scanKey(r pgx.Row) (store.APIKey, error) {
	var k store.APIKey
	var account string
	if err := r.Scan(&k.ID, &account, &k.Hash, &k.Name, &k.Created, &k.Revoked); err != nil {
		return k, err
	}
	k.Account = silo.AccountID(account)
	k.Created, k.Revoked = k.Created.UTC(), utcPtr(k.Revoked)
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
	tag, err := t.exec(op, `INSERT INTO api_keys (id, account, hash, name, created, revoked) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, revoked = excluded.revoked
		WHERE api_keys.account = excluded.account AND api_keys.hash = excluded.hash`,
		k.ID, string(k.Account), k.Hash, k.Name, ts(k.Created), tsPtr(k.Revoked))
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return silo.Errorf(silo.CodeConflict, "an API key with ID %q already exists for another account or secret; issue a new key", k.ID)
	}
	return nil
}

func (t *tx) Key(id string) (store.APIKey, error) {
	k, err := scanKey(t.queryRow(`SELECT id, account, hash, name, created, revoked FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.APIKey{}, silo.Errorf(silo.CodeNotFound, "API key %q not found", id)
	}
	if err != nil {
		return store.APIKey{}, t.err("read key "+id, err)
	}
	return k, nil
}

func (t *tx) Keys(account silo.AccountID) ([]store.APIKey, error) {
	op := "list keys of " + string(account)
	rows, err := t.tx.Query(t.ctx, `SELECT id, account, hash, name, created, revoked FROM api_keys WHERE account = $1 ORDER BY created DESC, id DESC`, string(account))
	if err != nil {
		return nil, t.err(op, err)
	}
	defer rows.Close()
	var out []store.APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, t.err(op, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, t.err(op, err)
	}
	return out, nil
}

func (t *tx) DeleteKey(id string) error {
	op := "delete key " + id
	if err := t.writable(op); err != nil {
		return err
	}
	res, err := t.exec(op, `DELETE FROM api_keys WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if res.RowsAffected() == 0 {
		return silo.Errorf(silo.CodeNotFound, "API key %q not found", id)
	}
	return nil
}
