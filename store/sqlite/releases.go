package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func scanRelease(r scanner) (store.Release, error) {
	var rel store.Release
	var stack []byte
	var artifacts string
	var created int64
	if err := r.Scan(&rel.ID, &stack, &artifacts, &created, &rel.Note, &rel.Probe, &rel.Origin.Kind, &rel.Origin.From); err != nil {
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
	res, err := t.exec(op, `INSERT INTO releases (id, stack, artifacts, created, note, probe, origin, origin_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		r.ID, stack, artifacts, micros(r.Created), r.Note, r.Probe, r.Origin.Kind, r.Origin.From)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return t.s.dbErr(op, err)
	}
	// Stored already: the origin is upgraded (store.Origin.Replaces).
	below := r.Origin.Replaces()
	if len(below) == 0 {
		return nil
	}
	args := []any{r.Origin.Kind, r.Origin.From, r.ID}
	for _, k := range below {
		args = append(args, k)
	}
	_, err = t.exec(op, `UPDATE releases SET origin = ?, origin_from = ? WHERE id = ? AND origin IN (?`+strings.Repeat(", ?", len(below)-1)+`)`, args...)
	return err
}

func (t *tx) Release(id string) (store.Release, error) {
	r, err := scanRelease(t.tx.QueryRowContext(t.ctx, `SELECT id, stack, artifacts, created, note, probe, origin, origin_from FROM releases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Release{}, silo.Errorf(silo.CodeNotFound, "release %q not found", id)
	}
	if err != nil {
		return store.Release{}, t.s.dbErr("read release "+id, err)
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
