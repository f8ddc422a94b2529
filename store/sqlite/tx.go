package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

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

// ---- accounts ----

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
	// Resources, keys and the limit override go with it (ON DELETE
	// CASCADE); usage rows have no foreign key (metering does not wait for
	// the registry), so they are deleted here.
	if _, err := t.exec("purge usage of "+string(id), `DELETE FROM usage WHERE account = ?`, id); err != nil {
		return err
	}
	_, err = t.exec("purge account "+string(id), `DELETE FROM accounts WHERE id = ?`, id)
	return err
}

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

// ---- API keys ----

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

// ---- releases ----

func scanRelease(r scanner) (store.Release, error) {
	var rel store.Release
	var stack []byte
	var artifacts string
	var created int64
	if err := r.Scan(&rel.ID, &stack, &artifacts, &created, &rel.Note); err != nil {
		return rel, err
	}
	if len(stack) > 0 {
		rel.Stack = json.RawMessage(stack)
	}
	if artifacts != "" {
		if err := json.Unmarshal([]byte(artifacts), &rel.Artifacts); err != nil {
			return rel, fmt.Errorf("decode artifacts of release %s: %w", rel.ID, err)
		}
	}
	rel.Created = fromMicros(created)
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
	artifacts := ""
	if len(r.Artifacts) > 0 {
		b, err := json.Marshal(r.Artifacts)
		if err != nil {
			return fmt.Errorf("%s: encode artifacts: %w", op, err)
		}
		artifacts = string(b)
	}
	var stack []byte
	if len(r.Stack) > 0 {
		stack = r.Stack
	}
	_, err := t.exec(op, `INSERT INTO releases (id, stack, artifacts, created, note) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		r.ID, stack, artifacts, micros(r.Created), r.Note)
	return err
}

func (t *tx) Release(id string) (store.Release, error) {
	r, err := scanRelease(t.tx.QueryRowContext(t.ctx, `SELECT id, stack, artifacts, created, note FROM releases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Release{}, silo.Errorf(silo.CodeNotFound, "release %q not found", id)
	}
	if err != nil {
		return store.Release{}, t.s.dbErr("read release "+id, err)
	}
	return r, nil
}

func (t *tx) Releases(limit int) ([]store.Release, error) {
	q := `SELECT id, stack, artifacts, created, note FROM releases ORDER BY created DESC, id DESC`
	var args []any
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.s.dbErr("list releases", err)
	}
	defer rows.Close()
	var out []store.Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, t.s.dbErr("list releases", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.dbErr("list releases", err)
	}
	return out, nil
}

// ---- audit ----

// AppendAudit chains e to the last entry. Writers are serialized by BEGIN
// IMMEDIATE, so reading the head and inserting after it cannot race.
func (t *tx) AppendAudit(e store.AuditEvent) (store.AuditEntry, error) {
	op := "append audit " + e.Action
	if err := t.writable(op); err != nil {
		return store.AuditEntry{}, err
	}
	e, err := store.PrepareAuditEvent(e, time.Now())
	if err != nil {
		return store.AuditEntry{}, err
	}
	var prevSeq int64
	var prev string
	err = t.tx.QueryRowContext(t.ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&prevSeq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return store.AuditEntry{}, t.s.dbErr(op, err)
	}
	ent := store.AuditEntry{Seq: prevSeq + 1, Event: e, Prev: prev}
	ent.Hash = store.ChainHash(prev, ent.Seq, e)
	var detail any
	if len(e.Detail) > 0 {
		detail = string(e.Detail)
	}
	if _, err := t.exec(op, `INSERT INTO audit (seq, time, actor, action, account, detail, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		ent.Seq, micros(e.Time), e.Actor, e.Action, e.Account, detail, ent.Prev, ent.Hash); err != nil {
		return store.AuditEntry{}, err
	}
	return ent, nil
}

func (t *tx) Audit(after int64, limit int) ([]store.AuditEntry, error) {
	q := `SELECT seq, time, actor, action, account, detail, prev, hash FROM audit WHERE seq > ? ORDER BY seq`
	args := []any{after}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.s.dbErr("read audit", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var ent store.AuditEntry
		var tm int64
		var detail sql.NullString
		if err := rows.Scan(&ent.Seq, &tm, &ent.Event.Actor, &ent.Event.Action, &ent.Event.Account, &detail, &ent.Prev, &ent.Hash); err != nil {
			return nil, t.s.dbErr("read audit", err)
		}
		ent.Event.Time = fromMicros(tm)
		if detail.Valid && detail.String != "" {
			ent.Event.Detail = json.RawMessage(detail.String)
		}
		out = append(out, ent)
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.dbErr("read audit", err)
	}
	return out, nil
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
