package postgres

import (
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// ---- the current release ----

func (t *tx) CurrentRelease() (string, error) {
	var id string
	err := t.queryRow(`SELECT release FROM current_release WHERE id = 1`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", store.NoCurrentRelease()
	}
	if err != nil {
		return "", t.err("read the current release", err)
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
	_, err = t.exec(op, `INSERT INTO current_release (id, release) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET release = excluded.release`, id)
	return prev, err
}

// ---- rollouts ----

const rolloutCols = `id, release, previous, rollback_of, state, active, owner, lease, version, created, updated, status`

func scanRollout(r pgx.Row) (store.Rollout, error) {
	var ro store.Rollout
	var lease *time.Time
	var status *string
	if err := r.Scan(&ro.ID, &ro.Release, &ro.Previous, &ro.RollbackOf, &ro.State, &ro.Active, &ro.Owner, &lease, &ro.Version, &ro.Created, &ro.Updated, &status); err != nil {
		return ro, err
	}
	if lease != nil {
		ro.Lease = lease.UTC()
	}
	ro.Created, ro.Updated = ro.Created.UTC(), ro.Updated.UTC()
	if status != nil && *status != "" {
		ro.Status = []byte(*status)
	}
	return ro, nil
}

func leaseTime(r store.Rollout) *time.Time {
	if r.Lease.IsZero() {
		return nil
	}
	return tsPtr(&r.Lease)
}

func statusText(r store.Rollout) *string {
	if len(r.Status) == 0 {
		return nil
	}
	v := string(r.Status)
	return &v
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
	res, err := t.exec(op, `INSERT INTO rollouts (`+rolloutCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $11) ON CONFLICT (id) DO NOTHING`,
		r.ID, r.Release, r.Previous, r.RollbackOf, r.State, r.Active, r.Owner, leaseTime(r), ts(r.Created), ts(r.Updated), statusText(r))
	if err != nil {
		return err
	}
	if res.RowsAffected() != 1 {
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
	res, err := t.exec(op, `UPDATE rollouts SET release = $1, previous = $2, rollback_of = $3, state = $4, active = $5, owner = $6, lease = $7, updated = $8, status = $9, version = version + 1
		WHERE id = $10 AND version = $11`,
		r.Release, r.Previous, r.RollbackOf, r.State, r.Active, r.Owner, leaseTime(r), ts(r.Updated), statusText(r), r.ID, r.Version)
	if err != nil {
		return err
	}
	if res.RowsAffected() == 1 {
		return nil
	}
	cur, err := t.Rollout(r.ID)
	if err != nil {
		return err
	}
	return store.ConflictRolloutVersion(r.ID, cur.Version, r.Version)
}

func (t *tx) Rollout(id string) (store.Rollout, error) {
	r, err := scanRollout(t.queryRow(`SELECT `+rolloutCols+` FROM rollouts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, store.NotFoundRollout(id)
	}
	if err != nil {
		return r, t.err("read rollout "+id, err)
	}
	return r, nil
}

func (t *tx) ActiveRollout() (store.Rollout, error) {
	r, err := scanRollout(t.queryRow(`SELECT ` + rolloutCols + ` FROM rollouts WHERE active`))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, silo.Errorf(silo.CodeNotFound, "no rollout is active; name one (silo rollout list shows them)")
	}
	if err != nil {
		return r, t.err("read the active rollout", err)
	}
	return r, nil
}

func (t *tx) Rollouts(limit int) ([]store.Rollout, error) {
	var lim *int // NULL: no limit
	if limit > 0 {
		lim = &limit
	}
	rows, err := t.tx.Query(t.ctx, `SELECT `+rolloutCols+` FROM rollouts ORDER BY seq DESC LIMIT $1`, lim)
	if err != nil {
		return nil, t.err("list rollouts", err)
	}
	defer rows.Close()
	var out []store.Rollout
	for rows.Next() {
		r, err := scanRollout(rows)
		if err != nil {
			return nil, t.err("list rollouts", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, t.err("list rollouts", err)
	}
	return out, nil
}

func (t *tx) CountRollouts() (int, error) {
	var n int
	if err := t.queryRow(`SELECT count(*) FROM rollouts`).Scan(&n); err != nil {
		return 0, t.err("count rollouts", err)
	}
	return n, nil
}

// ---- rollout steps ----

const stepCols = `rollout, ring, account, step, from_release, state, error, created, updated`

func scanStep(r pgx.Row) (store.RolloutStep, error) {
	var s store.RolloutStep
	var account, state string
	if err := r.Scan(&s.Rollout, &s.Ring, &account, &s.Step, &s.From, &state, &s.Error, &s.Created, &s.Updated); err != nil {
		return s, err
	}
	s.Account, s.State = silo.AccountID(account), store.IntentState(state)
	s.Created, s.Updated = s.Created.UTC(), s.Updated.UTC()
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
	res, err := t.exec(op, `INSERT INTO rollout_steps (`+stepCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
		s.Rollout, s.Ring, string(s.Account), s.Step, s.From, string(s.State), s.Error, ts(s.Created), ts(s.Updated))
	if err != nil {
		return err
	}
	if res.RowsAffected() != 1 {
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
	res, err := t.exec(op, `UPDATE rollout_steps SET state = $1, error = $2, updated = $3 WHERE rollout = $4 AND ring = $5 AND account = $6 AND step = $7`,
		string(state), errText, now(), k.Rollout, k.Ring, string(k.Account), k.Step)
	if err != nil {
		return err
	}
	if res.RowsAffected() != 1 {
		return store.NotFoundStep(k)
	}
	return nil
}

func (t *tx) Step(k store.StepKey) (store.RolloutStep, error) {
	s, err := scanStep(t.queryRow(`SELECT `+stepCols+` FROM rollout_steps WHERE rollout = $1 AND ring = $2 AND account = $3 AND step = $4`,
		k.Rollout, k.Ring, string(k.Account), k.Step))
	if errors.Is(err, pgx.ErrNoRows) {
		return s, store.NotFoundStep(k)
	}
	if err != nil {
		return s, t.err("read rollout step "+k.String(), err)
	}
	return s, nil
}

func (t *tx) Steps(rollout string) ([]store.RolloutStep, error) {
	op := "list the steps of rollout " + rollout
	rows, err := t.tx.Query(t.ctx, `SELECT `+stepCols+` FROM rollout_steps WHERE rollout = $1 ORDER BY ring, account, step`, rollout)
	if err != nil {
		return nil, t.err(op, err)
	}
	defer rows.Close()
	var out []store.RolloutStep
	for rows.Next() {
		s, err := scanStep(rows)
		if err != nil {
			return nil, t.err(op, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, t.err(op, err)
	}
	return out, nil
}
