package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// ---- resources ----

func (t *tx) accountExists(id silo.AccountID, op string) error {
	var one int
	err := t.tx.QueryRowContext(t.ctx, `SELECT 1 FROM accounts WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.NotFoundAccount(id)
	}
	return t.s.dbErr(op, err)
}

func (t *tx) Resources(id silo.AccountID) ([]silo.Resource, error) {
	op := "list resources of " + string(id)
	if err := t.accountExists(id, op); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx, `SELECT type, name, spec, hash FROM resources WHERE account = ?`, id)
	if err != nil {
		return nil, t.s.dbErr(op, err)
	}
	defer rows.Close()
	var out []silo.Resource
	for rows.Next() {
		var r silo.Resource
		var spec []byte
		if err := rows.Scan(&r.Type, &r.Name, &spec, &r.Hash); err != nil {
			return nil, t.s.dbErr(op, err)
		}
		if len(spec) > 0 {
			r.Spec = json.RawMessage(spec)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.dbErr(op, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

func (t *tx) PutResource(id silo.AccountID, r silo.Resource) error {
	op := "record resource " + r.Key() + " of " + string(id)
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.PrepareResource(id, &r); err != nil {
		return err
	}
	if err := t.accountExists(id, op); err != nil {
		return err
	}
	var spec []byte
	if len(r.Spec) > 0 {
		spec = r.Spec
	}
	_, err := t.exec(op, `INSERT INTO resources (account, type, name, spec, hash) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (account, type, name) DO UPDATE SET spec = excluded.spec, hash = excluded.hash`,
		id, r.Type, r.Name, spec, r.Hash)
	return err
}

func (t *tx) DeleteResource(id silo.AccountID, typ silo.ResourceType, name string) error {
	op := "forget resource " + string(typ) + "/" + name + " of " + string(id)
	if err := t.writable(op); err != nil {
		return err
	}
	_, err := t.exec(op, `DELETE FROM resources WHERE account = ? AND type = ? AND name = ?`, id, typ, name)
	return err
}

// ---- intents ----

const intentCols = `seq, key, account, action, change, state, error, created, updated`

func scanIntent(r scanner) (store.Intent, error) {
	var in store.Intent
	var change sql.NullString
	var created, updated int64
	if err := r.Scan(&in.Seq, &in.Key, &in.Account, &in.Action, &change, &in.State, &in.Error, &created, &updated); err != nil {
		return in, err
	}
	if change.Valid && change.String != "" {
		in.Change = new(silo.Change)
		if err := json.Unmarshal([]byte(change.String), in.Change); err != nil {
			return in, fmt.Errorf("decode change of intent %d: %w", in.Seq, err)
		}
	}
	in.Created, in.Updated = fromMicros(created), fromMicros(updated)
	return in, nil
}

func (t *tx) AddIntent(in store.Intent) (int64, error) {
	op := "journal intent " + in.Key
	if err := t.writable(op); err != nil {
		return 0, err
	}
	if err := store.PrepareIntent(&in, now()); err != nil {
		return 0, err
	}
	var change any
	if in.Change != nil {
		b, err := json.Marshal(in.Change)
		if err != nil {
			return 0, fmt.Errorf("%s: encode change: %w", op, err)
		}
		change = string(b)
	}
	var seq int64
	err := t.tx.QueryRowContext(t.ctx, `INSERT INTO intents (key, account, action, change, state, error, created, updated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING seq`,
		in.Key, in.Account, in.Action, change, in.State, in.Error, micros(in.Created), micros(in.Updated)).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, silo.Errorf(silo.CodeConflict, "an intent with key %q is already journaled", in.Key)
	}
	if err != nil {
		return 0, t.s.dbErr(op, err)
	}
	return seq, nil
}

func (t *tx) FinishIntent(seq int64, state store.IntentState, errText string) error {
	op := fmt.Sprintf("finish intent %d", seq)
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.CheckFinish(seq, state); err != nil {
		return err
	}
	res, err := t.exec(op, `UPDATE intents SET state = ?, error = ?, updated = ? WHERE seq = ?`, state, errText, micros(now()), seq)
	if err != nil {
		return err
	}
	if affected(res) != 1 {
		return silo.Errorf(silo.CodeNotFound, "intent %d not found", seq)
	}
	return nil
}

func (t *tx) TouchIntents(seqs []int64, at time.Time) error {
	op := "touch pending intents"
	if err := t.writable(op); err != nil {
		return err
	}
	for _, seq := range seqs {
		if _, err := t.exec(op, `UPDATE intents SET updated = ? WHERE seq = ? AND state = 'pending'`, micros(at), seq); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) PendingIntents() ([]store.Intent, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT `+intentCols+` FROM intents WHERE state = 'pending' ORDER BY seq`)
	if err != nil {
		return nil, t.s.dbErr("list pending intents", err)
	}
	defer rows.Close()
	var out []store.Intent
	for rows.Next() {
		in, err := scanIntent(rows)
		if err != nil {
			return nil, t.s.dbErr("list pending intents", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.dbErr("list pending intents", err)
	}
	return out, nil
}

func (t *tx) IntentByKey(k string) (store.Intent, error) {
	in, err := scanIntent(t.tx.QueryRowContext(t.ctx, `SELECT `+intentCols+` FROM intents WHERE key = ?`, k))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Intent{}, silo.Errorf(silo.CodeNotFound, "intent %q not found", k)
	}
	if err != nil {
		return store.Intent{}, t.s.dbErr("read intent "+k, err)
	}
	return in, nil
}
