package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
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

// ---- accounts ----

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
	// Resources, keys and the limit override go with it (ON DELETE
	// CASCADE); usage rows have no foreign key, so they are deleted here.
	if _, err := t.exec(op, `DELETE FROM usage WHERE account = $1`, string(id)); err != nil {
		return err
	}
	_, err = t.exec(op, `DELETE FROM accounts WHERE id = $1`, string(id))
	return err
}

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

// ---- API keys ----

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

// ---- releases ----

func scanRelease(r pgx.Row) (store.Release, error) {
	var rel store.Release
	var stack, artifacts []byte
	if err := r.Scan(&rel.ID, &stack, &artifacts, &rel.Created, &rel.Note); err != nil {
		return rel, err
	}
	if len(stack) > 0 {
		rel.Stack = json.RawMessage(stack)
	}
	if len(artifacts) > 0 {
		if err := json.Unmarshal(artifacts, &rel.Artifacts); err != nil {
			return rel, fmt.Errorf("decode artifacts of release %s: %w", rel.ID, err)
		}
	}
	rel.Created = rel.Created.UTC()
	return rel, nil
}

func (t *tx) PutRelease(r store.Release) error {
	op := "store release " + r.ID
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.PrepareRelease(&r, now()); err != nil {
		return err
	}
	var artifacts, stack []byte
	if len(r.Artifacts) > 0 {
		b, err := json.Marshal(r.Artifacts)
		if err != nil {
			return fmt.Errorf("%s: encode artifacts: %w", op, err)
		}
		artifacts = b
	}
	if len(r.Stack) > 0 {
		stack = r.Stack
	}
	_, err := t.exec(op, `INSERT INTO releases (id, stack, artifacts, created, note) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
		r.ID, stack, artifacts, ts(r.Created), r.Note)
	return err
}

func (t *tx) Release(id string) (store.Release, error) {
	r, err := scanRelease(t.queryRow(`SELECT id, stack, artifacts, created, note FROM releases WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Release{}, silo.Errorf(silo.CodeNotFound, "release %q not found", id)
	}
	if err != nil {
		return store.Release{}, t.err("read release "+id, err)
	}
	return r, nil
}

func (t *tx) Releases(limit int) ([]store.Release, error) {
	q := `SELECT id, stack, artifacts, created, note FROM releases ORDER BY created DESC, id DESC`
	var args []any
	if limit > 0 {
		q += " LIMIT $1"
		args = append(args, limit)
	}
	rows, err := t.tx.Query(t.ctx, q, args...)
	if err != nil {
		return nil, t.err("list releases", err)
	}
	defer rows.Close()
	var out []store.Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, t.err("list releases", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, t.err("list releases", err)
	}
	return out, nil
}

// ---- audit ----

// AppendAudit chains e to the head of the log. It locks the single head row,
// so concurrent appends (from any server) serialize on it; under
// SERIALIZABLE the loser fails to serialize and Update runs it again on the
// new head.
func (t *tx) AppendAudit(e store.AuditEvent) (store.AuditEntry, error) {
	op := "append audit " + e.Action
	if err := t.writable(op); err != nil {
		return store.AuditEntry{}, err
	}
	e, err := store.PrepareAuditEvent(e, time.Now())
	if err != nil {
		return store.AuditEntry{}, err
	}
	var headSeq int64
	var prev string
	if err := t.queryRow(`SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&headSeq, &prev); err != nil {
		return store.AuditEntry{}, t.err(op, err)
	}
	ent := store.AuditEntry{Seq: headSeq + 1, Event: e, Prev: prev}
	ent.Hash = store.ChainHash(prev, ent.Seq, e)
	var detail *string
	if len(e.Detail) > 0 {
		d := string(e.Detail)
		detail = &d
	}
	if _, err := t.exec(op, `INSERT INTO audit (seq, time, actor, action, account, detail, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		ent.Seq, e.Time, e.Actor, e.Action, string(e.Account), detail, ent.Prev, ent.Hash); err != nil {
		return store.AuditEntry{}, err
	}
	if _, err := t.exec(op, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, ent.Seq, ent.Hash); err != nil {
		return store.AuditEntry{}, err
	}
	return ent, nil
}

func (t *tx) Audit(after int64, limit int) ([]store.AuditEntry, error) {
	q := `SELECT seq, time, actor, action, account, detail, prev, hash FROM audit WHERE seq > $1 ORDER BY seq`
	args := []any{after}
	if limit > 0 {
		q += " LIMIT $2"
		args = append(args, limit)
	}
	rows, err := t.tx.Query(t.ctx, q, args...)
	if err != nil {
		return nil, t.err("read audit", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var ent store.AuditEntry
		var account string
		var detail *string
		if err := rows.Scan(&ent.Seq, &ent.Event.Time, &ent.Event.Actor, &ent.Event.Action, &account, &detail, &ent.Prev, &ent.Hash); err != nil {
			return nil, t.err("read audit", err)
		}
		ent.Event.Time = ent.Event.Time.UTC()
		ent.Event.Account = silo.AccountID(account)
		if detail != nil && *detail != "" {
			ent.Event.Detail = json.RawMessage(*detail)
		}
		out = append(out, ent)
	}
	if err := rows.Err(); err != nil {
		return nil, t.err("read audit", err)
	}
	return out, nil
}

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
