package sqlite

import (
	"database/sql"
	"errors"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// ---- the current release ----

func (t *tx) CurrentRelease() (string, error) {
	var id string
	err := t.tx.QueryRowContext(t.ctx, `SELECT release FROM current_release WHERE id = 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", store.NoCurrentRelease()
	}
	if err != nil {
		return "", t.s.dbErr("read the current release", err)
	}
	return id, nil
}

func (t *tx) SetCurrentRelease(id string) (string, error) {
	op := "make release " + id + " current"
	if err := t.writable(op); err != nil {
		return "", err
	}
	rel, err := t.Release(id)
	if err != nil {
		return "", err
	}
	if err := store.CheckShip(rel, nil); err != nil {
		return "", err
	}
	prev, err := t.CurrentRelease()
	if err != nil && !errors.Is(err, silo.ErrNotFound) {
		return "", err
	}
	_, err = t.exec(op, `INSERT INTO current_release (id, release) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET release = excluded.release`, id)
	return prev, err
}

// ---- rollouts ----

const rolloutCols = `id, release, previous, rollback_of, state, active, owner, lease, version, created, updated, status`

func scanRollout(r scanner) (store.Rollout, error) {
	var ro store.Rollout
	var lease sql.NullInt64
	var created, updated int64
	var status sql.NullString
	if err := r.Scan(&ro.ID, &ro.Release, &ro.Previous, &ro.RollbackOf, &ro.State, &ro.Active, &ro.Owner, &lease, &ro.Version, &created, &updated, &status); err != nil {
		return ro, err
	}
	if lease.Valid {
		ro.Lease = fromMicros(lease.Int64)
	}
	ro.Created, ro.Updated = fromMicros(created), fromMicros(updated)
	if status.Valid && status.String != "" {
		ro.Status = []byte(status.String)
	}
	return ro, nil
}

func leaseMicros(r store.Rollout) any {
	if r.Lease.IsZero() {
		return nil
	}
	return micros(r.Lease)
}

func statusText(r store.Rollout) any {
	if len(r.Status) == 0 {
		return nil
	}
	return string(r.Status)
}

func (t *tx) CreateRollout(r store.Rollout) error {
	op := "store rollout " + r.ID
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.PrepareRollout(&r, now()); err != nil {
		return err
	}
	if err := store.CheckActive(r, t.ActiveRollout); err != nil {
		return err
	}
	if err := store.CheckRolloutRelease(r, t.Release); err != nil {
		return err
	}
	res, err := t.exec(op, `INSERT INTO rollouts (`+rolloutCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		r.ID, r.Release, r.Previous, r.RollbackOf, r.State, r.Active, r.Owner, leaseMicros(r), micros(r.Created), micros(r.Updated), statusText(r))
	if err != nil {
		return err
	}
	if affected(res) != 1 {
		return silo.Errorf(silo.CodeConflict, "rollout %s exists already", r.ID)
	}
	return nil
}

func (t *tx) UpdateRollout(r store.Rollout) error {
	op := "update rollout " + r.ID
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.PrepareRollout(&r, now()); err != nil {
		return err
	}
	if err := store.CheckActive(r, t.ActiveRollout); err != nil {
		return err
	}
	res, err := t.exec(op, `UPDATE rollouts SET release = ?, previous = ?, rollback_of = ?, state = ?, active = ?, owner = ?, lease = ?, updated = ?, status = ?, version = version + 1
		WHERE id = ? AND version = ?`,
		r.Release, r.Previous, r.RollbackOf, r.State, r.Active, r.Owner, leaseMicros(r), micros(r.Updated), statusText(r), r.ID, r.Version)
	if err != nil {
		return err
	}
	if affected(res) == 1 {
		return nil
	}
	cur, err := t.Rollout(r.ID)
	if err != nil {
		return err
	}
	return store.ConflictRolloutVersion(r.ID, cur.Version, r.Version)
}

func (t *tx) Rollout(id string) (store.Rollout, error) {
	r, err := scanRollout(t.tx.QueryRowContext(t.ctx, `SELECT `+rolloutCols+` FROM rollouts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, store.NotFoundRollout(id)
	}
	if err != nil {
		return r, t.s.dbErr("read rollout "+id, err)
	}
	return r, nil
}

func (t *tx) ActiveRollout() (store.Rollout, error) {
	r, err := scanRollout(t.tx.QueryRowContext(t.ctx, `SELECT `+rolloutCols+` FROM rollouts WHERE active = 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return r, silo.Errorf(silo.CodeNotFound, "no rollout is active; name one (silo rollout list shows them)")
	}
	if err != nil {
		return r, t.s.dbErr("read the active rollout", err)
	}
	return r, nil
}

func (t *tx) Rollouts(limit int) ([]store.Rollout, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := t.tx.QueryContext(t.ctx, `SELECT `+rolloutCols+` FROM rollouts ORDER BY seq DESC LIMIT ?`, limit)
	if err != nil {
		return nil, t.s.dbErr("list rollouts", err)
	}
	defer rows.Close()
	var out []store.Rollout
	for rows.Next() {
		r, err := scanRollout(rows)
		if err != nil {
			return nil, t.s.dbErr("list rollouts", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.dbErr("list rollouts", err)
	}
	return out, nil
}

func (t *tx) CountRollouts() (int, error) {
	var n int
	if err := t.tx.QueryRowContext(t.ctx, `SELECT count(*) FROM rollouts`).Scan(&n); err != nil {
		return 0, t.s.dbErr("count rollouts", err)
	}
	return n, nil
}

// ---- rollout steps ----

const stepCols = `rollout, ring, account, step, from_release, state, error, created, updated`

func scanStep(r scanner) (store.RolloutStep, error) {
	var s store.RolloutStep
	var created, updated int64
	if err := r.Scan(&s.Rollout, &s.Ring, &s.Account, &s.Step, &s.From, &s.State, &s.Error, &created, &updated); err != nil {
		return s, err
	}
	s.Created, s.Updated = fromMicros(created), fromMicros(updated)
	return s, nil
}

func (t *tx) ClaimStep(s store.RolloutStep) error {
	op := "claim rollout step " + s.StepKey.String()
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.PrepareStep(&s, now()); err != nil {
		return err
	}
	if _, err := t.Rollout(s.Rollout); err != nil {
		return err
	}
	res, err := t.exec(op, `INSERT INTO rollout_steps (`+stepCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		s.Rollout, s.Ring, s.Account, s.Step, s.From, s.State, s.Error, micros(s.Created), micros(s.Updated))
	if err != nil {
		return err
	}
	if affected(res) != 1 {
		return store.ConflictStep(s.StepKey)
	}
	return nil
}

func (t *tx) FinishStep(k store.StepKey, state store.IntentState, errText string) error {
	op := "finish rollout step " + k.String()
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.CheckFinishStep(k, state); err != nil {
		return err
	}
	res, err := t.exec(op, `UPDATE rollout_steps SET state = ?, error = ?, updated = ? WHERE rollout = ? AND ring = ? AND account = ? AND step = ?`,
		state, errText, micros(now()), k.Rollout, k.Ring, k.Account, k.Step)
	if err != nil {
		return err
	}
	if affected(res) != 1 {
		return store.NotFoundStep(k)
	}
	return nil
}

func (t *tx) Step(k store.StepKey) (store.RolloutStep, error) {
	s, err := scanStep(t.tx.QueryRowContext(t.ctx, `SELECT `+stepCols+` FROM rollout_steps WHERE rollout = ? AND ring = ? AND account = ? AND step = ?`,
		k.Rollout, k.Ring, k.Account, k.Step))
	if errors.Is(err, sql.ErrNoRows) {
		return s, store.NotFoundStep(k)
	}
	if err != nil {
		return s, t.s.dbErr("read rollout step "+k.String(), err)
	}
	return s, nil
}

func (t *tx) Steps(rollout string) ([]store.RolloutStep, error) {
	op := "list the steps of rollout " + rollout
	rows, err := t.tx.QueryContext(t.ctx, `SELECT `+stepCols+` FROM rollout_steps WHERE rollout = ? ORDER BY ring, account, step`, rollout)
	if err != nil {
		return nil, t.s.dbErr(op, err)
	}
	defer rows.Close()
	var out []store.RolloutStep
	for rows.Next() {
		s, err := scanStep(rows)
		if err != nil {
			return nil, t.s.dbErr(op, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.dbErr(op, err)
	}
	return out, nil
}
