package postgres

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func scanRelease(r pgx.Row) (store.Release, error) {
	var rel store.Release
	var stack, artifacts []byte
	if err := r.Scan(&rel.ID, &stack, &artifacts, &rel.Created, &rel.Note, &rel.Probe, &rel.Origin.Kind, &rel.Origin.From); err != nil {
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
	tag, err := t.exec(op, `INSERT INTO releases (id, stack, artifacts, created, note, probe, origin, origin_from) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
		r.ID, stack, artifacts, ts(r.Created), r.Note, r.Probe, r.Origin.Kind, r.Origin.From)
	if err != nil || tag.RowsAffected() > 0 {
		return err
	}
	// Stored already: the origin is upgraded (store.Origin.Replaces).
	if below := r.Origin.Replaces(); len(below) > 0 {
		_, err = t.exec(op, `UPDATE releases SET origin = $2, origin_from = $3 WHERE id = $1 AND origin = ANY($4)`, r.ID, r.Origin.Kind, r.Origin.From, below)
	}
	return err
}

func (t *tx) Release(id string) (store.Release, error) {
	r, err := scanRelease(t.queryRow(`SELECT id, stack, artifacts, created, note, probe, origin, origin_from FROM releases WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Release{}, silo.Errorf(silo.CodeNotFound, "release %q not found", id)
	}
	if err != nil {
		return store.Release{}, t.err("read release "+id, err)
	}
	return r, nil
}

func (t *tx) Releases(limit int, probes bool) ([]store.Release, error) {
	q := `SELECT id, stack, artifacts, created, note, probe, origin, origin_from FROM releases`
	if !probes {
		q += ` WHERE NOT probe`
	}
	q += ` ORDER BY created DESC, id DESC`
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
