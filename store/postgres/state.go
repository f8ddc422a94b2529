package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// ---- resources ----

func (t *tx) accountExists(id silo.AccountID, op string) error {
	var one int
	err := t.queryRow(`SELECT 1 FROM accounts WHERE id = $1`, string(id)).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.NotFoundAccount(id)
	}
	return t.err(op, err)
}

func (t *tx) Resources(id silo.AccountID) ([]silo.Resource, error) {
	op := "list resources of " + string(id)
	if err := t.accountExists(id, op); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx, `SELECT type, name, spec, hash FROM resources WHERE account = $1`, string(id))
	if err != nil {
		return nil, t.err(op, err)
	}
	defer rows.Close()
	var out []silo.Resource
	for rows.Next() {
		var r silo.Resource
		var typ string
		var spec []byte
		if err := rows.Scan(&typ, &r.Name, &spec, &r.Hash); err != nil {
			return nil, t.err(op, err)
		}
		r.Type = silo.ResourceType(typ)
		if len(spec) > 0 {
			r.Spec = json.RawMessage(spec)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, t.err(op, err)
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
	_, err := t.exec(op, `INSERT INTO resources (account, type, name, spec, hash) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account, type, name) DO UPDATE SET spec = excluded.spec, hash = excluded.hash`,
		string(id), string(r.Type), r.Name, spec, r.Hash)
	return err
}

func (t *tx) DeleteResource(id silo.AccountID, typ silo.ResourceType, name string) error {
	op := "forget resource " + string(typ) + "/" + name + " of " + string(id)
	if err := t.writable(op); err != nil {
		return err
	}
	_, err := t.exec(op, `DELETE FROM resources WHERE account = $1 AND type = $2 AND name = $3`, string(id), string(typ), name)
	return err
}

// ---- intents ----

const intentCols = `seq, key, account, action, change, state, error, created, updated`

func scanIntent(r pgx.Row) (store.Intent, error) {
	var in store.Intent
	var account, state string
	var change []byte
	if err := r.Scan(&in.Seq, &in.Key, &account, &in.Action, &change, &state, &in.Error, &in.Created, &in.Updated); err != nil {
		return in, err
	}
	in.Account, in.State = silo.AccountID(account), store.IntentState(state)
	if len(change) > 0 {
		in.Change = new(silo.Change)
		if err := json.Unmarshal(change, in.Change); err != nil {
			return in, fmt.Errorf("decode change of intent %d: %w", in.Seq, err)
		}
	}
	in.Created, in.Updated = in.Created.UTC(), in.Updated.UTC()
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
	var change []byte
	if in.Change != nil {
		b, err := json.Marshal(in.Change)
		if err != nil {
			return 0, fmt.Errorf("%s: encode change: %w", op, err)
		}
		change = b
	}
	var seq int64
	err := t.queryRow(`INSERT INTO intents (key, account, action, change, state, error, created, updated)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING RETURNING seq`,
		in.Key, string(in.Account), in.Action, change, string(in.State), in.Error, ts(in.Created), ts(in.Updated)).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, silo.Errorf(silo.CodeConflict, "an intent with key %q is already journaled", in.Key)
	}
	if err != nil {
		return 0, t.err(op, err)
	}
	t.wrote = true
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
	tag, err := t.exec(op, `UPDATE intents SET state = $1, error = $2, updated = $3 WHERE seq = $4`, string(state), errText, now(), seq)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return silo.Errorf(silo.CodeNotFound, "intent %d not found", seq)
	}
	return nil
}

func (t *tx) TouchIntents(seqs []int64, at time.Time) error {
	op := "touch pending intents"
	if err := t.writable(op); err != nil {
		return err
	}
	if len(seqs) == 0 {
		return nil
	}
	_, err := t.exec(op, `UPDATE intents SET updated = $1 WHERE seq = ANY($2) AND state = 'pending'`, ts(at), seqs)
	return err
}

func (t *tx) PendingIntents() ([]store.Intent, error) {
	rows, err := t.tx.Query(t.ctx, `SELECT `+intentCols+` FROM intents WHERE state = 'pending' ORDER BY seq`)
	if err != nil {
		return nil, t.err("list pending intents", err)
	}
	defer rows.Close()
	var out []store.Intent
	for rows.Next() {
		in, err := scanIntent(rows)
		if err != nil {
			return nil, t.err("list pending intents", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, t.err("list pending intents", err)
	}
	return out, nil
}

func (t *tx) IntentByKey(k string) (store.Intent, error) {
	in, err := scanIntent(t.queryRow(`SELECT `+intentCols+` FROM intents WHERE key = $1`, k))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Intent{}, silo.Errorf(silo.CodeNotFound, "intent %q not found", k)
	}
	if err != nil {
		return store.Intent{}, t.err("read intent "+k, err)
	}
	return in, nil
}
