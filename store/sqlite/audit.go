package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/silo-run/silo/store"
)

// AppendAudit chains e to the last entry. Writers are serialized by BEGIN
// IMMEDIATE, so reading the head and inserting after it cannot race.
func (t *tx) AppendAudit(e store.AuditEvent) (store.AuditEntry, error) {
	op := "append audit " + e.Action
	if err := t.writable(op); err != nil {
		return store.AuditEntry{}, err
	}
	e.Actor = store.ActorOf(t.ctx, e.Actor)
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
